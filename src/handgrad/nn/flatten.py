"""Flatten: the reshape between the convolutional and the fully connected layers."""
from __future__ import annotations

from .module import Module


class Flatten(Module):
    """Reshape (N, d_1, ..., d_k) to (N, d_1 * ... * d_k); backward reshapes back."""

    blas_bound = True

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._shape)
