"""Element-wise activations and (log-)softmax.

Each ``*_forward`` returns ``(out, cache)``; each ``*_backward(dout, cache)``
returns ``dx``. Sigmoid, softmax and log-softmax are written so that inputs of
+-1e4 give finite outputs and gradients without overflow warnings.
"""
from __future__ import annotations

from ..backend import array_module


def relu_forward(x):
    """out = max(0, x)"""
    out = array_module(x).maximum(x, 0)
    return out, out


def relu_backward(dout, out):
    """dx = dout * [x > 0]   (the subgradient at 0 is taken as 0, as in PyTorch)"""
    return dout * (out > 0)


def leaky_relu_forward(x, negative_slope=0.01):
    """out = x if x > 0 else a x"""
    xp = array_module(x)
    positive = x > 0
    out = xp.where(positive, x, x * x.dtype.type(negative_slope))
    return out, (positive, negative_slope)


def leaky_relu_backward(dout, cache):
    """dx = dout if x > 0 else a dout"""
    positive, slope = cache
    xp = array_module(dout)
    return xp.where(positive, dout, dout * dout.dtype.type(slope))


def sigmoid_forward(x):
    """out = 1 / (1 + e^{-x}), computed from e^{-|x|} <= 1 so nothing overflows:
    for x >= 0, 1 / (1 + e^{-|x|}); for x < 0, e^{-|x|} / (1 + e^{-|x|})."""
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))
    out = xp.where(x >= 0, 1, e) / (1 + e)
    out = out.astype(x.dtype, copy=False)
    return out, out


def sigmoid_backward(dout, out):
    """dx = dout * s (1 - s)"""
    return dout * out * (1 - out)


def tanh_forward(x):
    """out = tanh(x)"""
    out = array_module(x).tanh(x)
    return out, out


def tanh_backward(dout, out):
    """dx = dout * (1 - tanh(x)^2)"""
    return dout * (1 - out * out)


def softmax_forward(x, dim=-1):
    """p_i = exp(x_i - max_j x_j) / sum_k exp(x_k - max_j x_j) along ``dim``;
    shifting by the max leaves p unchanged and keeps every exponent <= 0."""
    xp = array_module(x)
    e = xp.exp(x - x.max(axis=dim, keepdims=True))
    out = e / e.sum(axis=dim, keepdims=True)
    return out, (out, dim)


def softmax_backward(dout, cache):
    """dx_i = p_i (dout_i - sum_j dout_j p_j)   (the Jacobian diag(p) - p p^T applied to dout)"""
    p, dim = cache
    return p * (dout - (dout * p).sum(axis=dim, keepdims=True))


def log_softmax_forward(x, dim=-1):
    """out_i = x_i - m - log sum_k exp(x_k - m), with m = max_k x_k."""
    xp = array_module(x)
    shifted = x - x.max(axis=dim, keepdims=True)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
    return out, (out, dim)


def log_softmax_backward(dout, cache):
    """dx_i = dout_i - softmax(x)_i sum_j dout_j"""
    out, dim = cache
    xp = array_module(out)
    return dout - xp.exp(out) * dout.sum(axis=dim, keepdims=True)
