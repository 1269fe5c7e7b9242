"""handgrad.validate: the one positive-number check and the one label-range check."""
import math

import numpy as np
import pytest

from handgrad.validate import check_labels, fraction, is_fraction, is_number, positive_int, positive_number


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_positive_int_accepts_python_and_numpy_ints(value):
    assert positive_int(value, "x") == value and type(positive_int(value, "x")) is int


@pytest.mark.parametrize("value", [0, -2, 1.0, True, "3", None])
def test_positive_int_names_the_argument(value):
    with pytest.raises(ValueError, match=rf"Layer: size must be a positive integer, got {value!r}"):
        positive_int(value, "Layer: size")


@pytest.mark.parametrize("value", [0, -0.5, math.nan, math.inf, True, "1"])
def test_positive_number_rejects(value):
    with pytest.raises(ValueError, match="Trainer: lr must be a positive number"):
        positive_number(value, "Trainer: lr")


def test_is_number():
    assert is_number(0) and is_number(-1.5) and is_number(np.float32(0.5)) and is_number(np.int64(2))
    assert not any(is_number(v) for v in (True, math.nan, -math.inf, "1", None))


def test_check_labels():
    check_labels(np.array([[0, 2], [1, 0]]), 3, "loss: labels")
    check_labels(np.zeros(0, np.int64), 3, "loss: labels")
    with pytest.raises(ValueError, match=r"loss: labels must be in \[0, 3\), got -1"):
        check_labels(np.array([0, -1, 5]), 3, "loss: labels")
    with pytest.raises(ValueError, match=r"must be in \[0, 3\), got 3"):
        check_labels(np.array([[0], [3]]), 3, "loss: labels")
    with pytest.raises(TypeError, match="loss: labels must be integers, got dtype float32"):
        check_labels(np.zeros(2, np.float32), 3, "loss: labels")


def test_check_labels_without_a_class_count_checks_the_lower_bound_only():
    check_labels(np.array([0, 10**6]), None, "metric: y_true")
    with pytest.raises(ValueError, match="metric: y_true must be >= 0, got -3"):
        check_labels(np.array([2, -3]), None, "metric: y_true")


def test_fraction_intervals():
    assert fraction(0, "p") == 0.0 and fraction(1, "p") == 1.0 and fraction(np.float32(0.5), "p") == 0.5
    assert not is_fraction(0, low_open=True) and not is_fraction(1, high_open=True) and is_fraction(0.5, True, True)
    for value, kw, interval in [(1.0, {"high_open": True}, r"\[0, 1\)"), (0, {"low_open": True}, r"\(0, 1\]"),
                                (-0.1, {}, r"\[0, 1\]"), (1, {"low_open": True, "high_open": True}, r"\(0, 1\)")]:
        with pytest.raises(ValueError, match=rf"Layer: p must be in {interval}, got {value!r}"):
            fraction(value, "Layer: p", **kw)
    for bad in (math.nan, True, "0.5", None):
        assert not is_fraction(bad)
