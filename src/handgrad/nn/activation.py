"""Activation layers; each wraps one kernel pair from ``handgrad.ops.activations``."""
from __future__ import annotations

from ..ops import activations as A
from .module import Module


class ReLU(Module):
    """out = max(0, x);  dx = dout * [x > 0]"""

    blas_bound = True

    def forward(self, x):
        out, self._cache = A.relu_forward(x)
        return out

    def backward(self, dout):
        return A.relu_backward(dout, self._cache)


class LeakyReLU(Module):
    """out = x if x > 0 else negative_slope * x"""

    blas_bound = True

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        out, self._cache = A.leaky_relu_forward(x, self.negative_slope)
        return out

    def backward(self, dout):
        return A.leaky_relu_backward(dout, self._cache)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """out = 1 / (1 + e^{-x});  dx = dout * out (1 - out)"""

    blas_bound = True

    def forward(self, x):
        out, self._cache = A.sigmoid_forward(x)
        return out

    def backward(self, dout):
        return A.sigmoid_backward(dout, self._cache)


class Tanh(Module):
    """out = tanh(x);  dx = dout * (1 - out^2)"""

    blas_bound = True

    def forward(self, x):
        out, self._cache = A.tanh_forward(x)
        return out

    def backward(self, dout):
        return A.tanh_backward(dout, self._cache)


class Softmax(Module):
    """out = softmax(x) along ``dim``;  dx = out * (dout - sum(dout * out, dim))"""

    blas_bound = True

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def check_dim(self, x):
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(
                f"{type(self).__name__}: dim={self.dim} is out of range for an input of shape {tuple(x.shape)}"
            )

    def forward(self, x):
        self.check_dim(x)
        out, self._cache = A.softmax_forward(x, self.dim)
        return out

    def backward(self, dout):
        return A.softmax_backward(dout, self._cache)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """out = x - logsumexp(x) along ``dim``;  dx = dout - softmax(x) * sum(dout, dim)"""

    def forward(self, x):
        self.check_dim(x)
        out, self._cache = A.log_softmax_forward(x, self.dim)
        return out

    def backward(self, dout):
        return A.log_softmax_backward(dout, self._cache)
