"""Optimizers against torch.optim: same parameters, same gradients, several steps."""
import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from handgrad import optim
from handgrad.optim import optimizer as optimizer_module
from handgrad.nn import Parameter

STEPS = 6

sgd_cfg = st.fixed_dictionaries({
    "lr": st.sampled_from([0.01, 0.1, 0.5]),
    "momentum": st.sampled_from([0.0, 0.5, 0.9]),
    "dampening": st.sampled_from([0.0, 0.1]),
    "nesterov": st.booleans(),
    "weight_decay": st.sampled_from([0.0, 1e-2]),
}).filter(lambda c: not c["nesterov"] or (c["momentum"] > 0 and c["dampening"] == 0))
adagrad_cfg = st.fixed_dictionaries({
    "lr": st.sampled_from([0.01, 0.1]),
    "lr_decay": st.sampled_from([0.0, 0.05]),
    "weight_decay": st.sampled_from([0.0, 1e-2]),
    "initial_accumulator_value": st.sampled_from([0.0, 0.1]),
    "eps": st.sampled_from([1e-10, 1e-6]),
})
rmsprop_cfg = st.fixed_dictionaries({
    "lr": st.sampled_from([0.001, 0.01]),
    "alpha": st.sampled_from([0.9, 0.99]),
    "eps": st.sampled_from([1e-8, 1e-6]),
    "weight_decay": st.sampled_from([0.0, 1e-2]),
    "momentum": st.sampled_from([0.0, 0.9]),
    "centered": st.booleans(),
})
adam_cfg = st.fixed_dictionaries({
    "lr": st.sampled_from([0.001, 0.01, 0.1]),
    "betas": st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)]),
    "eps": st.sampled_from([1e-8, 1e-6]),
    "weight_decay": st.sampled_from([0.0, 1e-2, 0.1]),
    "amsgrad": st.booleans(),
})
CASES = [("SGD", sgd_cfg), ("Adagrad", adagrad_cfg), ("RMSprop", rmsprop_cfg), ("Adam", adam_cfg), ("AdamW", adam_cfg)]

shapes = st.lists(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), min_size=1, max_size=3)


def make_params(shape_list, seed):
    rng = np.random.default_rng(seed)
    ours = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in shape_list]
    theirs = [torch.nn.Parameter(torch.tensor(p.data.copy())) for p in ours]
    return ours, theirs


def set_grads(ours, theirs, rng):
    for p, q in zip(ours, theirs):
        g = rng.standard_normal(p.shape).astype(np.float32)
        p.grad[...] = g
        q.grad = torch.tensor(g)


@pytest.mark.parametrize("name,cfg", CASES, ids=[c[0] for c in CASES])
@given(data=st.data(), shape_list=shapes, seed=st.integers(0, 2**16))
def test_matches_torch(name, cfg, data, shape_list, seed):
    config = data.draw(cfg)
    ours, theirs = make_params(shape_list, seed)
    opt = getattr(optim, name)(ours, **config)
    ref = getattr(torch.optim, name)(theirs, **config)
    rng = np.random.default_rng(seed + 1)
    for step in range(STEPS):
        set_grads(ours, theirs, rng)
        opt.step()
        ref.step()
        for i, (p, q) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} {config} step {step + 1} parameter {i}")
            assert p.data.dtype == np.float32


