"""Export trained models to ONNX, so that they run in any ONNX runtime.

``export_onnx(model, input_shape, path, metadata)`` walks a ``Sequential`` (nested
ones included) and emits one ONNX node per layer, with the weights as initializers;
a model that is not a ``Sequential`` (the character LSTM) has a converter of its own.
The graph is the model in eval mode: dropout and random augmentation become the
identity and batch norm uses its running statistics. The graph's input is
``input``: float (N, *input_shape), or int64 token ids (N, T) for a model that
starts with an ``Embedding``; N and T are symbolic. Its output is ``logits``.

The run's ``metadata`` (what :func:`handgrad.train.restore.load_trained` returns)
goes into the model's ``metadata_props``: ``classes`` (a JSON list, one name per
output), ``input_scale`` (inputs are the raw values, e.g. 0..255 pixels, times
this factor) and ``input`` (a one-line description), plus ``model`` and ``data``.

A layer with no ONNX converter raises ``ValueError`` naming it. ``onnx`` is an
optional dependency (``pip install "handgrad[onnx]"``), imported on use.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from . import nn
from .atomic import atomic_file
from .backend import to_numpy
from .models.char_lstm import CharLSTM

OPSET = 17
IR_VERSION = 8  # what ONNX 1.12, which introduced opset 17, writes
# The factor each registered data set multiplies its raw values by; data read by
# handgrad.data.load_path records its own (``input_scale`` in the run's metadata).
INPUT_SCALES = {"mnist": 1 / 255, "fashion-mnist": 1 / 255, "digits": 1 / 16, "synth": 1.0}
# PyTorch (and handgrad) stack the LSTM gates as (i, f, g, o), ONNX as (i, o, f, c = g)
_ONNX_GATE_ORDER = (0, 3, 1, 2)


class _Graph:
    """Accumulates nodes and initializers; hands out fresh tensor names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []

    def weight(self, name: str, array) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(to_numpy(array)), name))
        return name

    def ints(self, name: str, values) -> str:
        return self.weight(name, np.asarray(values, dtype=np.int64))

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        out = f"{name}_out"
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=name, **attrs))
        return out


def _linear(g: _Graph, m: nn.Linear, x: str, name: str, _) -> str:
    flat = g.node("Flatten", [x], f"{name}_flatten", axis=1)
    inputs = [flat, g.weight(f"{name}.weight", m.weight.data)]
    if m.bias is not None:
        inputs.append(g.weight(f"{name}.bias", m.bias.data))
    return g.node("Gemm", inputs, name, transB=1)


def _pads(module, x_array) -> list[int]:
    """ONNX pads [begin_1, ..., begin_k, end_1, ..., end_k] for this input size ('same' depends on it)."""
    padding = module._geometry(x_array)
    return [before for before, _ in padding] + [after for _, after in padding]


def _conv(g: _Graph, m, x: str, name: str, x_array) -> str:
    inputs = [x, g.weight(f"{name}.weight", m.weight.data)]
    if m.bias is not None:
        inputs.append(g.weight(f"{name}.bias", m.bias.data))
    return g.node("Conv", inputs, name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  dilations=list(m.dilation), pads=_pads(m, x_array), group=m.groups)


def _pool(op: str, **attrs):
    def convert(g: _Graph, m, x: str, name: str, x_array) -> str:
        return g.node(op, [x], name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                      pads=_pads(m, x_array), **attrs)

    return convert


def _batch_norm(g: _Graph, m, x: str, name: str, _) -> str:
    n = m.num_features
    scale = m.weight.data if m.affine else np.ones(n, dtype=m.running_mean.dtype)
    shift = m.bias.data if m.affine else np.zeros(n, dtype=m.running_mean.dtype)
    inputs = [x, g.weight(f"{name}.weight", scale), g.weight(f"{name}.bias", shift),
              g.weight(f"{name}.running_mean", m.running_mean), g.weight(f"{name}.running_var", m.running_var)]
    return g.node("BatchNormalization", inputs, name, epsilon=float(m.eps))


def _simple(op: str, **attrs):
    return lambda g, m, x, name, _: g.node(op, [x], name, **attrs)


def _gates(w, hidden: int):
    """Rows (or entries) of an LSTM weight (bias) re-stacked from (i, f, g, o) to ONNX's (i, o, f, c)."""
    w = to_numpy(w)
    return np.concatenate([w[k * hidden:(k + 1) * hidden] for k in _ONNX_GATE_ORDER])


