"""The package's value checks: positive sizes and hyper-parameters, class labels.

Each check raises one clear line that starts with ``what`` (the caller names
itself and the argument, e.g. ``"Linear: in_features"``), then says what was
expected and what was given. Layer input checks (rank, features, channels)
live in :mod:`handgrad.nn.validate`.
"""
from __future__ import annotations

import math
import numbers


def is_number(value) -> bool:
    """A finite real number: a Python or NumPy int or float, not a bool, not NaN or inf."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def is_positive_int(value) -> bool:
    """An integer > 0: a Python or NumPy int, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def positive_int(value, what: str) -> int:
    """Return ``value`` as an int if it is an integer > 0, else raise ValueError
    ``"{what} must be a positive integer, got {value!r}"``."""
    if not is_positive_int(value):
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def positive_number(value, what: str):
    """Return ``value`` if it is a finite number > 0 (int or float), else raise ValueError
    ``"{what} must be a positive number, got {value!r}"``."""
    if not (is_number(value) and value > 0):
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    return value


def check_labels(labels, num_classes: int | None, what: str) -> None:
    """Raise TypeError unless ``labels`` (a NumPy or CuPy array of any shape) holds
    integers, and ValueError naming the first label outside [0, num_classes)
    (outside [0, inf) when ``num_classes`` is None)."""
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, got dtype {labels.dtype}")
    top = num_classes if num_classes is not None else math.inf
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= top):
        bad = labels[(labels < 0) | (labels >= top)]
        expected = "in [0, {})".format(num_classes) if num_classes is not None else ">= 0"
        raise ValueError(f"{what} must be {expected}, got {int(bad[0])}")
