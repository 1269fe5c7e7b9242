"""Classification metrics: accuracy, confusion matrix, per-class report.

Predictions ``y_pred`` may be labels of the same shape as ``y_true`` or scores
(logits or probabilities) with one more trailing axis of size C, in which case
the predicted label is ``argmax(y_pred, axis=-1)``. The numbers match
scikit-learn's ``accuracy_score``, ``confusion_matrix`` and
``classification_report`` (with ``zero_division=0``).

For class c, with TP, FP, FN counted from the confusion matrix M (rows: true
class, columns: predicted class):

    precision_c = TP / (TP + FP)  = M[c, c] / sum_i M[i, c]
    recall_c    = TP / (TP + FN)  = M[c, c] / sum_j M[c, j]
    F1_c        = 2 TP / (2 TP + FP + FN)   (harmonic mean of the two)
    support_c   = TP + FN         (true samples of class c)

A ratio with a zero denominator is 0. The macro average is the plain mean over
classes, the weighted average weights class c by support_c.

Class names are shown through :func:`display_name`, so that a character model's
classes (a newline, a space, a tab) stay readable and keep tables one line per class.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from .backend import to_numpy
from .validate import check_labels


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", " ": "\u2423"}


def display_name(name) -> str:
    """A class name as tables and plots show it: a name of whitespace only is spelt
    out (``'\\n'`` for a newline, ``'\u2423'`` for a space, ``'\\t'``), control and other
    unprintable characters are escaped anywhere (``'\\x07'``); other names are unchanged."""
    name = str(name)
    if name == "":
        return "''"
    if name.isspace():
        return "".join(_ESCAPES.get(c) or c.encode("unicode_escape").decode("ascii") for c in name)
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


def top_confusions(matrix, class_names=None, k: int = 20) -> list:
    """The ``k`` most frequent mistakes of a confusion matrix, most frequent first:
    ``[(true name, predicted name, count)]`` over the off-diagonal cells ``M[i, j] > 0``
    (ties in the order of i, then j)."""
    m = np.asarray(matrix)
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(len(m))]
    off = m.astype(np.int64) * (1 - np.eye(len(m), dtype=np.int64))
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    return [(names[i], names[j], int(off[i, j])) for i, j in zip(*np.unravel_index(order, m.shape)) if off[i, j] > 0]


def _labels(fn: str, y_true, y_pred, num_classes=None):
    y_true, y_pred = np.asarray(to_numpy(y_true)), np.asarray(to_numpy(y_pred))
    if y_pred.ndim == y_true.ndim + 1:
        if y_pred.shape[:-1] != y_true.shape:
            raise ValueError(f"{fn}: scores of shape {y_pred.shape} do not match labels of shape {y_true.shape} (expected {y_true.shape} + (C,))")
        y_pred = y_pred.argmax(axis=-1)
    elif y_pred.shape != y_true.shape:
        raise ValueError(f"{fn}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        check_labels(y, num_classes, f"{fn}: {name}")
    return y_true.ravel(), y_pred.ravel()


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted label equals the true label."""
    y_true, y_pred = _labels("accuracy", y_true, y_pred)
    if y_true.size == 0:
        raise ValueError("accuracy: got no samples")
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true, y_pred, num_classes=None) -> np.ndarray:
    """``M[i, j]`` = number of samples of true class i predicted as class j,
    an int64 (C, C) array; C is ``num_classes`` or the largest label + 1."""
    y_true, y_pred = _labels("confusion_matrix", y_true, y_pred, num_classes)
    c = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1 if num_classes is None else int(num_classes)
    return np.bincount(y_true * c + y_pred, minlength=c * c).reshape(c, c).astype(np.int64)


