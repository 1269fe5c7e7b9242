"""Convolution kernels (cross-correlation, as in every deep-learning library) via im2col.

Notation for Conv2d: x (N, C, H, W), weight w (F, C, KH, KW), bias b (F,),
stride (sh, sw), dilation (dh, dw), padding ((top, bottom), (left, right)),
out (N, F, OH, OW) with OH = floor((H + top + bottom - dh(KH-1) - 1) / sh) + 1
(likewise OW). With xp the zero-padded input,

    out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * xp[n, c, sh*i + dh*p, sw*j + dw*q]

im2col gathers, for every output pixel, the C*KH*KW input values it sees into
one column, so the whole layer is one matrix product per sample:

    cols[n] = im2col(xp[n])            (KH*KW*C, OH*OW)
    out[n]  = W2 @ cols[n] + b         W2 = w with its axes ordered (F, KH, KW, C), as (F, KH*KW*C)

The bias rides along in the same product, as one more column of W2 times a
row of ones appended to cols:  W2 @ cols[n] + b = [W2 | b] @ [cols[n]; 1],
which saves a pass over the output (and, backward, a pass over dout for db).

On a small image with many channels that per-sample product is narrow (the
cnn's 7 x 7 layer: 63 columns) and slow; such layers take the same products
transposed, the pixels of a chunk of samples as the rows of one tall matrix
(:mod:`.im2row`, chosen by :func:`.im2row.use_im2row`).

The columns are built from a strided *view* of xp (no index arrays), copied
into the layout the matrix product wants. Their rows run over (p, q, c),
kernel offset first, so that each offset's block of rows is one slab; and
they are 'wide' (see :func:`conv2d_forward`), so that each slab is one
strided slice of the flattened image.

The batch is taken a chunk of samples at a time (:mod:`.chunks`): the
columns of one chunk (about 512 KiB) are built into one buffer and
multiplied while they are still in the core's cache, instead of all the
columns being written to memory and read back. So the columns are not kept
for backward; the zero-padded input is, 9 times smaller for a 3x3 kernel, and
backward builds each chunk's columns again for dW: a copy more, against
products that read their operands from the cache (the cnn's training step,
one core, batch 64: 38.5 against 43.5 ms), and the columns' memory saved
(12 MB for its 24 -> 48 channel layer at batch 64).

Gradients, as matrix products and, equivalently, as convolutions:

    dL/db[f] = sum_{n, i, j} dout[n, f, i, j]
    dL/dW2   = sum_n dout[n] @ cols[n]^T
             (with the bias folded in, the last column of this product with [cols; 1] is dL/db)
             i.e. dL/dw[f, c, p, q] = sum_{n, i, j} dout[n, f, i, j] * xp[n, c, sh*i + dh*p, sw*j + dw*q]
             -- a cross-correlation of the input with the output gradient
                (dout acting as a kernel dilated by the stride, w's dilation as stride);
    dcols[n] = W2^T @ dout[n],  dL/dxp = col2im(dcols)
             i.e. dL/dxp[n, c, y, x] = sum_{f, p, q} w[f, c, p, q] * dout_s[n, f, y - dh*p, x - dw*q]
             -- a *full* convolution of the stride-dilated output gradient dout_s
                with the kernel (the kernel flipped, relative to cross-correlation),
    and dL/dx is dL/dxp with the padding cropped away.

col2im adds the column gradients back onto the padded input. Done
separably (see :func:`_input_gradient`): KW shifted copies of dout_s and
one matrix product per sample sum over f and q; a loop over the KH kernel
rows adds the row blocks. Loops run over kernel offsets, never over pixels
or samples.

Grouped convolution (``groups`` = G, PyTorch's argument): the C input and F
output channels are cut into G consecutive blocks of Cg = C/G and Fg = F/G,
and output block g sees only input block g; w is (F, Cg, KH, KW):

    out[n, g*Fg + f, i, j] = b[g*Fg + f] + sum_{c < Cg, p, q} w[g*Fg + f, c, p, q] * xp[n, g*Cg + c, sh*i + dh*p, sw*j + dw*q]

So every matrix above gets a leading group axis and each product becomes G
independent products, batched in one ``matmul``: cols[n] (G, KH*KW*Cg, OH*OW),
W2 (G, Fg, KH*KW*Cg). G = C is the depthwise convolution (one kernel per
channel, Fg of them). G = 1 is the plain convolution with a group axis of
length one: the same products and copies, no extra work.

Conv1d is Conv2d on (N, C, 1, L) inputs with (F, Cg, 1, K) kernels.
"""
from __future__ import annotations

