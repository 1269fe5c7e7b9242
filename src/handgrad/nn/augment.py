"""Data augmentation as a layer: random shifts and left-right flips, in training mode only."""
from __future__ import annotations

from ..backend import get_rng
from ..ops.augment import shift_flip_backward, shift_flip_forward
from .module import Module


class RandomShiftFlip(Module):
    """In training mode, flip each image left-right with probability 1/2 (when
    ``flip``) and move it by up to ``shift`` pixels in each direction, filling with
    zeros; in eval mode, the identity. As the first layer of a model it shows the
    network a slightly different image every epoch, which narrows the gap between
    training and test accuracy.

    For sample n with flip f_n and offsets (a_n, b_n) drawn uniformly from
    [-shift, shift] (the kernel :func:`handgrad.ops.augment.shift_flip_forward`):

        out[n, c, i, j] = x'[n, c, i + a_n, j + b_n]   (0 outside the image)
        x' = x[..., ::-1] if f_n else x

    The random numbers come from the global handgrad generator, so a
    checkpointed run resumes exactly. Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    draws_random = True

    def __init__(self, shift: int = 2, flip: bool = True):
        super().__init__()
        if not (isinstance(shift, int) and not isinstance(shift, bool) and shift >= 0):
            raise ValueError(f"RandomShiftFlip: shift must be an int >= 0, got {shift!r}")
        self.shift, self.flip = shift, bool(flip)

    def forward(self, x):
        if not self.training:
            self._cache = None
            return x
        n, s, rng = x.shape[0], self.shift, get_rng()
        flips = rng.random(n) < 0.5 if self.flip else [False] * n
        rows = rng.integers(-s, s + 1, size=n)
        cols = rng.integers(-s, s + 1, size=n)
        out, self._cache = shift_flip_forward(x, flips, rows, cols)
        return out

    def backward(self, dout):
        return dout if self._cache is None else shift_flip_backward(dout, self._cache)

    def extra_repr(self):
        return f"shift={self.shift}, flip={self.flip}"
