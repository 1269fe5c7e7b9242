"""Fully connected layer."""
from __future__ import annotations

import math

from .. import init
from ..backend import get_default_dtype
from ..ops import linear_backward, linear_forward
from ..validate import positive_int
from .module import Module, Parameter
from .validate import check_features, check_min_rank


class Linear(Module):
    """out = x W^T + b on inputs (N, d_1, ..., d_k) flattened to (N, in_features).

    ``weight`` is (out_features, in_features) and ``bias`` (out_features,), the
    layout and names of ``torch.nn.Linear``. Default initialisation is PyTorch's:
    W and b drawn from U(-1/sqrt(in_features), 1/sqrt(in_features)).

    ``input_grad=False`` makes ``backward`` compute the parameter gradients only
    and return None: for a first layer, whose input is data, this skips the
    product dout W, as PyTorch does for inputs that do not require a gradient.
    """

    blas_bound = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, input_grad: bool = True,
                 rng=None, dtype=None):
        super().__init__()
        self.in_features = positive_int(in_features, "Linear: in_features")
        self.out_features = positive_int(out_features, "Linear: out_features")
        self.input_grad = bool(input_grad)
        dtype = dtype or get_default_dtype()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(init.uniform((out_features, in_features), -bound, bound, rng=rng, dtype=dtype))
        self.bias = Parameter(init.uniform((out_features,), -bound, bound, rng=rng, dtype=dtype)) if bias else None

    def forward(self, x):
        check_min_rank(self, x, 2, "(N, in_features) or (N, d1, ..., dk)")
        check_features(self, x, self.in_features)
        out, self._cache = linear_forward(x, self.weight.data, self.bias.data if self.bias is not None else None)
        return out

    def backward(self, dout):
        rows = self._cache[0][0]
        if dout.shape != (rows, self.out_features):
            raise ValueError(f"Linear.backward: dout must have the output's shape (N, out_features) = "
                             f"{(rows, self.out_features)}, got {tuple(dout.shape)}")
        dx, dw, db = linear_backward(dout, self._cache, self.input_grad)
        self.weight.add_grad(dw)
        if self.bias is not None:
            self.bias.add_grad(db)
        return dx

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
                + ("" if self.input_grad else ", input_grad=False"))
