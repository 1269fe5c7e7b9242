"""Inverted dropout."""
from __future__ import annotations

from ..backend import array_module


def _uniforms(rng, shape, dtype, rows):
    """U(0, 1) draws for the rows ``rows = (start, total)`` of a batch of ``total``
    rows shaped like ``shape`` otherwise: drawn for the whole batch, then sliced,
    so that a process holding some of the rows gets exactly their draws."""
    start, total = (0, shape[0]) if rows is None else rows
    return rng.random((total,) + tuple(shape[1:]), dtype=dtype)[start:start + shape[0]]


def dropout_forward(x, p, rng, rows=None):
    """Keep each element with probability q = 1 - p and scale survivors by 1/q,
    so E[out] = x and nothing needs rescaling at test time:

        mask_i ~ Bernoulli(q) / q,   out = x * mask

    ``rng`` is a NumPy Generator. The keep/drop draws are made on the host and
    copied to x's device, so a seed gives the same mask on CPU and GPU.
    ``rows = (start, total)``: x is rows start, start + 1, ... of a batch of
    ``total`` rows split between processes; the mask is that batch's, sliced.
    """
    q = 1.0 - p
    keep = array_module(x).asarray(_uniforms(rng, x.shape, x.dtype, rows) < q)
    mask = keep * x.dtype.type(1.0 / q)
    return x * mask, mask


def dropout_backward(dout, mask):
    """dx = dout * mask"""
    return dout * mask


def dropout2d_forward(x, p, rng, rows=None):
    """Channel-wise inverted dropout for (N, C, ...) inputs: every channel of every
    sample is kept whole with probability q = 1 - p, or zeroed whole:

        mask[n, c] ~ Bernoulli(q) / q,   out[n, c, ...] = x[n, c, ...] * mask[n, c]

    (Tompson et al., 2015: neighbouring pixels are correlated, so dropping single
    pixels hardly regularises a convolutional layer.)
    """
    q = 1.0 - p
    shape = x.shape[:2] + (1,) * (x.ndim - 2)
    keep = array_module(x).asarray(_uniforms(rng, shape, x.dtype, rows) < q)  # drawn on the host, like dropout's
    mask = keep * x.dtype.type(1.0 / q)
    return x * mask, mask
