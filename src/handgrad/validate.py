"""The package's value checks: positive sizes and hyper-parameters, fractions, class labels.

Each check raises one clear line that starts with ``what`` (the caller names
itself and the argument, e.g. ``"Linear: in_features"``), then says what was
expected and what was given. Layer input checks (rank, features, channels)
live in :mod:`handgrad.nn.validate`.
"""
from __future__ import annotations

import math
import numbers

from .backend import to_scalar


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


def is_fraction(value, low_open: bool = False, high_open: bool = False) -> bool:
    """A number in the unit interval: [0, 1], without 0 when ``low_open``, without 1 when ``high_open``."""
    return is_number(value) and (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)


def fraction(value, what: str, *, low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float if :func:`is_fraction`, else raise ValueError
    ``"{what} must be in [0, 1), got {value!r}"`` (the interval as asked)."""
    if not is_fraction(value, low_open, high_open):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"{what} must be in {interval}, got {value!r}")
    return float(value)


def check_labels(labels, num_classes: int | None, what: str) -> None:
    """Raise TypeError unless ``labels`` (a NumPy or CuPy array of any shape) holds
    integers, and ValueError naming the first label outside [0, num_classes)
    (outside [0, inf) when ``num_classes`` is None)."""
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, got dtype {labels.dtype}")
    top = num_classes if num_classes is not None else math.inf
    if labels.size and (to_scalar(labels.min()) < 0 or to_scalar(labels.max()) >= top):
        bad = labels[(labels < 0) | (labels >= top)]
        expected = "in [0, {})".format(num_classes) if num_classes is not None else ">= 0"
        raise ValueError(f"{what} must be {expected}, got {to_scalar(bad[0])}")
