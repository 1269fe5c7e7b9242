"""Data augmentation as a layer: random shifts and left-right flips, in training mode only."""
from __future__ import annotations

import numpy as np

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
    checkpointed run resumes exactly: one draw per training batch, a seed from
    which the whole batch's flips and offsets are drawn. With the batch's rows
    split between processes (``shard``, see :class:`handgrad.nn.Dropout`) each
    process takes its rows of them. Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    draws_random = True
    shard = None  # set by parallel.DataParallel while a batch is split; None: the whole batch is here

    def __init__(self, shift: int = 2, flip: bool = True):
        super().__init__()
        if not (isinstance(shift, int) and not isinstance(shift, bool) and shift >= 0):
            raise ValueError(f"RandomShiftFlip: shift must be an int >= 0, got {shift!r}")
        self.shift, self.flip = shift, bool(flip)

    def draw_seed(self):
        """This layer's draw for one training batch: the seed of its flips and offsets."""
        return int(get_rng().integers(2**63))

    def forward(self, x):
        if not self.training:
            self._cache = None
            return x
        shard = self.shard
        seed, start, n = (self.draw_seed(), 0, len(x)) if shard is None else (shard.seed, shard.start, shard.total)
        s, rng, mine = self.shift, get_rng(seed), slice(start, start + len(x))
        flips = rng.random(n) < 0.5 if self.flip else np.zeros(n, dtype=bool)
        rows = rng.integers(-s, s + 1, size=n)
        cols = rng.integers(-s, s + 1, size=n)
        out, self._cache = shift_flip_forward(x, flips[mine], rows[mine], cols[mine])
        return out

    def backward(self, dout):
        return dout if self._cache is None else shift_flip_backward(dout, self._cache)

    def extra_repr(self):
        return f"shift={self.shift}, flip={self.flip}"
