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
    the integer indices. Returns dW (V, E).

    The scatter-add sorts the positions by index and sums each run of equal
    indices with one ``add.reduceat``, several times faster than ``add.at`` in
    NumPy (CuPy has ``add.reduceat`` too); an array module without it uses ``add.at``.
    """
    idx, shape = cache
    xp = array_module(dout)
    flat_idx, rows = idx.reshape(-1), dout.reshape(-1, shape[1])
    dw = xp.zeros(shape, dtype=dout.dtype)
    if flat_idx.size == 0:
        return dw
    if not hasattr(xp.add, "reduceat"):
        xp.add.at(dw, flat_idx, rows)
        return dw
    order = xp.argsort(flat_idx, kind="stable")
    sorted_idx = flat_idx[order]
    starts = xp.flatnonzero(xp.concatenate([xp.ones(1, dtype=bool), sorted_idx[1:] != sorted_idx[:-1]]))
    dw[sorted_idx[starts]] = xp.add.reduceat(rows[order], starts, axis=0)
    return dw
