"""Convolution for small images: im2row, one row of the patch matrix per output pixel.

:mod:`.conv`'s im2col gives every sample its own matrix product,
(F, K) @ (K, T) with K = KH*KW*C and T about OH*OW columns. On a small image
(the cnn's 7 x 7 layer: T = 63, 49 of them real) that product is narrow, a
width at which the matrix kernels run well below their speed, and the junk
columns of the wide layout are a fifth of it. Here the samples' pixels are
stacked instead, channels last, into one tall matrix per chunk of samples:

    rows[(n, i, j), (p, q, c)] = P[n, sh*i + dh*p, sw*j + dw*q, c]     (M, K), M = chunk * OH*OW
    out[(n, i, j), f]          = rows @ W2^T + b                        (M, F)

with P the zero-padded input, channels last (N, HP, WP, C), and W2 the
weights with axes (F, KH, KW, C), as in :mod:`.conv`. Every row of ``rows``
holds KH runs of KW*C consecutive values of P (for dilation 1), so the rows
are copied with long contiguous runs, no junk, and the product is one tall
matrix times a (K, F) one. Gradients, with D = dout as (M, F), pixels as rows:

    dL/dW2^T = rows^T @ D          (with the ones column for the bias, db is its last row)
    dL/dx    = a convolution of dout, spread out by the stride, with the kernel
               flipped and its channel axes swapped (:func:`_input_gradient`), itself im2row

(and not D @ W2 added back window by window: KH*KW strided additions, which
took longer than the product at the cnn's 7 x 7 layer). A layer without
padding takes :mod:`.conv`'s separable input gradient instead (chosen in
:func:`.conv.conv2d_backward`): its full convolution would run over a frame
(H + KH - 1) x (W + KW - 1) mostly of zeros, copying KH*KW values per pixel,
where the separable one copies KW per pixel of the input. At LeNet-5's second
layer (6 -> 16 channels, 5 x 5 on 12 x 12, batch 32, one core) that took
0.38 against 0.55 ms, and the whole training step 10% less time; with padding
('same', 7 x 7 or 4 x 4 images) im2row's was the faster, 1.2-2.4 times. The price is the
transposes, NCHW -> NHWC for the input and dout and back for the results,
cheap next to the products.

:func:`use_im2row` picks this layout where it is faster: at most
MAX_COLUMNS wide im2col columns per sample, and runs of at least MIN_RUN
values. Measured on one of the project's machines (2026-12-02; one core,
batch 64, 3x3 kernels, forward and backward, best of 25 alternating rounds),
im2col's time over im2row's: 7 x 7 images with 48 -> 64 channels 1.56 (11.4
against 7.3 ms; PyTorch 5.5), 128 -> 128 1.50, 16 -> 32 1.27, 8 -> 16 1.30,
but 4 -> 8 0.95 and 2 -> 8 0.77 (runs of 12 and 6 values); 4 x 4, 64 -> 128
2.16; 8 x 8, 32 -> 64 1.24; 10 x 10, 48 -> 64 1.18 but 6 -> 16 0.84; 14 x 14
0.93-1.12 (16 to 64 channels); 28 x 28 0.45-0.87. Groups stay with
:mod:`.conv`.
"""

from typing import NamedTuple

from ..backend import array_module
from .chunks import sample_chunks
from .geometry import Geometry

# im2col's per-sample product with at most this many (wide) columns is narrow enough to lose to im2row
MAX_COLUMNS = 100
# ... provided the runs its rows are copied in are at least this long: KW*C values, or C with dilation
MIN_RUN = 24


def use_im2row(g, channels: int, kw: int, groups: int) -> bool:
    """Whether a convolution of :class:`.geometry.Geometry` ``g`` runs as im2row."""
    run = kw * channels if g.dilation[1] == 1 else channels
    return groups == 1 and g.t <= MAX_COLUMNS and run >= MIN_RUN


class Cache(NamedTuple):
    """What :func:`backward` needs of a :func:`forward` call."""
    g: Geometry      # the layer's sizes
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
    padded = _padded_rows(x, g)
    return _product(padded, w, b, g), Cache(g, padded, w, has_bias=b is not None)


