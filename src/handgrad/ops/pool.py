"""Max and average pooling kernels, one pass per kernel offset.

Notation: x (N, C, H, W), kernel (KH, KW), stride (sh, sw), padding
((top, bottom), (left, right)); out (N, C, OH, OW) with
OH = floor((H + top + bottom - KH) / sh) + 1 (likewise OW). For kernel offset
(p, q) let v_pq = xp[:, :, p + sh*i, q + sw*j] over all output pixels (i, j):
a strided view of the padded input xp.

Max pooling (padding with -inf, so padding never wins):

    out = max_{p, q} v_pq,   k* = the first offset (row-major) attaining the max
    dL/dx[n, c, p* + sh*i, q* + sw*j] += dout[n, c, i, j]

Each gradient goes to exactly one input, the position of the maximum (the
first one on ties, as PyTorch). Overlapping windows (stride < kernel) may send
several gradients to the same input; they add up.

Average pooling (zeros padding, counted in the divisor as PyTorch's default
``count_include_pad=True``):

    out = (1 / (KH KW)) sum_{p, q} v_pq,   dL/dx at every window position += dout / (KH KW)

Both backward passes loop over the KH*KW offsets, each adding a whole
(N, C, OH, OW) slab onto a strided slice: no loops over pixels, no np.add.at.
"""
from __future__ import annotations

from ..backend import array_module
from .conv import _pad, _unpad, offset_slice


def _out_hw(shape, kernel, stride, padding):
    (kh, kw), (sh, sw), ((top, bottom), (left, right)) = kernel, stride, padding
    return (shape[2] + top + bottom - kh) // sh + 1, (shape[3] + left + right - kw) // sw + 1


def _offsets(kernel):
    return [(p, q) for p in range(kernel[0]) for q in range(kernel[1])]


def max_pool2d_forward(x, kernel, stride, padding=((0, 0), (0, 0))):
    """out[n, c, i, j] = max of the (KH, KW) window at (sh*i, sw*j) of the -inf-padded input.

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW); the cache holds the argmax
    offset of every window (uint8 when KH*KW <= 256).
    """
    xp = array_module(x)
    out_hw = _out_hw(x.shape, kernel, stride, padding)
    xpad = _pad(x, padding, value=-xp.inf)
    offsets = _offsets(kernel)
    views = [xpad[offset_slice(p, q, out_hw, stride, (1, 1))] for p, q in offsets]
    out = views[0].copy()
    argmax = xp.zeros(out.shape, dtype=xp.uint8 if len(offsets) <= 256 else xp.int32)
    for k, v in enumerate(views[1:], start=1):
        greater = v > out  # strict: on ties the earlier offset keeps the gradient
        xp.copyto(out, v, where=greater)
        argmax[greater] = k
    return out, (x.shape, argmax, kernel, stride, padding)


def max_pool2d_backward(dout, cache):
    """dx: each dout[n, c, i, j] added at the position of its window's maximum."""
    x_shape, argmax, kernel, stride, padding = cache
    xp = array_module(dout)
    (top, bottom), (left, right) = padding
    dxp = xp.zeros((x_shape[0], x_shape[1], x_shape[2] + top + bottom, x_shape[3] + left + right), dtype=dout.dtype)
    zero = dout.dtype.type(0)
    for k, (p, q) in enumerate(_offsets(kernel)):
        dxp[offset_slice(p, q, dout.shape[2:], stride, (1, 1))] += xp.where(argmax == k, dout, zero)
    return _unpad(dxp, padding)


def avg_pool2d_forward(x, kernel, stride, padding=((0, 0), (0, 0))):
    """out[n, c, i, j] = mean of the (KH, KW) window at (sh*i, sw*j) of the zero-padded input."""
    out_hw = _out_hw(x.shape, kernel, stride, padding)
    xpad = _pad(x, padding)
    offsets = _offsets(kernel)
    out = xpad[offset_slice(*offsets[0], out_hw, stride, (1, 1))].copy()
    for p, q in offsets[1:]:
        out += xpad[offset_slice(p, q, out_hw, stride, (1, 1))]
    out *= x.dtype.type(1.0 / len(offsets))
    return out, (x.shape, kernel, stride, padding)


def avg_pool2d_backward(dout, cache):
    """dx: dout / (KH KW) added at every position of each window."""
    x_shape, kernel, stride, padding = cache
    xp = array_module(dout)
    (top, bottom), (left, right) = padding
    dxp = xp.zeros((x_shape[0], x_shape[1], x_shape[2] + top + bottom, x_shape[3] + left + right), dtype=dout.dtype)
    share = dout * dout.dtype.type(1.0 / (kernel[0] * kernel[1]))
    for p, q in _offsets(kernel):
        dxp[offset_slice(p, q, dout.shape[2:], stride, (1, 1))] += share
    return _unpad(dxp, padding)


def max_pool1d_forward(x, kernel, stride, padding=(0, 0)):
    """Max pooling of (N, C, L) inputs: :func:`max_pool2d_forward` on (N, C, 1, L)."""
    out, cache = max_pool2d_forward(x[:, :, None, :], (1, kernel), (1, stride), ((0, 0), padding))
    return out[:, :, 0, :], cache


def max_pool1d_backward(dout, cache):
    return max_pool2d_backward(dout[:, :, None, :], cache)[:, :, 0, :]
