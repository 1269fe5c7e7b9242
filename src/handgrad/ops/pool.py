"""Max and average pooling kernels.

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

Both are separable: pool along each row first (KW offsets, stride sw), then
down the columns of the result (KH offsets, stride sh). Forward and backward
loop over those KH + KW offsets, each pass moving a whole slab through a
strided slice: no loops over pixels, no np.add.at.

Max pooling with windows that tile the input (stride = kernel, the usual
2 x 2 / 2) instead first gathers the KH KW window offsets into one contiguous
block, a strided copy per offset (:func:`_gather_windows`), and runs both
passes on it; backward sends the gradients back through those KH KW slices. A ufunc on a strided
slice goes through NumPy's general loop a row of OW elements at a time
(OW = 14 or 7 in the zoo's nets): comparing or taking the maximum of two such
slices costs about as much as copying them once, and the row pass does both,
the column pass again on rows of OW. Gathered, every pass after the gather runs
on whole contiguous slabs. The cnn's three pooling layers at batch 64 (one
core, medians of 15 alternating rounds) took 1.36, 0.79 and 0.31 ms forward
against 1.95, 1.41 and 0.68 ms. Backward writes through the same strided
slices either way, and took as long as the separable one: 1.47, 0.79 and 0.31
ms against 1.43, 0.78 and 0.44.
"""
from __future__ import annotations

from ..backend import array_module
from ..shapes import output_sizes
from .chunks import sample_chunks


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


def _window_slice(axis, offset, stride, n_out):
    """Index selecting, along ``axis``, positions offset + stride * i for i < n_out."""
    index = [slice(None)] * 4
    index[axis] = slice(offset, offset + stride * (n_out - 1) + 1, stride)
    return tuple(index)


def _max_over(blocks):
    """(max, first argmax) over equally shaped arrays: ``blocks[k]`` for k = 0, 1, ...
    (a list, or an array's first axis); the argmax as uint8 up to 256 blocks."""
    xp = array_module(blocks[0])
    index = xp.uint8 if len(blocks) <= 256 else xp.int32
    out = blocks[0]
    if len(blocks) == 1:  # a kernel of 1: every window is one element
        return out.copy(), xp.zeros(out.shape, dtype=index)
    argmax = None
    for k in range(1, len(blocks)):
        v = blocks[k]
        greater = v > out  # strict, so on ties the earlier offset keeps the gradient
        out = xp.maximum(out, v)
        # offsets come in increasing order, so "set to k where greater" is a maximum;
        # arithmetic on the mask is much faster than a masked write
        step = greater.view(xp.uint8) if index is xp.uint8 else greater.astype(index)
        argmax = step if argmax is None else xp.maximum(argmax, step * index(k), out=argmax)
    return out, argmax


def _max_along(x, axis, kernel, stride, n_out):
    """1-D max pooling along ``axis``: (max, argmax offset), the first offset on ties."""
    return _max_over([x[_window_slice(axis, k, stride, n_out)] for k in range(kernel)])


def _offset_slice(p, q, kernel, out_size):
    """Index of the elements x[:, :, p + KH i, q + KW j], i < OH, j < OW: offset (p, q) of
    every window, for windows that tile x (stride = kernel)."""
    (kh, kw), (oh, ow) = kernel, out_size
    return slice(None), slice(None), slice(p, p + kh * oh, kh), slice(q, q + kw * ow, kw)


