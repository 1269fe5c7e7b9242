"""Pooling layers: MaxPool2d, AvgPool2d on (N, C, H, W) and MaxPool1d on (N, C, L)."""
from __future__ import annotations

from ..ops import (
    avg_pool2d_backward, avg_pool2d_forward, max_pool1d_backward, max_pool1d_forward,
    max_pool2d_backward, max_pool2d_forward,
)
from ..shapes import output_sizes, resolve_padding
from .conv import int_tuple, padding_arg
from .module import Module
from .validate import check_rank


class _PoolNd(Module):
    """Windows of ``kernel_size`` moved by ``stride`` (default: the kernel size, so
    windows do not overlap) over the input padded by ``padding`` (an int or a
    tuple, at most half the kernel as in PyTorch, or TensorFlow's 'same' / 'valid')."""

    ndim = 2
    layout = "(N, C, H, W)"

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name, n = type(self).__name__, self.ndim
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, n, 1)
        self.stride = self.kernel_size if stride is None else int_tuple(name, "stride", stride, n, 1)
        self.padding = padding_arg(name, padding, n)
        if not isinstance(self.padding, str) and any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(
                f"{name}: padding must be at most half the kernel size, got padding={padding!r} "
                f"for kernel_size={kernel_size!r}"
            )

    def _geometry(self, x):
        check_rank(self, x, (self.ndim + 2,), self.layout)
        dilation = (1,) * self.ndim
        padding = resolve_padding(self.padding, x.shape[2:], self.kernel_size, self.stride, dilation)
        try:
            output_sizes(x.shape[2:], self.kernel_size, self.stride, padding, dilation)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: input shape {tuple(x.shape)}: {exc}") from None
        return padding

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}"


class MaxPool2d(_PoolNd):
    """out = max over each window; the gradient goes to the position of the maximum
    (the first one on ties). Padding is -inf, so it is never selected."""

    def forward(self, x):
        out, self._cache = max_pool2d_forward(x, self.kernel_size, self.stride, self._geometry(x))
        return out

    def backward(self, dout):
        return max_pool2d_backward(dout, self._cache)


class AvgPool2d(_PoolNd):
    """out = mean over each window, zero padding counted in the divisor (PyTorch's
    default ``count_include_pad=True``; with 'same' this differs from TensorFlow,
    which averages over the real pixels only); every window position gets dout / (kh kw)."""

    def forward(self, x):
        out, self._cache = avg_pool2d_forward(x, self.kernel_size, self.stride, self._geometry(x))
        return out

    def backward(self, dout):
        return avg_pool2d_backward(dout, self._cache)


class MaxPool1d(_PoolNd):
    """Max pooling over the last axis of (N, C, L) inputs."""

    ndim = 1
    layout = "(N, C, L)"

    def forward(self, x):
        (padding,) = self._geometry(x)
        out, self._cache = max_pool1d_forward(x, self.kernel_size[0], self.stride[0], padding)
        return out

    def backward(self, dout):
        return max_pool1d_backward(dout, self._cache)
