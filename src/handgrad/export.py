"""Export trained models to ONNX, so that they run in any ONNX runtime.

``export_onnx(model, input_shape, path)`` walks a ``Sequential`` (nested ones
included) and emits one ONNX node per layer, with the weights as initializers.
The graph is the model in eval mode: dropout becomes the identity and batch norm
uses its running statistics. The batch dimension is symbolic (``"N"``).
A layer with no ONNX converter raises ``ValueError`` naming it. ``onnx`` is an
optional dependency (``pip install "handgrad[onnx]"``), imported on use.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from . import nn
from .backend import array_module, to_numpy

OPSET = 17


class _Graph:
    """Accumulates nodes and initializers; hands out fresh tensor names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []

    def weight(self, name: str, array) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(to_numpy(array)), name))
        return name

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
                  dilations=list(m.dilation), pads=_pads(m, x_array))


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
}


def _emit(g: _Graph, module: nn.Module, x: str, x_array, name: str):
    """Emit the nodes of ``module`` applied to tensor ``x``; ``x_array`` is a sample
    input of the right shape, pushed through alongside so converters see real sizes.
    Returns the output tensor's name and the sample output."""
    if isinstance(module, nn.Sequential):
        for child_name, child in module._modules.items():
            x, x_array = _emit(g, child, x, x_array, f"{name}.{child_name}" if name else child_name)
        return x, x_array
    converter = _CONVERTERS.get(type(module))
    if converter is None:
        known = ", ".join(sorted(t.__name__ for t in _CONVERTERS))
        raise ValueError(f"export_onnx: no ONNX converter for layer '{name}' ({type(module).__name__}); supported: {known}")
    return converter(g, module, x, name or type(module).__name__, x_array), module(x_array)


def to_onnx(model: nn.Module, input_shape):
    """Build the ``onnx.ModelProto`` of ``model`` for inputs of shape (N, *input_shape)."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ImportError('export_onnx needs the onnx package: pip install "handgrad[onnx]"') from exc
    params = model.parameters()
    dtype = params[0].data.dtype if params else np.dtype(np.float32)
    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}[np.dtype(dtype)]
    g = _Graph(helper, numpy_helper)
    xp = array_module(params[0].data) if params else np
    was_training = model.training
    model.eval()
    try:
        out, sample = _emit(g, model, "input", xp.zeros((1, *input_shape), dtype=dtype), "")
    finally:
        model.train(was_training)
    graph = helper.make_graph(
        g.nodes,
        type(model).__name__,
        [helper.make_tensor_value_info("input", elem, ["N", *input_shape])],
        [helper.make_tensor_value_info(out, elem, ["N", *sample.shape[1:]])],
        initializer=g.initializers,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="handgrad")
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model: nn.Module, input_shape, path) -> Path:
    """Write ``model`` (eval-mode semantics) as an ONNX file at ``path``, atomically."""
    proto = to_onnx(model, tuple(input_shape))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(proto.SerializeToString())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
