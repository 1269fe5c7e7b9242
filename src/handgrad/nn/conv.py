"""Convolution layers: Conv1d on (N, C, L) and Conv2d on (N, C, H, W) inputs."""
from __future__ import annotations

import math

from .. import init
from ..backend import get_default_dtype
from ..ops import conv1d_backward, conv1d_forward, conv2d_backward, conv2d_forward
from ..shapes import output_sizes, resolve_padding
from ..validate import positive_int
from .module import Module, Parameter
from .validate import check_channels, check_rank


def int_tuple(layer_name: str, arg: str, value, n: int, minimum: int) -> tuple[int, ...]:
    """``value`` as an n-tuple of ints >= ``minimum`` (an int is repeated), or a clear ValueError."""
    values = (value,) * n if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
    if values is None or len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{layer_name}: {arg} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{layer_name}: {arg} must be >= {minimum}, got {value!r}")
    return values


def padding_arg(layer_name: str, value, n: int):
    """'valid', 'same', or an n-tuple of non-negative ints."""
    if isinstance(value, str):
        if value not in ("valid", "same"):
            raise ValueError(f"{layer_name}: padding must be an int, a tuple, 'valid' or 'same', got {value!r}")
        return value
    return int_tuple(layer_name, "padding", value, n, 0)


class _ConvNd(Module):
    """Shared set-up: arguments as tuples, weight (out, in / groups, *kernel) and bias (out,).

    ``groups`` (PyTorch's argument) splits the input and output channels into that
    many consecutive blocks, output block g seeing input block g only; both channel
    counts must be divisible by it. groups = in_channels is the depthwise convolution.

    Default initialisation is PyTorch's: weight and bias drawn from
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = (in_channels / groups) * prod(kernel_size).

    ``input_grad=False`` makes ``backward`` compute the parameter gradients only
    and return None: for a first layer, whose input is data, this skips the
    col2im (PyTorch likewise computes no gradient for inputs that do not
    require one, Caffe calls it ``propagate_down``).
    """

    ndim = 2
    layout = "(N, C, H, W)"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 input_grad=True, rng=None, dtype=None):
        super().__init__()
        name, n = type(self).__name__, self.ndim
        self.in_channels = positive_int(in_channels, f"{name}: in_channels")
        self.out_channels = positive_int(out_channels, f"{name}: out_channels")
        self.groups = positive_int(groups, f"{name}: groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, n, 1)
        self.stride = int_tuple(name, "stride", stride, n, 1)
        self.padding = padding_arg(name, padding, n)
        self.dilation = int_tuple(name, "dilation", dilation, n, 1)
        self.input_grad = bool(input_grad)
        dtype = dtype or get_default_dtype()
        bound = 1.0 / math.sqrt(in_channels // groups * math.prod(self.kernel_size))
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(init.uniform(shape, -bound, bound, rng=rng, dtype=dtype))
        self.bias = Parameter(init.uniform((out_channels,), -bound, bound, rng=rng, dtype=dtype)) if bias else None

    def _geometry(self, x):
        """Validate x and return its (before, after) padding per spatial dimension."""
        check_rank(self, x, (self.ndim + 2,), self.layout)
        check_channels(self, x, self.in_channels)
        sizes = x.shape[2:]
        padding = resolve_padding(self.padding, sizes, self.kernel_size, self.stride, self.dilation)
        try:
            output_sizes(sizes, self.kernel_size, self.stride, padding, self.dilation)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: input shape {tuple(x.shape)}: {exc}") from None
        return padding

    def _accumulate(self, dw, db):
        self.weight.add_grad(dw)
        if self.bias is not None:
            self.bias.add_grad(db)

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding!r}, dilation={self.dilation}"
            + ("" if self.groups == 1 else f", groups={self.groups}")
            + f", bias={self.bias is not None}"
            + ("" if self.input_grad else ", input_grad=False")
        )


class Conv2d(_ConvNd):
    """2-D cross-correlation: out[n, f] = b[f] + sum_c w[f, c] (star) x[n, c], see ``handgrad.ops.conv``.

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` take an int or a
    pair; ``padding`` also takes 'valid' (none) and 'same' (output size
    ceil(input / stride); at stride 1 exactly PyTorch's 'same', for larger
    strides TensorFlow's rule with the extra pixel at the bottom/right).
    weight (out_channels, in_channels / groups, kh, kw), bias (out_channels,).
    """

    def forward(self, x):
        padding = self._geometry(x)
        bias = self.bias.data if self.bias is not None else None
        out, self._cache = conv2d_forward(x, self.weight.data, bias, self.stride, padding, self.dilation,
                                           self.groups)
        return out

    def backward(self, dout):
        dx, dw, db = conv2d_backward(dout, self._cache, self.input_grad)
        self._accumulate(dw, db)
        return dx


class Conv1d(_ConvNd):
    """1-D cross-correlation on (N, C, L) inputs; the arguments of :class:`Conv2d` with
    single ints (or 1-tuples). weight (out_channels, in_channels / groups, k), bias (out_channels,)."""

    ndim = 1
    layout = "(N, C, L)"

    def forward(self, x):
        (padding,) = self._geometry(x)
        bias = self.bias.data if self.bias is not None else None
        out, self._cache = conv1d_forward(
            x, self.weight.data, bias, self.stride[0], padding, self.dilation[0], self.groups
        )
        return out

    def backward(self, dout):
        dx, dw, db = conv1d_backward(dout, self._cache, self.input_grad)
        self._accumulate(dw, db)
        return dx
