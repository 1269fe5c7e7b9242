"""Batched inference: eval mode, forward passes only, no backward.

The data is either ``(X, y)`` arrays of independent samples, batched ``batch_size``
at a time, or a batch source: an iterable of ``(x, y)`` batches whose
``continues`` says whether row r of each batch continues row r of the one before
(:class:`~handgrad.data.text.StreamLoader`). On such streams a
:class:`~handgrad.nn.Stateful` model reads the text the way it was trained, with
truncated BPTT's state carried across chunks::

    state_0 = 0;   out_j = model(x_j, state_j);   state_{j+1} = model.final_state

so every position is predicted from all the text of its stream before it (as
PyTorch's word_language_model evaluates). The carry lives in this loop only: the
model's own training carry (``get_state()``) is neither read nor changed.

Every loop takes an optional ``progress(batches, total) -> batches``, a wrapper of
the batch iterator that shows how far the pass is (e.g.
:func:`handgrad.train.progress.tracker`); the loops themselves never print.
"""
from __future__ import annotations

import numpy as np

from ..backend import array_module, to_host, to_scalar
from ..nn import no_grad
from ..data.loader import BatchSource


def _is_arrays(data) -> bool:
    return not isinstance(data, BatchSource)


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _to_model(model):
    """A function moving a batch to the model's device (explicitly; a no-op on the CPU)."""
    xp = model.array_module()
    if xp is np:
        return to_host
    return lambda a: a if array_module(a) is xp else xp.asarray(to_host(a))


def _outputs(model, inputs, batch_size: int, progress=None):
    """The model's output for each batch of ``inputs`` (an array X or a batch source),
    each batch moved to the model's device; the model must already be in eval mode.
    ``progress(batches, total)`` wraps the batches (a progress bar), when given."""
    put = _to_model(model)
    if not isinstance(inputs, BatchSource):
        batches = (inputs[s] for s in _batches(len(inputs), batch_size))
        total = -(-len(inputs) // batch_size)
    else:
        batches, total = (xb for xb, _ in inputs), len(inputs)
    if progress is not None:
        batches = progress(batches, total)
    streams = isinstance(inputs, BatchSource) and inputs.continues  # each chunk starts from the last's state
    state = None
    for xb in batches:
        with no_grad():  # not held across the yield
            out = model(put(xb), state) if streams else model(put(xb))
        yield out
        if streams:
            state = model.final_state


def _labels(data, batch_size: int):
    """The labels of each batch of ``data``, as :func:`_outputs` batches them."""
    if not _is_arrays(data):
        return (yb for _, yb in data)
    y = data[1]
    return (y[s] for s in _batches(len(y), batch_size))


def predict_logits(model, X, batch_size: int = 256, progress=None) -> np.ndarray:
    """Model outputs for every sample of ``X``, computed ``batch_size`` at a time in
    eval mode (the model's train/eval mode is put back afterwards). ``X`` may be a
    batch source of streams: the result is then (streams, L, C), the outputs at
    every position of the streams, with the state carried along each stream."""
    was_training = model.training
    model.eval()
    try:
        outs = [to_host(out) for out in _outputs(model, X, batch_size, progress)]
    finally:
        model.train(was_training)
    return np.concatenate(outs, axis=1 if isinstance(X, BatchSource) and X.continues else 0)


def predict(model, X, batch_size: int = 256, progress=None) -> np.ndarray:
    """Predicted labels: argmax of the outputs over the last axis, (N,) or (N, T)
    (on streams (streams, L), aligned with the source's ``targets``)."""
    return predict_logits(model, X, batch_size, progress).argmax(axis=-1)


def evaluate(model, loss, data, batch_size: int = 256, keep_predictions: bool = False, progress=None) -> dict:
    """Mean loss and accuracy of ``model`` on ``data``: ``(X, y)`` or a batch source.

    On ``(X, y)`` the loss of each batch is weighted by its number of samples
    (with ``reduction='sum'`` the batch sums are added), so the result is the
    mean per-sample loss over the whole set whatever the batch size. On streams
    the state is carried from chunk to chunk (see the module docstring) and the
    loss is the mean over every position scored: for a character model, nats per
    character of the contiguous text. Accuracy is the fraction of labels equal to
    the argmax of the outputs over the last axis, which covers (N, C) logits with
    (N,) labels (or (N, C) distributions, whose argmax is the label) and (N, T, C)
    with (N, T); it is None for a loss that does not classify (``loss.classifies``,
    or for a loss that does not say, targets that are not integers).
    Returns ``{"loss", "accuracy", "non_finite"}``, and ``"predictions"`` (as
    :func:`predict` gives them) with ``keep_predictions``; ``non_finite`` is True
    when some output was NaN or inf (the loss is then not computed).
    """
    arrays = _is_arrays(data)
    if arrays and len(data[0]) == 0:
        raise ValueError("evaluate: the data set is empty")
    summed = loss.reduction == "sum"
    was_training = model.training
    model.eval()
    total_loss, correct, count, samples, predictions, classifies = 0.0, 0, 0, 0, [], None
    put = _to_model(model)
    try:
        inputs = data[0] if arrays else data
        for out, yb in zip(_outputs(model, inputs, batch_size, progress), _labels(data, batch_size)):
            if not to_scalar(array_module(out).isfinite(out).all()):
                return {"loss": float("nan"), "accuracy": float("nan"), "non_finite": True}
            with no_grad():  # nothing kept for a backward pass
                batch_loss = loss(out, put(yb))
            labels = to_host(yb)
            if classifies is None:
                classifies = loss.classifies if loss.classifies is not None else labels.dtype.kind in "iub"
            weight = len(labels) if arrays else labels.size
            total_loss += batch_loss if summed else batch_loss * weight
            predicted = to_host(out.argmax(axis=-1))
            if labels.ndim > predicted.ndim:  # distributions over the classes (one-hot rows): their argmax
                labels = labels.argmax(axis=-1)
            correct += int((predicted == labels).sum())
            count += labels.size
            samples += weight
            if keep_predictions:
                predictions.append(predicted)
    finally:
        model.train(was_training)
    accuracy = correct / count if classifies else None  # (a regression's outputs have no classes)
    result = {"loss": total_loss / samples, "accuracy": accuracy, "non_finite": False}
    if keep_predictions:
        result["predictions"] = np.concatenate(predictions, axis=0 if arrays else 1)
    return result