def _lstm(g: _Graph, m: nn.LSTM, x: str, name: str) -> str:
    """Time-major (T, N, D) -> (T, N, H) through ``num_layers`` ONNX LSTM nodes from
    zero states. ONNX's W, R, B are (1, 4H, D), (1, 4H, H) and (1, 8H) = [b_ih, b_hh]."""
    hidden = m.hidden_size
    for k in range(m.num_layers):
        w_ih, w_hh, b_ih, b_hh = m._layer_params(k)
        inputs = [x, g.weight(f"{name}.W_l{k}", _gates(w_ih, hidden)[None]),
                  g.weight(f"{name}.R_l{k}", _gates(w_hh, hidden)[None]),
                  g.weight(f"{name}.B_l{k}", np.concatenate([_gates(b_ih, hidden), _gates(b_hh, hidden)])[None])]
        y = g.node("LSTM", inputs, f"{name}.l{k}", hidden_size=hidden)  # (T, 1 direction, N, H)
        x = g.node("Squeeze", [y, g.ints(f"{name}.l{k}.axes", [1])], f"{name}.l{k}.squeeze")
    return x


def _char_lstm(g: _Graph, m: CharLSTM, x: str, name: str, _) -> str:
    """ids (N, T) -> Gather (embedding) -> LSTM -> MatMul + Add (decoder) -> logits (N, T, V),
    time-major inside, as ONNX's LSTM reads its input."""
    ids = g.node("Transpose", [x], f"{name}.time_major", perm=[1, 0])
    e = g.node("Gather", [g.weight(f"{name}.embedding.weight", m.embedding.weight.data), ids], f"{name}.embedding")
    h = _lstm(g, m.lstm, e, f"{name}.lstm")
    z = g.node("MatMul", [h, g.weight(f"{name}.decoder.weight_t", to_numpy(m.decoder.weight.data).T)],
               f"{name}.decoder")
    if m.decoder.bias is not None:
        z = g.node("Add", [z, g.weight(f"{name}.decoder.bias", m.decoder.bias.data)], f"{name}.decoder.bias")
    return g.node("Transpose", [z], f"{name}.batch_major", perm=[1, 0, 2])


_CONVERTERS = {
    nn.Linear: _linear,
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.MaxPool1d: _pool("MaxPool"),
    nn.MaxPool2d: _pool("MaxPool"),
    nn.AvgPool2d: _pool("AveragePool", count_include_pad=1),
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.ReLU: _simple("Relu"),
    nn.Sigmoid: _simple("Sigmoid"),
    nn.Tanh: _simple("Tanh"),
    nn.Flatten: _simple("Flatten", axis=1),
    nn.Dropout: _simple("Identity"),
    nn.Dropout2d: _simple("Identity"),
    nn.LeakyReLU: lambda g, m, x, name, _: g.node("LeakyRelu", [x], name, alpha=float(m.negative_slope)),
    nn.Softmax: lambda g, m, x, name, _: g.node("Softmax", [x], name, axis=m.dim),
    nn.LogSoftmax: lambda g, m, x, name, _: g.node("LogSoftmax", [x], name, axis=m.dim),
    nn.Embedding: lambda g, m, x, name, _: g.node("Gather", [g.weight(f"{name}.weight", m.weight.data), x], name),
    CharLSTM: _char_lstm,
}
# Layers that are the identity in eval mode, by class name: random augmentation
# (RandomShiftFlip) is matched wherever its module lives.
_IDENTITY_IN_EVAL = {"RandomShiftFlip"}


def _emit(g: _Graph, module: nn.Module, x: str, x_array, name: str):
    """Emit the nodes of ``module`` applied to tensor ``x``; ``x_array`` is a sample
    input of the right shape, pushed through alongside so converters see real sizes.
    Returns the output tensor's name and the sample output."""
    if isinstance(module, nn.Sequential):
        for child_name, child in module._modules.items():
            x, x_array = _emit(g, child, x, x_array, f"{name}.{child_name}" if name else child_name)
        return x, x_array
    converter = _CONVERTERS.get(type(module))
    if converter is None and type(module).__name__ in _IDENTITY_IN_EVAL:
        converter = _simple("Identity")
    if converter is None:
        known = ", ".join(sorted([t.__name__ for t in _CONVERTERS] + list(_IDENTITY_IN_EVAL)))
        what = f"layer '{name}' ({type(module).__name__})" if name else \
            f"the model {type(module).__name__} (a Sequential of supported layers is walked layer by layer)"
        raise ValueError(f"export_onnx: no ONNX converter for {what}; supported: {known}")
    return converter(g, module, x, name or type(module).__name__, x_array), module(x_array)


