"""Batch normalisation layers: BatchNorm1d on (N, C) or (N, C, L), BatchNorm2d on (N, C, H, W)."""
from __future__ import annotations

import numpy as np

from ..backend import array_module, get_default_dtype, to_scalar
from ..ops import batch_norm_backward, batch_norm_forward
from ..validate import fraction, positive_int, positive_number
from .module import Module, Parameter
from .validate import check_channels, check_rank


class _BatchNorm(Module):
    """Per-channel normalisation, see ``handgrad.ops.norm`` for the math.

    Training normalises with the batch statistics and updates the running
    averages (``momentum`` m; ``None`` for a cumulative average):

        running_mean <- (1 - m) running_mean + m mean
        running_var  <- (1 - m) running_var  + m var * M / (M - 1)   (unbiased, as PyTorch)

    Evaluation normalises with the running averages. ``weight`` (gamma, ones)
    and ``bias`` (beta, zeros) exist when ``affine``. ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` are buffers, so the
    ``state_dict`` has PyTorch's keys and loads to and from ``torch.nn.BatchNorm*``.

    When a training batch's rows are split between processes
    (:mod:`handgrad.parallel`), ``shard`` says how many rows the whole batch has
    and brings ``allreduce``, which adds up the processes' per-channel sums:
    the statistics are the whole batch's, as with one process.
    """

    batch_statistics = True
    shard = None  # set by parallel.DataParallel while a batch is split; None: the whole batch is here

    ranks = (4,)
    layout = "(N, C, H, W)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True, dtype=None):
        super().__init__()
        name = type(self).__name__
        positive_int(num_features, f"{name}: num_features")
        positive_number(eps, f"{name}: eps")
        if momentum is not None:
            fraction(momentum, f"{name}: momentum")
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        dtype = dtype or get_default_dtype()
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def forward(self, x):
        check_rank(self, x, self.ranks, self.layout)
        check_channels(self, x, self.num_features)
        gamma = self.weight.data if self.affine else None
        beta = self.bias.data if self.affine else None
        if not self.training:
            out, self._cache = batch_norm_forward(x, gamma, beta, self.eps, self.running_mean, self.running_var)
            return out
        shard = self.shard
        m = x.size // x.shape[1] if shard is None else x.size // x.shape[1] // len(x) * shard.total
        if m < 2:
            raise ValueError(
                f"{type(self).__name__}: training needs more than 1 value per channel to compute a variance, "
                f"got input shape {tuple(x.shape)}"
            )
        if shard is None:
            out, self._cache = batch_norm_forward(x, gamma, beta, self.eps)
        else:
            out, self._cache = batch_norm_forward(x, gamma, beta, self.eps, allreduce=shard.allreduce, m=m)
        self._update_running(self._cache.mean, self._cache.var * (m / (m - 1)))
        return out

    def _update_running(self, mean, unbiased_var):
        self.num_batches_tracked += 1
        factor = 1.0 / to_scalar(self.num_batches_tracked) if self.momentum is None else self.momentum
        xp = array_module(self.running_mean)
        for buf, stat in ((self.running_mean, mean), (self.running_var, unbiased_var)):
            buf *= 1.0 - factor
            buf += xp.asarray(stat * factor, dtype=buf.dtype)

    def backward(self, dout):
        shard = self.shard
        if shard is None or not self._cache.training:
            dx, dgamma, dbeta = batch_norm_backward(dout, self._cache)
        else:
            dx, dgamma, dbeta = batch_norm_backward(dout, self._cache, shard.allreduce)
        if self.affine:
            self.weight.add_grad(dgamma)
            self.bias.add_grad(dbeta)
        return dx

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) features or (N, C, L) sequences, per channel C."""

    ranks = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) images, per channel C (statistics over N, H and W)."""
