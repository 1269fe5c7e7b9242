"""Batched inference: eval mode, forward passes only, no backward."""
from __future__ import annotations

import numpy as np

from ..backend import array_module, to_numpy


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def predict_logits(model, X, batch_size: int = 256) -> np.ndarray:
    """Model outputs for every sample of ``X``, computed ``batch_size`` at a time in
    eval mode (the model's train/eval mode is put back afterwards)."""
    was_training = model.training
    model.eval()
    try:
        return np.concatenate([to_numpy(model(X[s])) for s in _batches(len(X), batch_size)])
    finally:
        model.train(was_training)


def predict(model, X, batch_size: int = 256) -> np.ndarray:
    """Predicted labels: argmax of the outputs over the last axis, (N,) or (N, T)."""
    return predict_logits(model, X, batch_size).argmax(axis=-1)


def evaluate(model, loss, data, batch_size: int = 256) -> dict:
    """Mean loss and accuracy of ``model`` on ``data = (X, y)``.

    The loss of each batch is weighted by its number of samples (with
    ``reduction='sum'`` the batch sums are added), so the result is the mean
    per-sample loss over the whole set whatever the batch size. Accuracy is the
    fraction of labels equal to the argmax of the outputs over the last axis,
    which covers (N, C) logits with (N,) labels and (N, T, C) with (N, T).
    Returns ``{"loss", "accuracy", "non_finite"}``; ``non_finite`` is True when
    some output was NaN or inf (the loss is then not computed).
    """
    X, y = data
    n = len(X)
    if n == 0:
        raise ValueError("evaluate: the data set is empty")
    summed = getattr(loss, "reduction", "mean") == "sum"
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    try:
        for s in _batches(n, batch_size):
            out = model(X[s])
            xp = array_module(out)
            if not bool(xp.isfinite(out).all()):
                return {"loss": float("nan"), "accuracy": float("nan"), "non_finite": True}
            yb = y[s]
            batch_loss = loss.forward(out, yb)
            total_loss += batch_loss if summed else batch_loss * len(yb)
            correct += int((to_numpy(out.argmax(axis=-1)) == to_numpy(yb)).sum())
            count += int(np.size(yb))
    finally:
        model.train(was_training)
    return {"loss": total_loss / n, "accuracy": correct / count, "non_finite": False}