def takes_ids(model: nn.Module) -> bool:
    """Whether the model's first layer is an ``Embedding``: its input is int64 token ids (N, T)."""
    first = next((m for _, m in model.named_modules() if not m._modules), None)
    return isinstance(first, nn.Embedding)


def input_dims(model: nn.Module, input_shape) -> list:
    """The graph input's dimensions: ["N", "T"] for token ids, else ["N", *input_shape]."""
    return ["N", "T"] if takes_ids(model) else ["N", *input_shape]


def _metadata_props(metadata: dict, outputs: int, ids: bool) -> dict:
    """The ``metadata_props`` of the exported model, from the run's ``metadata``,
    whose fields are checked here (a damaged file fails with a one-line error)."""
    props = {key: metadata[key] for key in ("model", "data") if isinstance(metadata.get(key), str)}
    classes = metadata.get("classes")
    if classes is not None:
        if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
            raise ValueError(f"metadata 'classes' must be a list of names, got {classes!r:.80}")
        if len(classes) != outputs:
            raise ValueError(f"metadata lists {len(classes)} class names, but the model has {outputs} outputs")
        props["classes"] = json.dumps(classes)
    if ids:
        props["input"] = "int64 token ids (N, T), each indexing classes; logits (N, T, classes) of the next token"
        return props
    scale = metadata.get("input_scale", INPUT_SCALES.get(metadata.get("data")))
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"metadata 'input_scale' must be a positive number, got {scale!r:.80}")
        props["input_scale"] = repr(float(scale))
    props["input"] = "float (N, ...): the raw values (e.g. pixels 0..255) times input_scale; logits (N, classes)"
    return props


def _check_input_shape(input_shape) -> tuple:
    if not (isinstance(input_shape, (list, tuple)) and input_shape
            and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in input_shape)):
        raise ValueError(f"input shape must be a non-empty list of positive ints, got {input_shape!r:.80}")
    return tuple(int(d) for d in input_shape)


def to_onnx(model: nn.Module, input_shape, metadata: dict | None = None):
    """Build the ``onnx.ModelProto`` of ``model`` for inputs of shape (N, *input_shape)
    (token ids: (N, T), ``input_shape`` = (T,) of the sample pushed through);
    ``metadata``: the run's, see the module docstring."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ImportError('export_onnx needs the onnx package: pip install "handgrad[onnx]"') from exc
    input_shape = _check_input_shape(input_shape)
    params = model.parameters()
    dtype = params[0].data.dtype if params else np.dtype(np.float32)
    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}[np.dtype(dtype)]
    ids = takes_ids(model)
    g = _Graph(helper, numpy_helper)
    xp = model.array_module()
    was_training = model.training
    model.eval()
    try:
        sample = xp.zeros((1, *input_shape), dtype=xp.int64 if ids else dtype)
        out, sample = _emit(g, model, "input", sample, "")
    finally:
        model.train(was_training)
    if g.nodes and g.nodes[-1].output[0] == out:
        g.nodes[-1].output[0] = "logits"
    else:  # a model that computes nothing
        g.nodes.append(helper.make_node("Identity", [out], ["logits"], name="logits"))
    out_dims = ["N", "T", *sample.shape[2:]] if ids else ["N", *sample.shape[1:]]
    graph = helper.make_graph(
        g.nodes,
        type(model).__name__,
        [helper.make_tensor_value_info("input", TensorProto.INT64 if ids else elem, input_dims(model, input_shape))],
        [helper.make_tensor_value_info("logits", elem, out_dims)],
        initializer=g.initializers,
    )
    # the IR version of opset 17 (ONNX 1.12), not the installed onnx package's newest, so that
    # runtimes older than that package (e.g. onnxruntime 1.23 reads IR <= 11) load the file
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="handgrad",
                              ir_version=IR_VERSION)
    helper.set_model_props(proto, _metadata_props(metadata or {}, int(sample.shape[-1]), ids))
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model: nn.Module, input_shape, path, metadata: dict | None = None) -> Path:
    """Write ``model`` (eval-mode semantics) as an ONNX file at ``path``, atomically;
    ``metadata`` (the run's) fills the model's ``metadata_props``."""
    proto = to_onnx(model, input_shape, metadata)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:  # (the file's mode as any other the user writes: umask, not 0600)
        f.write(proto.SerializeToString())
    return path
