"""Loss modules. ``loss = criterion(output, target)`` returns a Python float and
keeps what ``criterion.backward()`` needs to return dL/d(output)."""
from __future__ import annotations

from ..backend import array_module, to_scalar
from ..ops import mse_backward, mse_forward, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from ..validate import check_labels
from .module import Module
from .validate import check_finite, check_reduction


class CrossEntropyLoss(Module):
    """Softmax followed by cross-entropy, fused for stability and speed.

    ``target`` is either integer class labels (N,) in [0, C) or a distribution
    (N, C) such as one-hot rows. See :func:`handgrad.ops.softmax_cross_entropy_forward`
    for the formula and the gradient dL/dz = (softmax(z) - t) / N.
    """

    classifies = True

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        check_reduction(self, reduction)
        self.reduction = reduction

    def forward(self, logits, target) -> float:
        name = type(self).__name__
        if logits.ndim != 2:
            raise ValueError(f"{name}: expected logits of shape (N, C), got shape {tuple(logits.shape)}")
        n, c = logits.shape
        check_finite(self, "logits", logits)
        xp = array_module(logits)
        target = xp.asarray(target)
        if target.ndim == 1:
            if target.shape[0] != n:
                raise ValueError(f"{name}: {n} logits rows but {target.shape[0]} labels")
            check_labels(target, c, f"{name}: labels")
        elif target.shape == logits.shape:
            check_finite(self, "targets", target)
            target = target.astype(logits.dtype, copy=False)
        else:
            raise ValueError(
                f"{name}: target must be labels (N,) or a distribution (N, C) = {tuple(logits.shape)}, "
                f"got shape {tuple(target.shape)}"
            )
        loss, self._cache = softmax_cross_entropy_forward(logits, target, self.reduction)
        return to_scalar(loss)

    def backward(self, dout: float = 1.0):
        return softmax_cross_entropy_backward(dout, self._cache)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(Module):
    """L = mean((x - t)^2) (or the sum); dL/dx = 2 (x - t) / K."""

    classifies = False

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        check_reduction(self, reduction)
        self.reduction = reduction

    def forward(self, x, target) -> float:
        xp = array_module(x)
        target = xp.asarray(target, dtype=x.dtype)
        if target.shape != x.shape:
            raise ValueError(f"MSELoss: input shape {tuple(x.shape)} and target shape {tuple(target.shape)} differ")
        check_finite(self, "inputs", x)
        loss, self._cache = mse_forward(x, target, self.reduction)
        return to_scalar(loss)

    def backward(self, dout: float = 1.0):
        return mse_backward(dout, self._cache)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
