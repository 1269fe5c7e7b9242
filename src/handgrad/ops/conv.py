"""Convolution kernels (cross-correlation, as in every deep-learning library) via im2col.

Notation for Conv2d: x (N, C, H, W), weight w (F, C, KH, KW), bias b (F,),
stride (sh, sw), dilation (dh, dw), padding ((top, bottom), (left, right)),
out (N, F, OH, OW) with OH = floor((H + top + bottom - dh(KH-1) - 1) / sh) + 1
(likewise OW). With xp the zero-padded input,

    out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * xp[n, c, sh*i + dh*p, sw*j + dw*q]

im2col gathers, for every output pixel, the C*KH*KW input values it sees into
one column, so the whole layer is one matrix product per sample:

    cols[n] = im2col(xp[n])            (C*KH*KW, OH*OW)
    out[n]  = W2 @ cols[n] + b         W2 = w.reshape(F, C*KH*KW)

The columns are built from a strided *view* of xp (no index arrays), copied
once into the layout the matrix product wants.

Gradients, as matrix products and, equivalently, as convolutions:

    dL/db[f] = sum_{n, i, j} dout[n, f, i, j]
    dL/dW2   = sum_n dout[n] @ cols[n]^T
             i.e. dL/dw[f, c, p, q] = sum_{n, i, j} dout[n, f, i, j] * xp[n, c, sh*i + dh*p, sw*j + dw*q]
             -- a cross-correlation of the input with the output gradient
                (dout acting as a kernel dilated by the stride, w's dilation as stride);
    dcols[n] = W2^T @ dout[n],  dL/dxp = col2im(dcols)
             i.e. dL/dxp[n, c, y, x] = sum_{f, p, q} w[f, c, p, q] * dout_s[n, f, y - dh*p, x - dw*q]
             -- a *full* convolution of the stride-dilated output gradient dout_s
                with the kernel (the kernel flipped, relative to cross-correlation),
    and dL/dx is dL/dxp with the padding cropped away.

col2im adds each kernel offset's columns back onto a strided slice of the
padded input: a loop over the KH*KW offsets, never over pixels or samples.

Conv1d is Conv2d on (N, C, 1, L) inputs with (F, C, 1, K) kernels.
"""
from __future__ import annotations

from ..backend import array_module


def _pad(x, padding, value=0):
    """Pad the last two axes of an NCHW array by ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    xp = array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _unpad(x, padding):
    (top, bottom), (left, right) = padding
    return x[:, :, top:x.shape[2] - bottom, left:x.shape[3] - right]


def _out_size(size, kernel, stride, dilation):
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def window_view(xp_, kernel, stride, dilation):
    """Strided view (N, C, KH, KW, OH, OW) of a padded NCHW array:
    view[n, c, p, q, i, j] = xp_[n, c, sh*i + dh*p, sw*j + dw*q]. No copy."""
    xp = array_module(xp_)
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    n, c, h, w = xp_.shape
    oh, ow = _out_size(h, kh, sh, dh), _out_size(w, kw, sw, dw)
    s_n, s_c, s_h, s_w = xp_.strides
    return xp.lib.stride_tricks.as_strided(
        xp_, (n, c, kh, kw, oh, ow), (s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w), writeable=False
    )


def offset_slice(p, q, out_hw, stride, dilation):
    """Index of the (OH, OW) positions that kernel offset (p, q) reads in the padded input."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return (
        slice(None), slice(None),
        slice(dh * p, dh * p + sh * (oh - 1) + 1, sh),
        slice(dw * q, dw * q + sw * (ow - 1) + 1, sw),
    )


def conv2d_forward(x, w, b, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1)):
    """out = W2 @ im2col(pad(x)) + b per sample (see the module docstring).

    Shapes: x (N, C, H, W), w (F, C, KH, KW), b (F,) or None -> out (N, F, OH, OW).
    """
    xp = array_module(x)
    n = x.shape[0]
    f, c, kh, kw = w.shape
    windows = window_view(_pad(x, padding), (kh, kw), stride, dilation)
    oh, ow = windows.shape[4:]
    cols = xp.ascontiguousarray(windows).reshape(n, c * kh * kw, oh * ow)
    w2 = w.reshape(f, c * kh * kw)
    out = xp.matmul(w2, cols)
    if b is not None:
        out += b[:, None]
    cache = (x.shape, cols, w, b is not None, stride, padding, dilation)
    return out.reshape(n, f, oh, ow), cache


def conv2d_backward(dout, cache):
    """Returns (dx, dw, db): db = sum over n, i, j of dout; dW2 = sum_n dout[n] cols[n]^T;
    dx = crop(col2im(W2^T dout)). db is None without a bias. Shapes as the inputs."""
    x_shape, cols, w, has_bias, stride, padding, dilation = cache
    xp = array_module(dout)
    n, f, oh, ow = dout.shape
    _, c, kh, kw = w.shape
    d2 = xp.ascontiguousarray(dout).reshape(n, f, oh * ow)
    db = d2.sum(axis=(0, 2)) if has_bias else None
    dw = xp.matmul(d2, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dcols = xp.matmul(w.reshape(f, c * kh * kw).T, d2).reshape(n, c, kh, kw, oh, ow)
    (top, bottom), (left, right) = padding
    dxp = xp.zeros((n, c, x_shape[2] + top + bottom, x_shape[3] + left + right), dtype=dout.dtype)
    for p in range(kh):
        for q in range(kw):
            dxp[offset_slice(p, q, (oh, ow), stride, dilation)] += dcols[:, :, p, q]
    return _unpad(dxp, padding), dw, db


def conv1d_forward(x, w, b, stride=1, padding=(0, 0), dilation=1):
    """Conv2d on (N, C, 1, L): x (N, C, L), w (F, C, K), b (F,) or None -> out (N, F, OL)."""
    out, cache = conv2d_forward(x[:, :, None, :], w[:, :, None, :], b, (1, stride), ((0, 0), padding), (1, dilation))
    return out[:, :, 0, :], cache


def conv1d_backward(dout, cache):
    """(dx, dw, db) of :func:`conv1d_forward`, through :func:`conv2d_backward`."""
    dx, dw, db = conv2d_backward(dout[:, :, None, :], cache)
    return dx[:, :, 0, :], dw[:, :, 0, :], db