def _product(padded, w, b, g):
    """The convolution of the padded input ``padded`` (N, HP, WP, C), channels last,
    with w (F, C, KH, KW) and b (F,) or None, as (N, F, OH, OW): one product per
    chunk of samples."""
    xp = array_module(padded)
    n, c = padded.shape[0], padded.shape[3]
    f, _, kh, kw = w.shape
    k, has_bias = kh * kw * c, b is not None
    windows = _windows(padded, g, kh, kw)
    w2t = w.transpose(2, 3, 1, 0).reshape(k, f)
    if has_bias:
        w2t = xp.concatenate([w2t, b.reshape(1, f)])
    out = xp.empty((n, f, g.oh * g.ow), dtype=xp.result_type(w2t, padded))
    chunks = sample_chunks(xp, n, (k + has_bias) * g.oh * g.ow * padded.itemsize)
    buffer = _row_buffer(xp, chunks[0].stop, g, k, has_bias, padded.dtype)
    for samples in chunks:
        m = samples.stop - samples.start
        product = _fill_rows(buffer, windows, samples, k) @ w2t
        out[samples] = product.reshape(m, g.oh * g.ow, f).transpose(0, 2, 1)
    return out.reshape(n, f, g.oh, g.ow)


def backward(dout, cache, input_grad=True):
    """(dx, dw, db) of :func:`forward` (see the module docstring); dx None with ``input_grad=False``."""
    g, padded, w, has_bias = cache
    xp = array_module(dout)
    n, f = dout.shape[:2]
    _, c, kh, kw = w.shape
    k, pixels = kh * kw * c, g.oh * g.ow
    windows = _windows(padded, g, kh, kw)
    chunks = sample_chunks(xp, n, (k + has_bias + f) * pixels * dout.itemsize)
    buffer = _row_buffer(xp, chunks[0].stop, g, k, has_bias, padded.dtype)
    d_rows = xp.empty((chunks[0].stop, g.oh, g.ow, f), dtype=dout.dtype)
    dw2t = None
    for samples in chunks:
        m = samples.stop - samples.start
        d_rows[:m] = dout[samples].transpose(0, 2, 3, 1)
        part = _fill_rows(buffer, windows, samples, k).T @ d_rows[:m].reshape(m * pixels, f)
        dw2t = part if dw2t is None else dw2t + part
    db = dw2t[k] if has_bias else None
    dw = dw2t[:k].reshape(kh, kw, c, f).transpose(3, 2, 0, 1)
    return (_input_gradient(dout, w, g) if input_grad else None), dw, db


def _input_gradient(dout, w, g):
    """dL/dx, itself a convolution (stride 1, the layer's dilation, no padding) of
    the spread-out output gradient E with the flipped kernel, its channel axes swapped:

        dx[n, c, y, x] = sum_{f, p, q} E[n, y + dh*p, x + dw*q, f] * w[f, c, KH-1-p, KW-1-q]
        E[n, a + sh*i, b + sw*j, f] = dout[n, f, i, j],  zero elsewhere,

    with a = dh*(KH-1) - top and b = dw*(KW-1) - left (output row i reads input
    row y with the kernel row p = (top + y - sh*i) / dh, here KH-1-p). E has
    H + dh*(KH-1) rows and W + dw*(KW-1) columns, so the result is H x W; an
    output row (column) whose window lies wholly in the padding along that axis
    falls outside E: its gradient reaches no input. With a stride, E is mostly
    zeros, multiplied all the same (as :mod:`.conv`'s input gradient does too).
    dx has dout's dtype, as in :mod:`.conv`."""
    xp = array_module(dout)
    n, f = dout.shape[:2]
    _, c, kh, kw = w.shape
    if g.h == 0 or g.w == 0:  # an empty image: every window is padding
        return xp.zeros((n, c, g.h, g.w), dtype=dout.dtype)
    (sh, sw), (dh, dw) = g.stride, g.dilation
    spread = xp.zeros((n, g.h + dh * (kh - 1), g.w + dw * (kw - 1), f), dtype=dout.dtype)
    ys, i = _placement(dh * (kh - 1) - g.top, sh, g.oh, spread.shape[1])
    xs, j = _placement(dw * (kw - 1) - g.left, sw, g.ow, spread.shape[2])
    spread[:, ys, xs] = dout[:, :, i, j].transpose(0, 2, 3, 1)
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    dx = _product(spread, flipped, None, Geometry((n, f) + spread.shape[1:3], (kh, kw), (1, 1),
                                                  ((0, 0), (0, 0)), (dh, dw)))
    return dx.astype(dout.dtype, copy=False)


def _placement(start, stride, count, length):
    """(where, which): the positions start + stride*i inside range(length) for i in
    range(count), as a slice of that range and the slice of the i that land there."""
    first = max(0, -(start // stride))  # the first i with start + stride*i >= 0
    last = min(count, -(-(length - start) // stride))  # one past the last i with start + stride*i < length
    if last <= first:
        return slice(0, 0), slice(0, 0)
    return slice(start + stride * first, start + stride * (last - 1) + 1, stride), slice(first, last)
