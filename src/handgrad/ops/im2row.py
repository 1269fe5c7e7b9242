"""Convolution for small images: im2row, one row of the patch matrix per output pixel.

:mod:`.conv`'s im2col gives every sample its own matrix product,
(F, K) @ (K, T) with K = KH*KW*C and T about OH*OW columns. On a small image
(the cnn's 7 x 7 layer: T = 63, 49 of them real) that product is narrow, a
width at which the matrix kernels run well below their speed, and the junk
columns of the wide layout are a fifth of it. Here the samples' pixels are
stacked instead, channels last, into one tall matrix per chunk of samples:

    rows[(n, i, j), (p, q, c)] = xp[n, sh*i + dh*p, sw*j + dw*q, c]     (M, K), M = chunk * OH*OW
    out[(n, i, j), f]          = rows @ W2^T + b                         (M, F)

with xp the zero-padded input, channels last (N, HP, WP, C), and W2 the
weights with axes (F, KH, KW, C), as in :mod:`.conv`. Every row of ``rows``
holds KH runs of KW*C consecutive values of xp (for dilation 1), so the rows
are copied with long contiguous runs, no junk, and the product is one tall
matrix times a (K, F) one. Gradients, with D = dout as (M, F), pixels as rows:

    dL/dW2^T = rows^T @ D          (with the ones column for the bias, db is its last row)
    dL/drows = D @ W2,  dL/dxp[n, sh*i + dh*p, sw*j + dw*q, c] += dL/drows[(n, i, j), (p, q, c)]

(col2im channels last: KH*KW strided additions, each a slab of the chunk).
The price is two transposes, NCHW -> NHWC for the input and back for the
output (and the same for the gradients), cheap next to the products.

:func:`use_im2row` picks this layout where it is faster (measured on the
project's machines, one core, batch 64, 3x3 kernels: a 7 x 7 image with 48 ->
64 channels forward and backward 8.4 against 14.4 ms; 4 x 4 with 64 -> 128
5.7 against 12.3; 8 x 8 with 32 -> 64 7.1 against 9.0; even at 10 x 10 and
14 x 14, and slower with 8 input channels, whose runs are short). Groups
stay with :mod:`.conv`.
"""
from __future__ import annotations

from typing import NamedTuple

from ..backend import array_module
from .chunks import sample_chunks

# im2col's per-sample product with at most this many (wide) columns is narrow enough to lose to im2row
MAX_COLUMNS = 100
# ... provided each kernel row's run of KW*C input values is at least this long
MIN_RUN = 32


def use_im2row(g, channels: int, kw: int, dilation_w: int, groups: int) -> bool:
    """Whether a convolution with :class:`.conv._Geometry` ``g`` runs as im2row."""
    run = kw * channels if dilation_w == 1 else channels
    return groups == 1 and g.t <= MAX_COLUMNS and run >= MIN_RUN


class Cache(NamedTuple):
    """What :func:`backward` needs of a :func:`forward` call."""
    g: object        # the layer's geometry (.conv._Geometry)
    padded: object   # the zero-padded input, channels last (N, HP, WP, C)
    w: object        # the weights (F, C, KH, KW)
    has_bias: bool


def _padded_rows(x, g):
    """x (N, C, H, W) zero-padded, channels last: (N, HP, WP, C)."""
    xp = array_module(x)
    n, c = x.shape[:2]
    padded = xp.zeros((n, g.hp, g.wp, c), dtype=x.dtype)
    padded[:, g.top:g.top + g.h, g.left:g.left + g.w] = x.transpose(0, 2, 3, 1)
    return padded


def _windows(padded, g, kh, kw):
    """The strided view (N, OH, OW, KH, KW, C) of the padded input that the rows copy:
    windows[n, i, j, p, q, c] = padded[n, sh*i + dh*p, sw*j + dw*q, c]."""
    xp = array_module(padded)
    (sh, sw), (dh, dw) = g.stride, g.dilation
    s_n, s_h, s_w, s_c = padded.strides
    n, c = padded.shape[0], padded.shape[3]
    return xp.lib.stride_tricks.as_strided(
        padded, (n, g.oh, g.ow, kh, kw, c), (s_n, sh * s_h, sw * s_w, dh * s_h, dw * s_w, s_c))


