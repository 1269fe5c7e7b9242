"""Extreme inputs (+-1e4): finite, correct outputs and gradients, and no floating-point warnings.

Overflow, division by zero and invalid operations raise here; underflow to zero
(e^{-1e4} = 0) is the correct result and stays allowed.
"""
import warnings

import numpy as np
import pytest
import torch

from handgrad import nn
from oracle import assert_close, t

BIG = 1e4


@pytest.fixture(autouse=True)
def strict_floats():
    with np.errstate(over="raise", divide="raise", invalid="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def extreme(dtype):
    return np.array([[BIG, -BIG, 0.0, 1.0], [-BIG, -BIG, -BIG, -BIG], [BIG, BIG, -BIG, 3.0]], dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ours,theirs", [
    (nn.Sigmoid, torch.nn.Sigmoid), (nn.Tanh, torch.nn.Tanh),
    (lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
    (lambda: nn.LogSoftmax(dim=1), lambda: torch.nn.LogSoftmax(dim=1)),
], ids=["Sigmoid", "Tanh", "Softmax", "LogSoftmax"])
def test_activation_at_extremes(ours, theirs, dtype):
    x = extreme(dtype)
    layer = ours()
    out = layer(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dtype and dx.dtype == dtype
    assert np.isfinite(out).all() and np.isfinite(dx).all()
    xt = t(x.astype(np.float64), grad=True)
    ref = theirs()(xt)
    ref.backward(torch.ones_like(ref))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_sigmoid_saturates_exactly():
    out = nn.Sigmoid()(np.array([BIG, -BIG], np.float32))
    np.testing.assert_array_equal(out, [1.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["labels", "distributions"])
def test_cross_entropy_at_extremes(kind, dtype):
    x = extreme(dtype)
    target = np.array([1, 0, 3]) if kind == "labels" else np.array(
        [[0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.0, 0.5, 0.0]], dtype)
    criterion = nn.CrossEntropyLoss()
    loss = criterion(x, target)
    dz = criterion.backward()
    assert np.isfinite(loss) and np.isfinite(dz).all() and dz.dtype == dtype
    zt = t(x.astype(np.float64), grad=True)
    ref = torch.nn.CrossEntropyLoss()(zt, t(target if kind == "labels" else target.astype(np.float64)))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-6)
    assert_close(dz, zt.grad, 1e-6)
    # row 0: label logit -1e4 against +1e4, loss 2e4 (not inf); row 1: log 4; row 2: 1e4 - 3 + log 2
    if kind == "labels":
        assert loss == pytest.approx((2 * BIG + np.log(4) + BIG - 3 + np.log(2)) / 3, rel=1e-6)
