"""Dropout and Dropout2d."""
from __future__ import annotations

from ..backend import get_rng
from ..ops import dropout2d_forward, dropout_backward, dropout_forward
from ..validate import fraction
from .module import Module
from .validate import check_rank


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p`` and
    scale the rest by 1/(1-p); in eval mode, the identity.

    Each training batch takes one draw from the generator, a seed, from which
    the whole batch's mask is drawn. When the batch's rows are split between
    processes (:mod:`handgrad.parallel`), ``shard`` says which rows this process
    holds and carries the caller's seed: every process slices its rows of the
    same mask, so the split changes nothing.
    """

    draws_random = True
    blas_bound = True  # one cheap element-wise pass
    shard = None  # set by parallel.DataParallel while a batch is split; None: the whole batch is here

    _forward = staticmethod(dropout_forward)

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        self.p = fraction(p, f"{type(self).__name__}: p", high_open=True)
        # None: draw from the global generator at call time, so manual_seed() applies
        self._rng = None if rng is None else get_rng(rng)

    def draw_seed(self):
        """This layer's draw for one training batch: the seed of its mask (None: it draws nothing)."""
        return None if self.p == 0.0 else int(get_rng(self._rng).integers(2**63))

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._cache = None
            return x
        shard = self.shard
        seed, rows = (self.draw_seed(), None) if shard is None else (shard.seed, (shard.start, shard.total))
        out, self._cache = self._forward(x, self.p, get_rng(seed), rows)
        return out

    def backward(self, dout):
        return dout if self._cache is None else dropout_backward(dout, self._cache)

    def extra_repr(self):
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Channel-wise inverted dropout on (N, C, H, W) or (N, C, L) inputs: in training,
    zero each whole channel of each sample with probability ``p`` and scale the rest
    by 1/(1-p); in eval mode, the identity."""

    _forward = staticmethod(dropout2d_forward)

    def forward(self, x):
        check_rank(self, x, (3, 4), "(N, C, L) or (N, C, H, W)")
        return super().forward(x)