def _gather_windows(x, kernel, out_size):
    """g[p, q] = x[_offset_slice(p, q, ...)] for every window offset (p, q) of windows
    that tile x (stride = kernel): one contiguous (KH, KW, N, C, OH, OW)."""
    xp = array_module(x)
    (kh, kw) = kernel
    g = xp.empty((kh, kw) + x.shape[:2] + tuple(out_size), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            g[p, q] = x[_offset_slice(p, q, kernel, out_size)]
    return g


def _max_along_backward(dout, argmax, axis, kernel, stride, size, out=None):
    """Send each gradient of :func:`_max_along` to its argmax; ``size`` is the input length
    along ``axis``. Written into ``out`` when given (an array of the input's shape)."""
    xp = array_module(dout)
    shape = list(dout.shape)
    shape[axis] = size
    # windows that tile the axis exactly write every slot once: no zeros needed
    tiled = stride == kernel and size == kernel * dout.shape[axis]
    if out is None:
        dx = (xp.empty if tiled else xp.zeros)(shape, dtype=dout.dtype)
    else:
        dx = out
        if not tiled:
            dx[...] = 0
    for k in range(kernel):
        index = _window_slice(axis, k, stride, dout.shape[axis])
        if stride >= kernel:  # windows do not overlap: every input slot is written once at most
            xp.multiply(dout, argmax == k, out=dx[index])
        else:
            dx[index] += xp.where(argmax == k, dout, dout.dtype.type(0))
    return dx


def max_pool2d_forward(x, kernel, stride, padding=((0, 0), (0, 0))):
    """out[n, c, i, j] = max of the (KH, KW) window at (sh*i, sw*j) of the -inf-padded input.

    The max is separable: first along each row (KW offsets, stride sw), then
    down the columns of those row maxima (KH offsets, stride sh), so forward
    and backward make KH + KW passes instead of KH * KW (windows that tile the
    input are first gathered, KH * KW strided copies). Taking the first
    maximum in each pass gives the first maximum of the window in row-major
    order, PyTorch's tie rule (see the module docstring on the gathering).
    Samples are independent, so both run a chunk of samples at a time
    (:mod:`.chunks`), the row maxima still in the cache when the second pass
    reads them.

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW).
    """
    xp = array_module(x)
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = output_sizes(x.shape[2:], kernel, stride, padding, (1, 1))
    tiled = (kh, kw) == (sh, sw)
    outs, args = [], []
    for rows in sample_chunks(xp, len(x), x.size // max(1, len(x)) * x.itemsize):
        xpad = _pad(x[rows], padding, value=-xp.inf)
        if tiled:  # row_max[p] (N, C, OH, OW): the maxima of the windows' row p
            row_max, col_arg = _max_over(_gather_windows(xpad, kernel, (oh, ow)).swapaxes(0, 1))
            out, row_arg = _max_over(row_max)
        else:  # row_max (N, C, Hp, OW): every row's maxima
            row_max, col_arg = _max_along(xpad, 3, kw, sw, ow)
            out, row_arg = _max_along(row_max, 2, kh, sh, oh)
        outs.append(out)
        args.append((rows, col_arg, row_arg))
    out = outs[0] if len(outs) == 1 else xp.concatenate(outs)
    return out, (x.shape, xpad.shape[2:], args, kernel, stride, padding, tiled)


def max_pool2d_backward(dout, cache):
    """dx: each dout[n, c, i, j] added at the position of its window's maximum."""
    x_shape, (hp, wp), args, (kh, kw), (sh, sw), padding, tiled = cache
    xp = array_module(dout)
    out_size = dout.shape[2:]
    # tiling windows that cover the padded input write every element once: no zeros needed
    covered = tiled and (hp, wp) == (kh * out_size[0], kw * out_size[1])
    dxp = (xp.empty if covered or not tiled else xp.zeros)(x_shape[:2] + (hp, wp), dtype=dout.dtype)
    for rows, col_arg, row_arg in args:
        if tiled:
            for p in range(kh):
                d_row_max = dout[rows] * (row_arg == p)
                for q in range(kw):
                    xp.multiply(d_row_max, col_arg[p] == q, out=dxp[rows][_offset_slice(p, q, (kh, kw), out_size)])
        else:
            d_row_max = _max_along_backward(dout[rows], row_arg, 2, kh, sh, hp)
            _max_along_backward(d_row_max, col_arg, 3, kw, sw, wp, out=dxp[rows])
    return _unpad(dxp, padding)


def _sum_along(x, axis, kernel, stride, n_out):
    """1-D sum pooling along ``axis``."""
    out = x[_window_slice(axis, 0, stride, n_out)].copy()
    for k in range(1, kernel):
        out += x[_window_slice(axis, k, stride, n_out)]
    return out


def _sum_along_backward(dout, axis, kernel, stride, size):
    """Every input position of a window gets the window's gradient."""
    xp = array_module(dout)
    shape = list(dout.shape)
    shape[axis] = size
    dx = xp.zeros(shape, dtype=dout.dtype)
    for k in range(kernel):
        dx[_window_slice(axis, k, stride, dout.shape[axis])] += dout
    return dx


def avg_pool2d_forward(x, kernel, stride, padding=((0, 0), (0, 0))):
    """out[n, c, i, j] = mean of the (KH, KW) window at (sh*i, sw*j) of the zero-padded input,
    summed along rows and then down columns (KH + KW passes)."""
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = output_sizes(x.shape[2:], kernel, stride, padding, (1, 1))
    xpad = _pad(x, padding)
    out = _sum_along(_sum_along(xpad, 3, kw, sw, ow), 2, kh, sh, oh)
    out *= x.dtype.type(1.0 / (kh * kw))
    return out, (xpad.shape, kernel, stride, padding)


def avg_pool2d_backward(dout, cache):
    """dx: dout / (KH KW) added at every position of each window."""
    pad_shape, (kh, kw), (sh, sw), padding = cache
    share = dout * dout.dtype.type(1.0 / (kh * kw))
    d_row_sum = _sum_along_backward(share, 2, kh, sh, pad_shape[2])
    return _unpad(_sum_along_backward(d_row_sum, 3, kw, sw, pad_shape[3]), padding)


def max_pool1d_forward(x, kernel, stride, padding=(0, 0)):
    """Max pooling of (N, C, L) inputs: :func:`max_pool2d_forward` on (N, C, 1, L)."""
    out, cache = max_pool2d_forward(x[:, :, None, :], (1, kernel), (1, stride), ((0, 0), padding))
    return out[:, :, 0, :], cache


def max_pool1d_backward(dout, cache):
    return max_pool2d_backward(dout[:, :, None, :], cache)[:, :, 0, :]
