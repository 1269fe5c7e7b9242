"""Affine (fully connected) layer kernels."""
from __future__ import annotations


def linear_forward(x, w, b=None):
    """Affine map of flattened inputs.

    Forward:   out = x W^T + b

    Shapes: x (N, d_1, ..., d_k) is flattened to (N, D) with D = d_1 * ... * d_k;
    w (M, D) as in PyTorch (out_features, in_features); b (M,) or None;
    out (N, M).
    """
    x2 = x.reshape(x.shape[0], -1)
    out = x2 @ w.T
    if b is not None:
        out += b
    return out, (x.shape, x2, w, b is not None)


def linear_backward(dout, cache, input_grad=True):
    """Gradients of the affine map.

    dL/dx = dout W            (reshaped back to x's shape; None when not ``input_grad``)
    dL/dW = dout^T x          (M, D)
    dL/db = sum_n dout[n]     (M,), or None without a bias
    """
    x_shape, x2, w, has_bias = cache
    dx = (dout @ w).reshape(x_shape) if input_grad else None
    dw = dout.T @ x2
    db = dout.sum(axis=0) if has_bias else None
    return dx, dw, db
