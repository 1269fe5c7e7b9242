"""Batch normalisation kernels (Ioffe & Szegedy, 2015).

Statistics are per channel (axis 1) over every other axis: for x of shape
(N, C) that is the batch, for (N, C, L) or (N, C, H, W) the batch and the
spatial positions. With M = number of values per channel:

Training:
    mu = (1/M) sum x,   var = (1/M) sum (x - mu)^2   (biased, as PyTorch normalises)
    xhat = (x - mu) / sqrt(var + eps),   out = gamma * xhat + beta

    dL/dbeta  = sum dout,   dL/dgamma = sum dout * xhat
    dL/dx     = (1 / (M sqrt(var + eps))) * (M g - sum g - xhat * sum(g * xhat)),   g = dout * gamma

(the two sums are what mu and var contribute: every x moves the mean and the variance).

Passes over memory: forward keeps x - mu (which the variance needs anyway) for
backward rather than a separate xhat, and writes out = (x - mu) * (gamma / sqrt(var + eps))
+ beta as one product and one in-place add. Backward takes sum g * xhat as
sum dout * (x - mu) times gamma / sqrt(var + eps) and writes dL/dx as
a dout + b (x - mu) + c with per-channel a, b, c. Per-channel sums are einsums
(faster than ``sum(axis=...)`` over several axes, and no product array);
per-channel factors are spread over one sample's (C, ...) positions, so that
NumPy's loops run over whole samples (see ``_per_channel``).

Split batches: with the batch's rows spread over processes, each process holds
some rows of x, and every sum above runs over the whole batch. ``allreduce``
(a function: a process's partial sums -> the sums over all processes; the
identity, by default, when the whole batch is here) adds them up, and ``m`` is
the whole batch's M. Forward exchanges sum x, then sum (x - mu)^2 (two passes,
as with one process, for the same rounding); backward exchanges sum g and
sum g * xhat together. dgamma and dbeta stay partial: they are parameter
gradients, which the processes add up anyway.

Evaluation uses fixed running statistics, so the layer is a per-channel affine map:
    out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
    dL/dx = dout * gamma / sqrt(running_var + eps)
"""
from __future__ import annotations

import math
from typing import NamedTuple

from ..backend import array_module


class BatchNormCache(NamedTuple):
    centered: object  # x - mean; xhat = centered * inv_std
    inv_std: object  # 1 / sqrt(var + eps), shape (C,)
    gamma: object
    mean: object  # batch mean (training) or running mean (eval), shape (C,)
    var: object  # biased batch variance (training) or running variance (eval), shape (C,)
    training: bool
    m: int  # values per channel in the whole batch


def _here(sums):
    return sums  # the whole batch is in this process


def _per_channel(v, x):
    """v (C,) laid out over one sample of x, shape (C, ...): ``x op _per_channel(v, x)`` applies
    v[c] to channel c. (Broadcasting v as (1, C, 1, 1) gives the same values, but NumPy then
    runs one short inner loop per (n, c) pair; this array makes it one loop per sample.)"""
    xp = array_module(x)
    spatial = x.shape[2:]
    return xp.repeat(v, math.prod(spatial)).reshape((x.shape[1],) + spatial)


def batch_norm_forward(x, gamma, beta, eps=1e-5, running_mean=None, running_var=None, allreduce=_here, m=None):
    """Normalise x per channel with batch statistics, or with ``running_mean``/``running_var`` when given.

    Shapes: x (N, C, ...), gamma and beta (C,) or None (no affine part),
    running statistics (C,). Returns (out, cache); ``cache.mean`` and
    ``cache.var`` hold the statistics used, from which a layer updates its
    running averages. ``allreduce`` and ``m`` (default: x's own M): for a
    batch split between processes, see the module docstring.
    """
    xp = array_module(x)
    training = running_mean is None
    m = x.size // x.shape[1] if m is None else m
    if training:
        if not x.flags.c_contiguous:  # a strided view, such as a convolution's output (junk columns skipped):
            x = xp.ascontiguousarray(x)  # one copy, then the two passes below run fast contiguous loops
        mean = allreduce(_channel_sum(x)) / m
        centered = x - _per_channel(mean, x)
        var = allreduce(_channel_dot(centered, centered)) / m
    else:
        mean, var = running_mean, running_var
        centered = x - _per_channel(mean, x)
    inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
    scale = inv_std if gamma is None else gamma * inv_std
    out = centered * _per_channel(scale, x)  # gamma * xhat, without xhat
    if gamma is not None:
        out += _per_channel(beta, x)
    return out, BatchNormCache(centered, inv_std, gamma, mean, var, training, m)


def batch_norm_backward(dout, cache, allreduce=_here):
    """Returns (dx, dgamma, dbeta); dgamma and dbeta are None without an affine part
    (for a split batch, this process's share of them)."""
    centered, inv_std, gamma, _, _, training, m = cache
    sum_dout = _channel_sum(dout)
    sum_dout_xhat = _channel_dot(dout, centered) * inv_std
    dgamma, dbeta = (None, None) if gamma is None else (sum_dout_xhat, sum_dout)
    scale = inv_std if gamma is None else gamma * inv_std  # dL/dx = dout * gamma * inv_std + ...
    dx = dout * _per_channel(scale, dout)
    if not training:
        return dx, dgamma, dbeta
    # ... - (inv_std / M) (sum g + xhat sum g xhat), with g = dout gamma: the sums are gamma times dout's,
    # and xhat = centered * inv_std
    sum_dout, sum_dout_xhat = allreduce(array_module(dout).stack([sum_dout, sum_dout_xhat]))
    a = scale / m
    dx -= centered * _per_channel(a * inv_std * sum_dout_xhat, dout)
    dx -= _per_channel(a * sum_dout, dout)
    return dx, dgamma, dbeta


def _subscripts(a):
    """einsum letters for a's axes: n, c, then one per further axis."""
    return "nc" + "xyz"[:a.ndim - 2]


def _channel_sum(a):
    """sum of a per channel (axis 1) over every other axis."""
    s = _subscripts(a)
    return array_module(a).einsum(f"{s}->c", a)


def _channel_dot(a, b):
    """sum of a * b per channel (axis 1) over every other axis, without the product array."""
    s = _subscripts(a)
    return array_module(a).einsum(f"{s},{s}->c", a, b)
