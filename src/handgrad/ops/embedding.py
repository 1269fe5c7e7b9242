"""Embedding lookup: rows of a weight table selected by integer indices."""
from __future__ import annotations

from ..backend import array_module


def embedding_forward(idx, weight):
    """out[..., :] = W[idx[...], :]

    Shapes: idx any shape of integers in [0, V), weight (V, E); out idx.shape + (E,).
    """
    return weight[idx], (idx, weight.shape)


def embedding_backward(dout, cache):
    """dW[v] = sum of dout[...] over every position where idx[...] == v (a scatter-add;
    an index that occurs twice receives both gradients). There is no gradient for
    the integer indices. Returns dW (V, E)."""
    idx, shape = cache
    xp = array_module(dout)
    dw = xp.zeros(shape, dtype=dout.dtype)
    xp.add.at(dw, idx.reshape(-1), dout.reshape(-1, shape[1]))
    return dw
