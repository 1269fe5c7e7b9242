"""The Optimizer base class: parameters, hyper-parameters, per-parameter state.

An optimizer holds a list of :class:`~handgrad.nn.Parameter` and updates their
``data`` in place from their ``grad`` when :meth:`Optimizer.step` is called.
It never computes gradients; ``zero_grad()`` clears them between steps.

Saved state (``state_dict()``) is made of plain arrays and JSON-able scalars,
so it can be written to ``.npz`` + JSON without pickle::

    {
      "type":   "Adam",                       # the optimizer class name
      "hyper":  {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08, ...},
      "step":   12,                           # number of step() calls so far
      "buffers": {"0.exp_avg": ndarray, "0.exp_avg_sq": ndarray,
                  "1.exp_avg": ndarray, ...}  # "<parameter index>.<buffer>"
    }

Parameter indices are positions in the list given to the constructor (the
order of ``model.parameters()``). Buffers are host (NumPy) copies; loading puts
them back on the parameter's device and dtype.

Buffers are created at the first ``step()`` with the array module (NumPy or
CuPy) and dtype of their parameter, so move a model with ``model.to(device)``
before training starts, not between steps.

Every :data:`FLUSH_EVERY` steps, buffer values smaller than :data:`FLUSH_BELOW`
in magnitude are set to zero. A unit that no longer gets gradients (a dead ReLU)
has moving averages that decay geometrically into denormal floats, and stay
there (0.9 times the smallest denormal rounds back to it); arithmetic on
denormals costs about 50 times as much, so without this an SGD step of the
784-200-10 MLP on a fixed batch of 8 took 2.5 times as long after 1,000 steps.
Such values change no weight: p - lr * 1e-30 rounds to p for any weight above
about 1e-22 in magnitude (float32), and the values are zeroed long before they
become denormal (at 0.9 per step, 1e-30 takes 170 steps to fall below float32's
smallest normal, 1.2e-38). PyTorch does not flush (``torch.set_flush_denormal``
is off by default).
"""
from __future__ import annotations

from ..backend import array_module, to_numpy
from ..nn.module import Parameter
from ..validate import is_number


FLUSH_EVERY = 64
FLUSH_BELOW = 1e-30


def check_hyper(name: str, value, low: float = 0.0, high: float | None = None, high_open: bool = False) -> float:
    """Return ``value`` as a float if ``low <= value`` (and ``value <= high`` / ``< high``), else raise ValueError."""
    ok = is_number(value) and value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bound = "" if high is None else (f" and < {high}" if high_open else f" and <= {high}")
        raise ValueError(f"invalid {name}: expected a finite number >= {low}{bound}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class. Subclasses set their hyper-parameters as attributes, list
    their names in ``hyper_names`` and implement ``update(p, state)`` for one
    parameter; ``state`` is that parameter's dict of buffers (empty at first)."""

    hyper_names: tuple[str, ...] = ("lr",)

    def __init__(self, params, lr: float):
        params = list(params)
        name = type(self).__name__
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a handgrad Parameter")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: the same Parameter appears more than once in the parameter list")
        self.params = params
        self.lr = check_hyper("lr", lr)
        self.step_count = 0
        self.state: list[dict] = [{} for _ in params]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Apply one update to every parameter, in place."""
        self.step_count += 1
        for p, state in zip(self.params, self.state):
            self.update(p, state)
        if self.step_count % FLUSH_EVERY == 0:
            self.flush_tiny()

    def flush_tiny(self) -> None:
        """Set every buffer value below :data:`FLUSH_BELOW` in magnitude to zero (see
        the module docstring: they would decay into slow denormal floats)."""
        for state in self.state:
            for buf in state.values():  # every buffer has its parameter's floating dtype (see buffer)
                buf[array_module(buf).abs(buf) < FLUSH_BELOW] = 0

    def update(self, p: Parameter, state: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement update")

    @staticmethod
    def buffer(state: dict, name: str, like, fill: float = 0.0):
        """``state[name]``, created on first use as an array like ``like`` (same module, dtype, shape)."""
        if name not in state:
            buf = array_module(like).empty_like(like)
            buf.fill(fill)
            state[name] = buf
        return state[name]

    # -- saving and loading ------------------------------------------------
    def hyperparameters(self) -> dict:
        """``{name: value}`` for every hyper-parameter, JSON-able (tuples become lists)."""
        hyper = {}
        for k in self.hyper_names:
            value = getattr(self, k)
            hyper[k] = list(value) if isinstance(value, tuple) else value
        return hyper

    def state_dict(self) -> dict:
        """Hyper-parameters, step count and buffers; see the module docstring for the layout."""
        buffers = {f"{i}.{k}": to_numpy(v).copy() for i, st in enumerate(self.state) for k, v in st.items()}
        return {"type": type(self).__name__, "hyper": self.hyperparameters(), "step": self.step_count, "buffers": buffers}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned. Checks the optimizer type, the
        buffer names and their shapes before changing anything."""
        name = type(self).__name__
        missing = [k for k in ("type", "hyper", "step", "buffers") if k not in state]
        if missing:
            raise KeyError(f"{name}.load_state_dict: missing entries {missing}")
        if state["type"] != name:
            raise ValueError(f"{name}.load_state_dict: state was saved from {state['type']}, not {name}")
        unknown = sorted(set(state["hyper"]) - set(self.hyper_names))
        if unknown:
            raise KeyError(f"{name}.load_state_dict: unexpected hyper-parameters {unknown}")
        new_state: list[dict] = [{} for _ in self.params]
        for key, value in state["buffers"].items():
            index, _, buf = key.partition(".")
            if not index.isdigit() or int(index) >= len(self.params) or not buf:
                raise KeyError(
                    f"{name}.load_state_dict: unexpected buffer '{key}' "
                    f"(expected '<parameter index>.<name>' with index < {len(self.params)})"
                )
            p = self.params[int(index)].data
            if tuple(value.shape) != tuple(p.shape):
                raise ValueError(
                    f"{name}.load_state_dict: shape mismatch for buffer '{key}': "
                    f"parameter has shape {tuple(p.shape)}, saved buffer {tuple(value.shape)}"
                )
            new_state[int(index)][buf] = array_module(p).asarray(value, dtype=p.dtype).copy()
        for k, v in state["hyper"].items():
            setattr(self, k, tuple(v) if isinstance(v, list) else v)
        self.step_count = int(state["step"])
        self.state = new_state

    def __repr__(self):
        hyper = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyper_names)
        return f"{type(self).__name__}({len(self.params)} parameters, {hyper})"