@pytest.mark.parametrize("name,cfg", CASES, ids=[c[0] for c in CASES])
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_state_dict_round_trip_continues_identically(name, cfg, data, seed, tmp_path_factory):
    """Save after 3 steps (arrays to .npz, the rest to JSON), load into a fresh
    optimizer over copies of the parameters: the next 3 steps are bit-identical."""
    config = data.draw(cfg)
    ours, _ = make_params([(3, 4), (4,)], seed)
    opt = getattr(optim, name)(ours, **config)
    rng = np.random.default_rng(seed)
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in ours] for _ in range(6)]
    for step in range(3):
        for p, g in zip(ours, grads[step]):
            p.grad[...] = g
        opt.step()

    state = opt.state_dict()
    path = tmp_path_factory.mktemp("opt") / "state.npz"
    np.savez(path, **state["buffers"])
    meta = json.loads(json.dumps({k: v for k, v in state.items() if k != "buffers"}))
    with np.load(path, allow_pickle=False) as f:
        meta["buffers"] = {k: f[k] for k in f.files}

    copies = [Parameter(p.data.copy()) for p in ours]
    fresh = getattr(optim, name)(copies, lr=123.0)
    fresh.load_state_dict(meta)
    assert fresh.lr == opt.lr and fresh.step_count == 3
    for step in range(3, 6):
        for params in (ours, copies):
            for p, g in zip(params, grads[step]):
                p.grad[...] = g
        opt.step()
        fresh.step()
    for p, q in zip(ours, copies):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_layout():
    p = Parameter(np.ones((2, 3), np.float32))
    opt = optim.Adam([p], lr=0.01, amsgrad=True)
    p.grad[...] = 1.0
    opt.step()
    state = opt.state_dict()
    assert state["type"] == "Adam" and state["step"] == 1
    assert state["hyper"] == {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True}
    assert sorted(state["buffers"]) == ["0.exp_avg", "0.exp_avg_sq", "0.max_exp_avg_sq"]
    assert all(isinstance(v, np.ndarray) and v.shape == (2, 3) for v in state["buffers"].values())
    json.dumps({k: v for k, v in state.items() if k != "buffers"})


def test_load_state_dict_rejects_bad_state():
    p = Parameter(np.ones((2, 3), np.float32))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad[...] = 1.0
    opt.step()
    state = opt.state_dict()
    with pytest.raises(ValueError, match="state was saved from SGD, not Adam"):
        optim.Adam([p]).load_state_dict(state)
    with pytest.raises(ValueError, match=r"shape mismatch for buffer '0.momentum_buffer'.*\(2, 3\).*\(3,\)"):
        optim.SGD([p], lr=0.1).load_state_dict({**state, "buffers": {"0.momentum_buffer": np.zeros(3)}})
    with pytest.raises(KeyError, match="unexpected buffer '5.momentum_buffer'"):
        optim.SGD([p], lr=0.1).load_state_dict({**state, "buffers": {"5.momentum_buffer": np.zeros((2, 3))}})
    with pytest.raises(KeyError, match=r"missing entries \['step'\]"):
        optim.SGD([p], lr=0.1).load_state_dict({k: v for k, v in state.items() if k != "step"})


def test_lr_attribute_drives_the_update():
    p = Parameter(np.zeros(3, np.float32))
    opt = optim.SGD([p], lr=1.0)
    opt.lr = 0.25
    p.grad[...] = 4.0
    opt.step()
    np.testing.assert_array_equal(p.data, -np.ones(3, np.float32))


def test_zero_grad_clears_every_gradient():
    params = [Parameter(np.ones(3, np.float32)), Parameter(np.ones((2, 2), np.float32))]
    for p in params:
        p.grad[...] = 5.0
    optim.Adam(params).zero_grad()
    assert all(not p.grad.any() for p in params)


def test_updates_in_place_and_keep_float64():
    p = Parameter(np.ones(4))
    data = p.data
    opt = optim.RMSprop([p], centered=True, momentum=0.5)
    p.grad[...] = 1.0
    opt.step()
    assert p.data is data and p.data.dtype == np.float64
    assert all(b.dtype == np.float64 for b in opt.state[0].values())


@pytest.mark.parametrize("make,match", [
    (lambda ps: optim.SGD(ps, lr=-0.1), r"invalid lr: expected a finite number >= 0.0, got -0.1"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "nesterov momentum requires momentum > 0"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "and dampening = 0"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=-1), "invalid momentum"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), r"invalid beta1: expected a finite number >= 0.0 and < 1.0, got 1.0"),
    (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "invalid beta2"),
    (lambda ps: optim.AdamW(ps, betas=(0.9,)), r"betas must be a pair"),
    (lambda ps: optim.Adam(ps, eps=-1e-8), "invalid eps"),
    (lambda ps: optim.Adam(ps, weight_decay=float("nan")), "invalid weight_decay"),
    (lambda ps: optim.RMSprop(ps, alpha=1.5), r"invalid alpha: .* <= 1.0"),
    (lambda ps: optim.Adagrad(ps, lr_decay=-1), "invalid lr_decay"),
    (lambda ps: optim.SGD([], lr=0.1), "SGD: got an empty parameter list"),
    (lambda ps: optim.SGD(ps + ps, lr=0.1), "appears more than once"),
])
def test_bad_hyperparameters(make, match):
    params = [Parameter(np.zeros(2, np.float32))]
    with pytest.raises(ValueError, match=match):
        make(params)


