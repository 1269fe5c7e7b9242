"""Cross-entropy over every time step of a sequence of predictions."""
from __future__ import annotations

from ..backend import array_module, to_scalar
from ..ops import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from ..validate import check_labels
from .module import Module
from .validate import check_finite, check_reduction


class TemporalCrossEntropyLoss(Module):
    """Softmax cross-entropy averaged over all N T positions of (N, T, C) logits:

        L = (1 / (N T)) sum_{n, t} -log softmax(z[n, t])[y[n, t]]

    (in nats per position: per character for a character model). Positions where
    ``mask`` is False (an optional (N, T) boolean array) are left out of the sum and
    of the count. ``reduction='sum'`` returns the sum instead of the mean.

    Gradient: dL/dz[n, t] = (softmax(z[n, t]) - onehot(y[n, t])) * mask[n, t] / (number of
    positions counted). This is the same fused kernel as ``CrossEntropyLoss`` on
    the (N T, C) reshaped logits.
    """

    classifies = True

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        check_reduction(self, reduction)
        self.reduction = reduction

    def forward(self, logits, target, mask=None) -> float:
        name = type(self).__name__
        if logits.ndim != 3:
            raise ValueError(f"{name}: expected logits of shape (N, T, C), got shape {tuple(logits.shape)}")
        n, steps, c = logits.shape
        xp = array_module(logits)
        target = xp.asarray(target)
        if target.shape != (n, steps):
            raise ValueError(f"{name}: expected targets of shape (N, T) = {(n, steps)}, got {tuple(target.shape)}")
        check_labels(target, c, f"{name}: targets")
        check_finite(self, "logits", logits)
        flat_logits, flat_target = logits.reshape(n * steps, c), target.reshape(-1)
        if mask is not None:
            mask = xp.asarray(mask, dtype=bool)
            if mask.shape != (n, steps):
                raise ValueError(f"{name}: expected a mask of shape (N, T) = {(n, steps)}, got {tuple(mask.shape)}")
            keep = mask.reshape(-1)
            flat_logits, flat_target = flat_logits[keep], flat_target[keep]
            if flat_target.size == 0:
                raise ValueError(f"{name}: the mask leaves no position to score")
        loss, cache = softmax_cross_entropy_forward(flat_logits, flat_target, self.reduction)
        self._cache = (cache, logits.shape, None if mask is None else keep)
        return to_scalar(loss)

    def backward(self, dout: float = 1.0):
        cache, shape, keep = self._cache
        dz = softmax_cross_entropy_backward(dout, cache)
        if keep is None:
            return dz.reshape(shape)
        full = array_module(dz).zeros((shape[0] * shape[1], shape[2]), dtype=dz.dtype)
        full[keep] = dz
        return full.reshape(shape)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
