"""Inverted dropout."""
from __future__ import annotations


def dropout_forward(x, p, rng):
    """Keep each element with probability q = 1 - p and scale survivors by 1/q,
    so E[out] = x and nothing needs rescaling at test time:

        mask_i ~ Bernoulli(q) / q,   out = x * mask

    ``rng`` is a NumPy Generator (or CuPy RandomState) drawing uniforms in x's shape.
    """
    q = 1.0 - p
    mask = (rng.random(x.shape, dtype=x.dtype) < q) * x.dtype.type(1.0 / q)
    return x * mask, mask


def dropout_backward(dout, mask):
    """dx = dout * mask"""
    return dout * mask
