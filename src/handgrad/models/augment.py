"""Data augmentation as a layer: random shifts and left-right flips, in training mode only."""
from __future__ import annotations

from ..backend import array_module, get_rng
from ..nn import Module


class RandomShiftFlip(Module):
    """In training mode, flip each image left-right with probability 1/2 (when
    ``flip``) and move it by up to ``shift`` pixels in each direction, filling with
    zeros; in eval mode, the identity. As the first layer of a model it shows the
    network a slightly different image every epoch, which narrows the gap between
    training and test accuracy.

    For sample n with flip f_n and offsets (a_n, b_n) in [-shift, shift]:

        out[n, c, i, j] = x'[n, c, i + a_n, j + b_n]   (0 outside the image)
        x' = x[..., ::-1] if f_n else x

    The map is linear and each input pixel lands in at most one output pixel, so
    the backward pass sends dout back along the same index map (and flips back).
    Random draws come from the global handgrad generator, so a checkpointed run
    resumes exactly. Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    draws_random = True

    def __init__(self, shift: int = 2, flip: bool = True):
        super().__init__()
        if not (isinstance(shift, int) and shift >= 0):
            raise ValueError(f"RandomShiftFlip: shift must be an int >= 0, got {shift!r}")
        self.shift, self.flip = shift, bool(flip)

    def forward(self, x):
        if not self.training:
            self._cache = None
            return x
        xp = array_module(x)
        n, c, h, w = x.shape
        s, rng = self.shift, get_rng()
        flipped = xp.asarray(rng.random(n) < 0.5) if self.flip else xp.zeros(n, dtype=bool)
        rows = xp.asarray(s + rng.integers(-s, s + 1, size=n))[:, None] + xp.arange(h)
        cols = xp.asarray(s + rng.integers(-s, s + 1, size=n))[:, None] + xp.arange(w)
        index = (xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :])
        padded = xp.zeros((n, c, h + 2 * s, w + 2 * s), dtype=x.dtype)
        padded[:, :, s:s + h, s:s + w] = xp.where(flipped[:, None, None, None], x[..., ::-1], x)
        self._cache = (index, flipped, padded.shape)
        return padded[index]

    def backward(self, dout):
        if self._cache is None:
            return dout
        index, flipped, shape = self._cache
        xp = array_module(dout)
        s = self.shift
        h, w = dout.shape[2:]
        dpadded = xp.zeros(shape, dtype=dout.dtype)
        dpadded[index] = dout
        dx = dpadded[:, :, s:s + h, s:s + w]
        return xp.where(flipped[:, None, None, None], dx[..., ::-1], dx)

    def extra_repr(self):
        return f"shift={self.shift}, flip={self.flip}"