def _row_buffer(xp, samples, g, k, has_bias, dtype):
    """Room for the rows of ``samples`` samples, (samples, OH, OW, K [+ 1]), the bias's ones in place."""
    rows = xp.empty((samples, g.oh, g.ow, k + has_bias), dtype=dtype)
    if has_bias:
        rows[..., k] = 1
    return rows


def _fill_rows(buffer, windows, samples, k):
    """Copy the windows of ``samples`` (a slice) into the buffer; returns its filled part as (M, K [+ 1])."""
    block = windows[samples]
    part = buffer[:len(block)]
    part[..., :k].reshape(block.shape)[...] = block
    return part.reshape(len(block) * part.shape[1] * part.shape[2], part.shape[3])


def forward(x, w, b, g):
    """out = rows @ W2^T + b a chunk of samples at a time; x (N, C, H, W), w (F, C, KH, KW),
    b (F,) or None, ``g`` the layer's geometry -> out (N, F, OH, OW) and the cache for :func:`backward`."""
    xp = array_module(x)
    n, c = x.shape[:2]
    f, _, kh, kw = w.shape
    k, has_bias = kh * kw * c, b is not None
    padded = _padded_rows(x, g)
    windows = _windows(padded, g, kh, kw)
    w2t = w.transpose(2, 3, 1, 0).reshape(k, f)
    if has_bias:
        w2t = xp.concatenate([w2t, b.reshape(1, f)])
    out = xp.empty((n, f, g.oh * g.ow), dtype=xp.result_type(w2t, x))
    chunks = sample_chunks(xp, n, (k + has_bias) * g.oh * g.ow * x.itemsize)
    buffer = _row_buffer(xp, chunks[0].stop, g, k, has_bias, x.dtype)
    for samples in chunks:
        m = samples.stop - samples.start
        product = _fill_rows(buffer, windows, samples, k) @ w2t
        out[samples] = product.reshape(m, g.oh * g.ow, f).transpose(0, 2, 1)
    return out.reshape(n, f, g.oh, g.ow), Cache(g, padded, w, has_bias)


def backward(dout, cache, input_grad=True):
    """(dx, dw, db) of :func:`forward` (see the module docstring); dx None with ``input_grad=False``."""
    g, padded, w, has_bias = cache
    xp = array_module(dout)
    n, f = dout.shape[:2]
    _, c, kh, kw = w.shape
    k, pixels = kh * kw * c, g.oh * g.ow
    (sh, sw), (dh, dw) = g.stride, g.dilation
    windows = _windows(padded, g, kh, kw)
    w2 = w.transpose(0, 2, 3, 1).reshape(f, k)
    chunks = sample_chunks(xp, n, (k + has_bias + f) * pixels * dout.itemsize)
    buffer = _row_buffer(xp, chunks[0].stop, g, k, has_bias, padded.dtype)
    d_rows = xp.empty((chunks[0].stop, g.oh, g.ow, f), dtype=dout.dtype)
    dx = xp.empty((n, c, g.h, g.w), dtype=dout.dtype) if input_grad else None
    dxp = xp.empty((chunks[0].stop, g.hp, g.wp, c), dtype=dout.dtype) if input_grad else None
    dw2t = None
    for samples in chunks:
        m = samples.stop - samples.start
        d_rows[:m] = dout[samples].transpose(0, 2, 3, 1)
        d = d_rows[:m].reshape(m * pixels, f)
        part = _fill_rows(buffer, windows, samples, k).T @ d
        dw2t = part if dw2t is None else dw2t + part
        if input_grad:
            d_windows = (d @ w2).reshape(m, g.oh, g.ow, kh, kw, c)
            grad = dxp[:m]
            grad[...] = 0
            for p in range(kh):
                for q in range(kw):
                    grad[:, dh * p:dh * p + sh * (g.oh - 1) + 1:sh, dw * q:dw * q + sw * (g.ow - 1) + 1:sw] += \
                        d_windows[:, :, :, p, q]
            dx[samples] = grad[:, g.top:g.top + g.h, g.left:g.left + g.w].transpose(0, 3, 1, 2)
    db = dw2t[k] if has_bias else None
    dw = dw2t[:k].reshape(kh, kw, c, f).transpose(3, 2, 0, 1)
    return dx, dw, db
