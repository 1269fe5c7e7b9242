"""Core layers and losses: finite differences in float64 and PyTorch in float32, over random shapes."""
import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from handgrad import nn
from handgrad.gradcheck import check_module
from handgrad.ops.linear import SMALL_BATCH, WIDE
from oracle import assert_close, assert_grads_match, copy_weights, t

seeds = st.integers(0, 2**16)
dims = st.integers(1, 5)


def assert_gradcheck(report):
    assert report, "nothing was checked"
    worst = max(report.items(), key=lambda kv: kv[1])
    assert worst[1] < 1e-6, f"finite differences disagree on {worst[0]}: {report}"


def run_both(ours, theirs, x, seed):
    """Forward and backward with the same input and dout; returns (our dx, torch's x tensor)."""
    out = ours(x.astype(np.float32))
    xt = t(x.astype(np.float32), grad=True)
    ref = theirs(xt)
    assert out.dtype == np.float32
    assert_close(out, ref, name="forward")
    dout = np.random.default_rng(seed).standard_normal(out.shape).astype(np.float32)
    dx = ours.backward(dout)
    ref.backward(t(dout))
    assert dx.dtype == np.float32 and dx.shape == x.shape
    assert_close(dx, xt.grad, name="dx")


@st.composite
def linear_config(draw):
    n = draw(dims)
    features = draw(st.sampled_from([(draw(st.integers(1, 8)),), (draw(dims), draw(dims), draw(dims))]))
    return n, features, draw(st.integers(1, 6)), draw(st.booleans()), draw(seeds)


@given(linear_config())
def test_linear(cfg):
    n, features, out_features, bias, seed = cfg
    d = int(np.prod(features))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *features))
    assert_gradcheck(check_module(nn.Linear(d, out_features, bias=bias, rng=seed), x, seed=seed))

    ours = nn.Linear(d, out_features, bias=bias, rng=seed)
    theirs = torch.nn.Linear(d, out_features, bias=bias)
    copy_weights(ours, theirs)
    run_both(ours, torch.nn.Sequential(torch.nn.Flatten(), theirs), x, seed)
    assert_grads_match(ours, theirs)


@pytest.mark.parametrize("n", [1, SMALL_BATCH, SMALL_BATCH + 1])
@pytest.mark.parametrize("out_features", [WIDE - 1, WIDE, 200])
def test_linear_small_batch_order(n, out_features):
    """Both orders of the product (out = (W x^T)^T for small batches of wide layers,
    x W^T otherwise) agree with PyTorch, forward and backward."""
    rng = np.random.default_rng(n * 1000 + out_features)
    x = rng.standard_normal((n, 3, 7))
    ours = nn.Linear(21, out_features, rng=n)
    theirs = torch.nn.Linear(21, out_features)
    copy_weights(ours, theirs)
    run_both(ours, torch.nn.Sequential(torch.nn.Flatten(), theirs), x, n)
    assert_grads_match(ours, theirs)


ELEMENTWISE = [
    ("ReLU", nn.ReLU, torch.nn.ReLU),
    ("Sigmoid", nn.Sigmoid, torch.nn.Sigmoid),
    ("Tanh", nn.Tanh, torch.nn.Tanh),
]
shapes = st.lists(dims, min_size=1, max_size=4).map(tuple)