from ..backend import array_module
from . import im2row
from .chunks import sample_chunks
from .geometry import Geometry


def _groups(c, w, groups):
    """Cg, Fg per group; a clear error when the channels do not split into ``groups``."""
    f, cg = w.shape[:2]
    if c != groups * cg or f % groups:
        raise ValueError(f"conv: {c} input channels and weight {tuple(w.shape)} do not split into {groups} groups "
                         f"(expected in_channels = groups * weight.shape[1] and out_channels divisible by groups)")
    return cg, f // groups


def _windows(padded, g, groups, w_shape):
    """The strided view (N, G, KH, KW, Cg, T) of the padded input from which the wide
    columns are copied: windows[n, g, p, q, c, s] = flat(padded[n, g*Cg + c])[dh*p*width + dw*q + sw*s]."""
    xp = array_module(padded)
    _, cg, kh, kw = w_shape
    n = padded.shape[0]
    s_n, s_c, _, s_w = padded.strides
    dh, dw = g.dilation
    # a read-only use of overlapping windows (CuPy's as_strided has no writeable=False to say so)
    return xp.lib.stride_tricks.as_strided(
        padded, (n, groups, kh, kw, cg, g.t), (s_n, cg * s_c, dh * g.width * s_w, dw * s_w, s_c, g.sw * s_w)
    )


def _column_buffer(xp, rows, groups, k, has_bias, g, dtype):
    """Room for the wide columns of ``rows`` samples, (rows, G, K [+ 1], T), with the
    bias row of ones already in place."""
    cols = xp.empty((rows, groups, k + has_bias, g.t), dtype=dtype)
    if has_bias:
        cols[:, :, k] = 1
    return cols


def _fill_columns(cols, windows, rows, k):
    """Copy the windows of the samples ``rows`` (a slice) into the buffer's first slots
    (splitting an axis of the buffer is a view, filled in place); returns those slots."""
    block = windows[rows]  # (M, G, KH, KW, Cg, T)
    part = cols[:len(block)]
    part[:, :, :k].reshape(block.shape)[...] = block
    return part


