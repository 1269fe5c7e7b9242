"""Embedding layer: a learned vector per token id."""
from __future__ import annotations

from ..backend import array_module, get_default_dtype, get_rng, to_scalar
from ..ops.embedding import embedding_backward, embedding_forward
from ..validate import check_labels, positive_int
from .module import Module, Parameter


class Embedding(Module):
    """out = weight[idx]: integer ids of any shape -> vectors, shape idx.shape + (embedding_dim,).

    Floating arrays are accepted when every value is a whole number.

    ``weight`` is (num_embeddings, embedding_dim), initialised N(0, 1) as in
    ``torch.nn.Embedding``. Backward scatter-adds dout into the rows that were
    looked up and returns None (indices have no gradient).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, rng=None, dtype=None):
        super().__init__()
        self.num_embeddings = positive_int(num_embeddings, "Embedding: num_embeddings")
        self.embedding_dim = positive_int(embedding_dim, "Embedding: embedding_dim")
        weight = get_rng(rng).standard_normal((num_embeddings, embedding_dim))
        self.weight = Parameter(weight.astype(dtype or get_default_dtype()))

    def token_ids(self, idx):
        """``idx`` as an integer array on the weight's device, checked to lie in [0, num_embeddings)."""
        xp = array_module(self.weight.data)
        idx = xp.asarray(idx)
        if idx.dtype.kind == "f" and to_scalar((idx == xp.round(idx)).all()):
            idx = idx.astype(xp.int64)  # whole numbers stored as floats, e.g. a zero probe input
        check_labels(idx, self.num_embeddings, "Embedding: token ids")
        return idx

    def forward(self, idx):
        out, self._cache = embedding_forward(self.token_ids(idx), self.weight.data)
        return out

    def backward(self, dout):
        self.weight.add_grad(embedding_backward(dout, self._cache))
        return None

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"
