"""Per-layer summary table: input and output shapes, weights, biases and parameters."""
from __future__ import annotations

from dataclasses import dataclass, field

from .backend import get_default_dtype


@dataclass
class LayerRow:
    name: str
    input_shape: tuple
    output_shape: tuple
    weights: int
    biases: int

    @property
    def params(self) -> int:
        return self.weights + self.biases


@dataclass
class ModelSummary:
    """Rows of :func:`summary` and their totals; ``str()`` gives the printed table."""

    rows: list = field(default_factory=list)

    @property
    def total_weights(self) -> int:
        return sum(r.weights for r in self.rows)

    @property
    def total_biases(self) -> int:
        return sum(r.biases for r in self.rows)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    def __str__(self):
        def shape(s):
            return "x".join(str(d) for d in s)

        header = ("Layer", "Input", "Output", "Weights", "Biases", "Params")
        body = [(r.name, shape(r.input_shape), shape(r.output_shape), f"{r.weights:,}", f"{r.biases:,}", f"{r.params:,}")
                for r in self.rows]
        total = ("Total", "", "", f"{self.total_weights:,}", f"{self.total_biases:,}", f"{self.total_params:,}")
        widths = [max(len(row[i]) for row in [header, *body, total]) for i in range(len(header))]

        def line(row):
            cells = [row[i].ljust(widths[i]) if i < 3 else row[i].rjust(widths[i]) for i in range(len(row))]
            return "  ".join(cells).rstrip()

        rule = "-" * len(line(header))
        return "\n".join([line(header), rule, *map(line, body), rule, line(total)])


def _is_bias(name: str) -> bool:
    return name.startswith("bias")


def summary(model, input_shape=None, print_table: bool = True) -> ModelSummary:
    """Run one zero sample of ``input_shape`` (one sample's shape, without the batch
    dimension; default ``model.input_shape``), made on the model's device, through ``model`` in eval mode and
    tabulate every layer that owns parameters or has no sub-layers: its name and
    type, input and output shape (per sample), weights, biases (parameters named
    ``bias*``) and their total, plus a totals row. Prints the table unless
    ``print_table`` is false; returns the :class:`ModelSummary`.
    """
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
        if input_shape is None:
            raise ValueError(f"summary: {type(model).__name__} has no input_shape attribute; pass input_shape")
    input_shape = tuple(int(d) for d in input_shape)
    if not input_shape or any(d <= 0 for d in input_shape):
        raise ValueError(f"summary: input_shape must be positive sizes of one sample, got {input_shape}")

    rows, patched = [], []
    for name, module in model.named_modules():
        if not module._modules or module._parameters:
            patched.append((name, module))

    def recording(name, module, forward):
        def wrapper(x, *args, **kwargs):
            out = forward(x, *args, **kwargs)
            weights = sum(p.size for n, p in module._parameters.items() if p is not None and not _is_bias(n))
            biases = sum(p.size for n, p in module._parameters.items() if p is not None and _is_bias(n))
            first = out[0] if isinstance(out, tuple) else out  # recurrent layers: (outputs, final state)
            rows.append(LayerRow(f"{name} {type(module).__name__}".strip(), tuple(x.shape[1:]), tuple(first.shape[1:]),
                                 int(weights), int(biases)))
            return out
        return wrapper

    modes = [(m, m.training) for _, m in model.named_modules()]
    for name, module in patched:
        object.__setattr__(module, "forward", recording(name, module, module.forward))
    try:
        model.eval()
        model(model.array_module().zeros((1,) + input_shape, dtype=get_default_dtype()))  # on the model's device
    finally:
        for _, module in patched:
            del module.forward
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    result = ModelSummary(rows)
    if print_table:
        print(result)
    return result