@dataclass
class Report:
    """Per-class precision, recall, F1 and support, with accuracy and averages.

    ``str(report)`` is an aligned text table, ``to_dict()`` a JSON-able dict
    ``{"classes": {name: {precision, recall, f1, support}}, "accuracy",
    "macro avg": {...}, "weighted avg": {...}}`` and ``to_html()`` an HTML table.
    """

    class_names: list
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    accuracy: float

    def _average(self, weights) -> dict:
        w = weights / weights.sum() if weights.sum() > 0 else weights
        return {
            "precision": float(self.precision @ w),
            "recall": float(self.recall @ w),
            "f1": float(self.f1 @ w),
            "support": int(self.support.sum()),
        }

    @property
    def macro_avg(self) -> dict:
        return self._average(np.ones(len(self.class_names)) / len(self.class_names))

    @property
    def weighted_avg(self) -> dict:
        return self._average(self.support.astype(np.float64))

    def _rows(self):
        for i, name in enumerate(self.class_names):
            yield name, {
                "precision": float(self.precision[i]),
                "recall": float(self.recall[i]),
                "f1": float(self.f1[i]),
                "support": int(self.support[i]),
            }

    def to_dict(self) -> dict:
        return {
            "classes": dict(self._rows()),
            "accuracy": float(self.accuracy),
            "macro avg": self.macro_avg,
            "weighted avg": self.weighted_avg,
        }

    def __str__(self):
        width = max(len("weighted avg"), *(len(display_name(n)) for n in self.class_names))
        head = f"{'':>{width}}  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>9}"

        def line(name, r):
            return f"{display_name(name):>{width}}  {r['precision']:9.4f}  {r['recall']:9.4f}  {r['f1']:9.4f}  {r['support']:9d}"

        total = int(self.support.sum())
        lines = [head, ""] + [line(n, r) for n, r in self._rows()] + [""]
        lines.append(f"{'accuracy':>{width}}  {'':9}  {'':9}  {self.accuracy:9.4f}  {total:9d}")
        lines.append(line("macro avg", self.macro_avg))
        lines.append(line("weighted avg", self.weighted_avg))
        return "\n".join(lines)

    def to_html(self) -> str:
        def row(name, r, cls=""):
            cells = "".join(f"<td>{r[k]:.4f}</td>" for k in ("precision", "recall", "f1"))
            return f'<tr{cls}><th>{html.escape(display_name(name))}</th>{cells}<td>{r["support"]}</td></tr>'

        body = [row(n, r) for n, r in self._rows()]
        total = int(self.support.sum())
        body.append(f'<tr class="summary"><th>accuracy</th><td></td><td></td><td>{self.accuracy:.4f}</td><td>{total}</td></tr>')
        body.append(row("macro avg", self.macro_avg, ' class="summary"'))
        body.append(row("weighted avg", self.weighted_avg, ' class="summary"'))
        head = "<tr><th></th><th>precision</th><th>recall</th><th>f1-score</th><th>support</th></tr>"
        return f'<table class="classification-report">\n<thead>{head}</thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody>\n</table>"


def _ratio(num, den):
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def classification_report(y_true, y_pred, class_names=None, num_classes=None) -> Report:
    """Precision, recall, F1 and support of every class (see the module docstring).

    Classes are ``0 .. C-1`` with C = ``len(class_names)``, else ``num_classes``,
    else the largest label + 1; ``class_names`` default to ``"0", "1", ...``.
    """
    if class_names is not None:
        class_names = [str(n) for n in class_names]
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(f"classification_report: {len(class_names)} class names but num_classes={num_classes}")
        num_classes = len(class_names)
    m = confusion_matrix(y_true, y_pred, num_classes)
    if class_names is None:
        class_names = [str(c) for c in range(len(m))]
    if m.sum() == 0:
        raise ValueError("classification_report: got no samples")
    tp = np.diag(m).astype(np.float64)
    predicted, support = m.sum(axis=0), m.sum(axis=1)
    return Report(
        class_names=class_names,
        precision=_ratio(tp, predicted),
        recall=_ratio(tp, support),
        f1=_ratio(2 * tp, predicted + support),
        support=support,
        accuracy=float(tp.sum() / m.sum()),
    )