def test_non_parameters_rejected():
    with pytest.raises(TypeError, match="SGD: parameter 0 is a ndarray, not a handgrad Parameter"):
        optim.SGD([np.zeros(3)], lr=0.1)


def test_accepts_a_generator_of_parameters():
    from handgrad import nn

    model = nn.Linear(3, 2)
    opt = optim.SGD((p for p in model.parameters()), lr=0.1)
    assert len(opt.params) == 2


def test_numpy_scalars_accepted_as_hyperparameters():
    opt = optim.Adam([Parameter(np.zeros(2, np.float32))], lr=np.float32(0.01), betas=(np.float64(0.9), 0.99))
    assert isinstance(opt.lr, float) and opt.lr == pytest.approx(0.01)


def test_sgd_with_only_a_learning_rate_takes_plain_steps_as_torch_defaults():
    """SGD(params, lr) is plain SGD, as torch.optim.SGD(params, lr): no momentum unless asked
    for; and so is the optimizer `handgrad train --optimizer sgd` builds."""
    from handgrad.train.build import build_optimizer
    from handgrad.train.config import RunConfig

    ours, theirs = make_params([(3, 4), (4,)], seed=3)
    rng = np.random.default_rng(4)
    opt, ref = optim.SGD(ours, lr=0.1), torch.optim.SGD(theirs, lr=0.1)
    start = [p.data.copy() for p in ours]
    for _ in range(4):
        set_grads(ours, theirs, rng)
        grads = [p.grad.copy() for p in ours]
        before = [p.data.copy() for p in ours]
        opt.step()
        ref.step()
        for p, q, g, b in zip(ours, theirs, grads, before):
            np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(p.data, b - 0.1 * g, rtol=1e-6, atol=1e-7)  # w <- w - lr g, nothing more
    assert not all(np.array_equal(s, p.data) for s, p in zip(start, ours))
    built = build_optimizer(RunConfig.resolve({"optimizer": "sgd"}), ours)
    assert built.momentum == 0


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.01)], ids=["SGD", "Adam"])
def test_state_that_decays_towards_denormals_is_flushed_and_no_weight_changes(make, monkeypatch):
    """Units whose gradient stops (dead ReLUs) leave moving averages that decay
    geometrically; every FLUSH_EVERY steps values below FLUSH_BELOW become zero, so
    none ever becomes a (slow) denormal, as PyTorch's do, and the weights are bitwise
    those of the same steps without flushing."""
    tiny = np.finfo(np.float32).tiny
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(50).astype(np.float32) for _ in range(1200)]
    for g in grads[5:]:
        g[25:] = 0  # from step 6 on, half the units get no gradient
    start = rng.standard_normal(50).astype(np.float32)

    def train(flush_every):
        monkeypatch.setattr(optimizer_module, "FLUSH_EVERY", flush_every)
        p = Parameter(start.copy())
        opt = make([p])
        denormal_steps = 0
        for g in grads:
            p.grad = g.copy()
            opt.step()
            denormal_steps += any(((b != 0) & (np.abs(b) < tiny)).any() for b in opt.state[0].values())
        return p.data, opt.state[0], denormal_steps

    weights, state, denormal_steps = train(64)
    ref_weights, ref_state, ref_denormal_steps = train(10**9)
    np.testing.assert_array_equal(weights, ref_weights)
    assert denormal_steps == 0 and ref_denormal_steps > 100  # without the flush they appear, and stay
    for name, buf in state.items():
        np.testing.assert_array_equal(buf[:25], ref_state[name][:25])  # the learning units' state is untouched
        assert (buf[25:] == 0).all() or name == "exp_avg_sq"  # Adam's second moment decays at 0.999: still > 1e-30