def conv2d_forward(x, w, b, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """out = W2 @ im2col(pad(x)) + b per sample (see the module docstring).

    The columns are 'wide': the padded image is flattened to one axis of
    rows of length ``width``, and output pixel (i, j) of kernel offset (p, q)
    reads flat position  dh*p*width + dw*q + sw*(i*R + j)  with
    R = sh*width/sw. So each offset's column block is one strided 1-D slice,
    copied with long contiguous runs, at the price of R - OW junk columns per
    output row that the matrix product computes and the result drops. The
    rows of cols (and columns of W2) run over (p, q, c), kernel offset first,
    within each group.

    Shapes: x (N, C, H, W), w (F, C/groups, KH, KW), b (F,) or None -> out (N, F, OH, OW).
    """
    xp = array_module(x)
    n, c, _, _ = x.shape
    f, _, kh, kw = w.shape
    cg, fg = _groups(c, w, groups)
    g = Geometry(x.shape, (kh, kw), stride, padding, dilation)
    if im2row.use_im2row(g, c, kw, groups):
        return im2row.forward(x, w, b, g)
    padded = xp.zeros(g.padded, dtype=x.dtype)
    padded[:, :, g.top:g.top + g.h, g.left:g.left + g.w] = x
    windows = _windows(padded, g, groups, w.shape)
    k, has_bias = kh * kw * cg, b is not None
    w2 = w.reshape(groups, fg, cg, kh, kw).transpose(0, 1, 3, 4, 2).reshape(groups, fg, k)
    if has_bias:
        w2 = xp.concatenate([w2, b.reshape(groups, fg, 1)], axis=2)
    # (N, G, Fg, T): G products per sample, in the dtype the product of w2 and the columns has
    wide = xp.empty((n, groups, fg, g.t), dtype=xp.result_type(w2, x))
    chunks = sample_chunks(xp, n, (k + has_bias) * g.t * x.itemsize)
    cols = _column_buffer(xp, chunks[0].stop, groups, k, has_bias, g, x.dtype)
    for rows in chunks:
        xp.matmul(w2, _fill_columns(cols, windows, rows, k), out=wide[rows])
    # a view that drops the junk columns: the next layer reads it once, no copy needed here
    out = wide.reshape(n, f, g.oh, g.row)[..., :g.ow]
    return out, (g, padded, w, has_bias, groups)


def conv2d_backward(dout, cache, input_grad=True):
    """Returns (dx, dw, db): dW2 = sum_n dout[n] cols[n]^T, whose bias column is
    db = sum over n, i, j of dout; dx from :func:`_input_gradient`. db is None
    without a bias; dx is None with ``input_grad=False`` (for a first layer,
    whose input is data). Shapes as the inputs.

    For dW, dout is spread into the wide layout with zeros in the junk columns,
    so the junk columns of cols add nothing. Both are built a chunk of samples
    at a time, the columns again from the padded input, and each chunk's
    products are added to the sum.
    """
    if isinstance(cache, im2row.Cache):
        g = cache.g
        # Without padding, im2row's input gradient is a full convolution over a frame
        # (H + KH - 1) x (W + KW - 1) mostly of zeros, copying KH*KW values per pixel;
        # the separable one below copies KW per pixel of the input's own area, and is faster
        separable = input_grad and g.hp == g.h and g.wp == g.w
        dx, dw, db = im2row.backward(dout, cache, input_grad and not separable)
        return (_input_gradient(dout, cache.w, g, 1) if separable else dx), dw, db
    g, padded, w, has_bias, groups = cache
    xp = array_module(dout)
    n, f, _, _ = dout.shape
    _, cg, kh, kw = w.shape
    fg, k = f // groups, kh * kw * cg
    windows = _windows(padded, g, groups, w.shape)
    chunks = sample_chunks(xp, n, (k + has_bias + f) * g.t * dout.itemsize)
    cols = _column_buffer(xp, chunks[0].stop, groups, k, has_bias, g, padded.dtype)
    wide = xp.zeros((chunks[0].stop, f, g.oh, g.row), dtype=dout.dtype)  # its junk columns stay zero
    dw2 = None
    for rows in chunks:
        m = rows.stop - rows.start
        wide[:m, ..., :g.ow] = dout[rows]
        wide_t = wide[:m].reshape(m, groups, fg, g.t).transpose(0, 1, 3, 2)
        # dW2^T += sum_n cols[n] dout[n]^T per group: BLAS is faster with the long KH*KW*Cg side first
        part = xp.matmul(_fill_columns(cols, windows, rows, k), wide_t).sum(axis=0)
        dw2 = part if dw2 is None else dw2 + part
    db = dw2[:, -1].reshape(f) if has_bias else None
    dw = dw2[:, :k].reshape(groups, kh, kw, cg, fg).transpose(0, 4, 3, 1, 2).reshape(f, cg, kh, kw)
    if not input_grad:
        return None, dw, db
    return _input_gradient(dout, w, g, groups), dw, db


def _input_gradient(dout, w, g, groups):
    """dL/dx = crop(col2im(W2^T dout)), the full convolution of the stride-dilated
    dout_s with the kernel, computed in two separable steps:

    1. KW shifted copies of dout_s (shifted by dw*q along the flat padded image)
       stacked into one matrix D (KW*F, area): a 1-D im2col of dout along rows;
    2. one matrix product per sample, (KH*C, KW*F) @ D, sums over f and q at once,
       leaving KH row blocks; col2im adds block p at row offset dh*p: a loop
       over the KH kernel rows.

    So the KH*KW kernel offsets take KW copies and KH additions instead of
    KH*KW additions. The channels of a sample are laid end to end in one flat
    axis (area = HP*WP each), so every step moves one slice per sample; a
    nonzero entry never crosses a row or channel boundary, because dout_s is
    nonzero only where the whole kernel fits in the padded image. Every
    sample's gradient is its own, so this runs a chunk of samples at a time.

    With groups, D and the product get a group axis, (G, KH*Cg, KW*Fg) @ D[n]
    (G, KW*Fg, area), and the G blocks of Cg channels are put side by side.
    """
    xp = array_module(dout)
    n, f, _, _ = dout.shape
    _, cg, kh, kw = w.shape
    fg, c = f // groups, cg * groups
    (sh, sw), (dh, dw) = g.stride, g.dilation
    hp, wp, area = g.hp, g.wp, g.hp * g.wp
    lead = dw * (kw - 1)  # zeros before the image, read by the largest shift
    extra = -(-lead // wp)
    w3 = w[..., ::-1].reshape(groups, fg, cg, kh, kw).transpose(0, 3, 2, 4, 1).reshape(groups, kh * cg, kw * fg)
    dflat = xp.empty((n, c * area + dh * (kh - 1) * wp), dtype=dout.dtype)
    dflat[:, c * area:] = 0
    chunks = sample_chunks(xp, n, kw * f * area * dout.itemsize)
    # dout_s of a chunk: every chunk writes the same positions, so the zeros elsewhere stay
    spread = xp.zeros((chunks[0].stop, f, extra + hp, wp), dtype=dout.dtype)
    for rows in chunks:
        m = rows.stop - rows.start
        spread[:m, :, extra:extra + sh * (g.oh - 1) + 1:sh, :sw * (g.ow - 1) + 1:sw] = dout[rows]
        flat = spread[:m].reshape(m, f, (extra + hp) * wp)[:, :, extra * wp - lead:]
        s_n, s_f, s_e = flat.strides
        # shifted[n, g, k, f, s] = dout_s[n, g*Fg + f, s - dw*(KW-1-k)]: shift k reads kernel column q = KW-1-k
        shifted = xp.lib.stride_tricks.as_strided(flat, (m, groups, kw, fg, area), (s_n, fg * s_f, dw * s_e, s_f, s_e))
        d = xp.ascontiguousarray(shifted).reshape(m, groups, kw * fg, area)
        # (M, G, KH, Cg*area) -> (M, KH, C*area); for G = 1 a view, no copy
        row_blocks = xp.matmul(w3, d).reshape(m, groups, kh, cg * area).transpose(0, 2, 1, 3).reshape(m, kh, c * area)
        out = dflat[rows]
        out[:, :c * area] = row_blocks[:, 0]
        for p in range(1, kh):
            out[:, dh * p * wp:dh * p * wp + c * area] += row_blocks[:, p]
    dxp = dflat[:, :c * area].reshape(n, c, hp, wp)
    return dxp[:, :, g.top:g.top + g.h, g.left:g.left + g.w]


def conv1d_forward(x, w, b, stride=1, padding=(0, 0), dilation=1, groups=1):
    """Conv2d on (N, C, 1, L): x (N, C, L), w (F, C/groups, K), b (F,) or None -> out (N, F, OL)."""
    out, cache = conv2d_forward(x[:, :, None, :], w[:, :, None, :], b, (1, stride), ((0, 0), padding), (1, dilation),
                                groups)
    return out[:, :, 0, :], cache


def conv1d_backward(dout, cache, input_grad=True):
    """(dx, dw, db) of :func:`conv1d_forward`, through :func:`conv2d_backward`."""
    dx, dw, db = conv2d_backward(dout[:, :, None, :], cache, input_grad)
    return (dx[:, :, 0, :] if input_grad else None), dw[:, :, 0, :], db