@pytest.mark.parametrize("name,ours,theirs", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
@given(shape=shapes, seed=seeds)
def test_elementwise_activation(name, ours, theirs, shape, seed):
    # |x| <= 3: deep in saturation the true slope (tanh'(8) ~ 5e-7) drowns in rounding error
    x = np.random.default_rng(seed).uniform(-3, 3, shape)
    assert_gradcheck(check_module(ours(), x, seed=seed))
    run_both(ours(), theirs(), x, seed)


@given(shape=shapes, seed=seeds, slope=st.sampled_from([0.01, 0.1, 0.5, 2.0]))
def test_leaky_relu(shape, seed, slope):
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_gradcheck(check_module(nn.LeakyReLU(slope), x, seed=seed))
    run_both(nn.LeakyReLU(slope), torch.nn.LeakyReLU(slope), x, seed)


@pytest.mark.parametrize("ours,theirs", [(nn.Softmax, torch.nn.Softmax), (nn.LogSoftmax, torch.nn.LogSoftmax)],
                         ids=["Softmax", "LogSoftmax"])
@given(data=st.data(), shape=shapes, seed=seeds)
def test_softmax_family(ours, theirs, data, shape, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    assert_gradcheck(check_module(ours(dim=dim), x, seed=seed))
    run_both(ours(dim=dim), theirs(dim=dim), x, seed)


@given(shape=st.lists(dims, min_size=2, max_size=5).map(tuple), seed=seeds)
def test_flatten(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_gradcheck(check_module(nn.Flatten(), x, seed=seed))
    run_both(nn.Flatten(), torch.nn.Flatten(), x, seed)


@given(shape=shapes, seed=seeds, p=st.sampled_from([0.1, 0.5, 0.9]))
def test_dropout_train_gradcheck(shape, seed, p):
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_gradcheck(check_module(nn.Dropout(p), x, seed=seed))


@given(shape=shapes, seed=seeds, p=st.sampled_from([0.0, 0.3]))
def test_dropout_identity_cases_match_torch(shape, seed, p):
    """p = 0 in training and any p in eval mode are the identity, as in torch."""
    x = np.random.default_rng(seed).standard_normal(shape)
    run_both(nn.Dropout(0.0), torch.nn.Dropout(0.0), x, seed)
    run_both(nn.Dropout(p).eval(), torch.nn.Dropout(p).eval(), x, seed)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_mask_statistics_match_torch(p):
    """Survivors are scaled by 1/(1-p) and a fraction p is dropped, like torch's mask;
    backward applies exactly the forward mask."""
    x = np.ones((400, 250), np.float32)
    layer = nn.Dropout(p, rng=0)
    out = layer(x)
    ref = torch.nn.functional.dropout(torch.ones(400, 250), p, training=True).numpy()
    for mask in (out, ref):
        assert set(np.unique(mask)) <= {0.0, np.float32(1 / (1 - p))}
        assert abs((mask == 0).mean() - p) < 0.01
        assert abs(mask.mean() - 1.0) < 0.03
    dout = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dout), dout * out)


def test_dropout_same_seed_same_mask():
    x = np.ones((5, 7), np.float32)
    np.testing.assert_array_equal(nn.Dropout(0.5, rng=3)(x), nn.Dropout(0.5, rng=3)(x))
    assert not np.array_equal(nn.Dropout(0.5, rng=3)(x), nn.Dropout(0.5, rng=4)(x))


@st.composite
def ce_config(draw):
    n, c = draw(st.integers(1, 6)), draw(st.integers(2, 6))
    return n, c, draw(st.sampled_from(["mean", "sum"])), draw(st.sampled_from(["labels", "distributions"])), draw(seeds)


@given(ce_config())
def test_cross_entropy(cfg):
    n, c, reduction, kind, seed = cfg
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)) * 3
    target = rng.integers(0, c, n) if kind == "labels" else rng.dirichlet(np.ones(c), n)
    assert_gradcheck(check_module(nn.CrossEntropyLoss(reduction), logits, target, seed=seed))

    ours = nn.CrossEntropyLoss(reduction)
    loss = ours(logits.astype(np.float32), target if kind == "labels" else target.astype(np.float32))
    zt = t(logits.astype(np.float32), grad=True)
    ref = torch.nn.CrossEntropyLoss(reduction=reduction)(zt, t(target if kind == "labels" else target.astype(np.float32)))
    assert isinstance(loss, float)
    assert loss == pytest.approx(ref.item(), rel=1e-5, abs=1e-5)
    dout = float(rng.standard_normal())
    (ref * dout).backward()
    dz = ours.backward(dout)
    assert dz.dtype == np.float32
    assert_close(dz, zt.grad, name="dlogits")


@given(shape=shapes, reduction=st.sampled_from(["mean", "sum"]), seed=seeds)
def test_mse(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    x, target = rng.standard_normal(shape), rng.standard_normal(shape)
    assert_gradcheck(check_module(nn.MSELoss(reduction), x, target, seed=seed))

    ours = nn.MSELoss(reduction)
    loss = ours(x.astype(np.float32), target.astype(np.float32))
    xt = t(x.astype(np.float32), grad=True)
    ref = torch.nn.MSELoss(reduction=reduction)(xt, t(target.astype(np.float32)))
    assert loss == pytest.approx(ref.item(), rel=1e-5, abs=1e-5)
    dout = float(rng.standard_normal())
    (ref * dout).backward()
    assert_close(ours.backward(dout), xt.grad, name="dx")


@given(seed=seeds, n=dims)
def test_sequential_mlp(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))

    def build():
        return nn.Sequential(nn.Linear(4, 6, rng=seed), nn.Tanh(), nn.Linear(6, 5, rng=seed + 1),
                             nn.LeakyReLU(0.2), nn.Linear(5, 3, rng=seed + 2), nn.LogSoftmax(dim=1))

    # finite differences (h = 1e-5) straddling LeakyReLU's kink measure neither slope
    model = build().astype(np.float64)
    assume(np.abs(model[2](model[1](model[0](x)))).min() > 1e-3)
    assert_gradcheck(check_module(build(), x, seed=seed))
    ours = build()
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 5),
                                 torch.nn.LeakyReLU(0.2), torch.nn.Linear(5, 3), torch.nn.LogSoftmax(dim=1))
    copy_weights(ours, theirs)
    run_both(ours, theirs, x, seed)
    assert_grads_match(ours, theirs)
