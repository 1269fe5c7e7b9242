"""Random shift and left-right flip of images, as a pure kernel: the random
numbers come in as arguments (``nn.RandomShiftFlip`` draws them), so the same
arguments always give the same output and the pair can be gradient-checked.

For sample n with flip f_n and offsets (a_n, b_n):

    x'[n]          = x[n, :, :, ::-1] if f_n else x[n]
    out[n, c, i, j] = x'[n, c, i + a_n, j + b_n]   (0 where that falls outside the image)

The map is linear and sends each input pixel to at most one output pixel, so
dL/dx routes dout back along the same index map (and flips back):

    dx'[n, c, i + a_n, j + b_n] = dout[n, c, i, j],  dx[n] = dx'[n, :, :, ::-1] if f_n else dx'[n]

Shapes: x (N, C, H, W); flips (N,) bool; row_offsets, col_offsets (N,) ints.
"""
from __future__ import annotations

import numpy as np

from ..backend import array_module, to_host


def shift_flip_forward(x, flips, row_offsets, col_offsets):
    """out[n, c, i, j] = x'[n, c, i + a_n, j + b_n] (see the module docstring); -> (out, cache)."""
    xp = array_module(x)
    n, c, h, w = x.shape
    # pad by the largest offset, so every shifted window reads inside the padded image; the
    # padding is a Python int, read on the host, where the offsets are drawn
    s = int(max(np.abs(to_host(row_offsets)).max(initial=0), np.abs(to_host(col_offsets)).max(initial=0)))
    flips = xp.asarray(flips, dtype=bool)
    row_offsets, col_offsets = xp.asarray(row_offsets), xp.asarray(col_offsets)
    rows = (s + row_offsets)[:, None] + xp.arange(h)
    cols = (s + col_offsets)[:, None] + xp.arange(w)
    index = (xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None],
             rows[:, None, :, None], cols[:, None, None, :])
    padded = xp.zeros((n, c, h + 2 * s, w + 2 * s), dtype=x.dtype)
    padded[:, :, s:s + h, s:s + w] = xp.where(flips[:, None, None, None], x[..., ::-1], x)
    return padded[index], (index, flips, padded.shape, s)


def shift_flip_backward(dout, cache):
    """dL/dx: dout scattered back along the index map, cropped and flipped back."""
    index, flips, shape, s = cache
    xp = array_module(dout)
    h, w = dout.shape[2:]
    dpadded = xp.zeros(shape, dtype=dout.dtype)
    dpadded[index] = dout  # one output pixel per input pixel at most: no collisions to add up
    dx = dpadded[:, :, s:s + h, s:s + w]
    return xp.where(flips[:, None, None, None], dx[..., ::-1], dx)
