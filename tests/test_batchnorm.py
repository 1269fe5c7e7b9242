"""BatchNorm1d/2d and Dropout2d: PyTorch oracle (train and eval, running statistics,
state_dict both ways), finite differences, bad input."""
import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from handgrad import nn
from handgrad.gradcheck import check_module
from oracle import assert_close, t


def assert_gradients_match(module, x):
    """Finite differences (float64) agree with backward for the input and every parameter."""
    report = check_module(module, x)
    assert max(report.values()) < 1e-6, report


def shapes(rank):
    spatial = st.tuples(*[st.integers(1, 5)] * (rank - 2))
    return st.tuples(st.integers(2, 4), st.integers(1, 4), spatial).map(lambda s: (s[0], s[1]) + s[2])


def torch_bn(rank, c, **kw):
    return (torch.nn.BatchNorm1d if rank < 4 else torch.nn.BatchNorm2d)(c, **kw)


def hg_bn(rank, c, **kw):
    return (nn.BatchNorm1d if rank < 4 else nn.BatchNorm2d)(c, **kw)


@given(st.sampled_from([2, 3, 4]).flatmap(shapes), st.booleans(), st.sampled_from([0.1, 0.5, None]))
def test_batchnorm_matches_torch_train_then_eval(shape, affine, momentum):
    rng = np.random.default_rng(0)
    rank, c = len(shape), shape[1]
    ours, ref = hg_bn(rank, c, affine=affine, momentum=momentum), torch_bn(rank, c, affine=affine, momentum=momentum)
    if affine:
        ours.weight.data[...] = rng.standard_normal(c)
        ours.bias.data[...] = rng.standard_normal(c)
    ref.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    for step in range(3):  # several batches: running averages accumulate
        x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
        tx = t(x, True)
        out, tout = ours(x), ref(tx)
        assert_close(out, tout, 1e-5, "out")
        dout = rng.standard_normal(shape).astype(np.float32)
        tout.backward(t(dout))
        ours.zero_grad()
        assert_close(ours.backward(dout), tx.grad, 1e-4, "dx")
        if affine:
            assert_close(ours.weight.grad, ref.weight.grad, 1e-4, "dgamma")
            assert_close(ours.bias.grad, ref.bias.grad, 1e-4, "dbeta")
            ref.zero_grad()
    assert_close(ours.running_mean, ref.running_mean, 1e-5, "running_mean")
    assert_close(ours.running_var, ref.running_var, 1e-5, "running_var")
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 3
    ours.eval(), ref.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    tx = t(x, True)
    out, tout = ours(x), ref(tx)
    assert_close(out, tout, 1e-5, "eval out")
    dout = rng.standard_normal(shape).astype(np.float32)
    tout.backward(t(dout))
    assert_close(ours.backward(dout), tx.grad, 1e-5, "eval dx")


@given(st.sampled_from([2, 3, 4]).flatmap(shapes), st.booleans(), st.booleans())
def test_batchnorm_finite_differences(shape, affine, training):
    # With two values per channel, training mode normalises them to about +-1 whatever
    # they are: dL/dx is O(eps), below what finite differences resolve to 1e-6
    # relative (the torch oracle test still covers that case).
    assume(not (training and shape[0] * int(np.prod(shape[2:])) == 2))
    rng = np.random.default_rng(1)
    layer = hg_bn(len(shape), shape[1], affine=affine, dtype=np.float64)
    if affine:
        layer.weight.data[...] = rng.standard_normal(shape[1])
        layer.bias.data[...] = rng.standard_normal(shape[1])
    layer.running_mean[...] = rng.standard_normal(shape[1])
    layer.running_var[...] = rng.uniform(0.5, 2, shape[1])
    layer.train(training)
    assert_gradients_match(layer, rng.standard_normal(shape) * 2 + 0.5)


def test_batchnorm_strided_input_gives_the_contiguous_results(rng):
    # a convolution hands batch norm a view that skips junk columns; the layer copies
    # it once (never writing into it) and must give exactly the contiguous input's results
    wide = rng.standard_normal((4, 3, 5, 7)).astype(np.float32) * 2 + 1
    strided, contiguous = wide[..., :5], np.ascontiguousarray(wide[..., :5])
    before = wide.copy(), contiguous.copy()
    dout = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    results = []
    for x in (strided, contiguous):
        layer = nn.BatchNorm2d(3)
        layer.weight.data[...] = [0.5, 2.0, -1.0]
        out = layer(x)
        results.append((out, layer.backward(dout), layer.weight.grad, layer.running_var))
    for ours, reference in zip(*results):
        np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(wide, before[0])  # the inputs are the caller's: left as they were
    np.testing.assert_array_equal(contiguous, before[1])


def test_state_dict_round_trips_with_torch(rng):
    ref = torch.nn.BatchNorm2d(3)
    ref(torch.randn(4, 3, 5, 5) * 2 + 1)  # non-trivial running statistics
    ours = nn.BatchNorm2d(3)
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    assert list(ours.state_dict()) == list(ref.state_dict())
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())
    ours(rng.standard_normal((4, 3, 2, 2)).astype(np.float32))
    back = torch.nn.BatchNorm2d(3)
    back.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    assert int(back.num_batches_tracked) == 2
    assert_close(ours.running_mean, back.running_mean)


def test_batchnorm_bad_input():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 3 input channels, got 4"):
        nn.BatchNorm2d(3)(np.zeros((2, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected a 4-D input \(N, C, H, W\), got shape \(2, 3\)"):
        nn.BatchNorm2d(3)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected a 2-D or 3-D input"):
        nn.BatchNorm1d(3)(np.zeros((2, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d: training needs more than 1 value per channel"):
        nn.BatchNorm1d(3)(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d: num_features must be a positive int"):
        nn.BatchNorm1d(0)
    with pytest.raises(ValueError, match=r"BatchNorm2d: momentum must be in \[0, 1\], got 2"):
        nn.BatchNorm2d(3, momentum=2)


def test_dropout2d_zeros_whole_channels_and_scales(rng):
    layer = nn.Dropout2d(0.5, rng=0)
    x = rng.standard_normal((64, 16, 3, 3)).astype(np.float32) + 5
    out = layer(x)
    kept = (out != 0).reshape(64, 16, 9)
    assert (kept.all(axis=2) | ~kept.any(axis=2)).all(), "a channel is either kept whole or dropped whole"
    frac = kept[:, :, 0].mean()
    assert 0.4 < frac < 0.6
    np.testing.assert_allclose(out[kept.reshape(out.shape)], 2 * x[kept.reshape(out.shape)], rtol=1e-6)
    dout = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(dout), np.where(out != 0, 2.0, 0.0))
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match=r"Dropout2d: p must be in \[0, 1\)"):
        nn.Dropout2d(1.0)
    with pytest.raises(ValueError, match=r"Dropout2d: expected a 3-D or 4-D input"):
        nn.Dropout2d()(np.zeros((2, 3), np.float32))
