"""Learning-rate schedules and gradient clipping against torch."""
import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from handgrad import optim
from handgrad.nn import Parameter

SCHEDULES = [
    ("StepLR", st.fixed_dictionaries({"step_size": st.integers(1, 5), "gamma": st.sampled_from([0.1, 0.5, 0.9])})),
    ("ExponentialLR", st.fixed_dictionaries({"gamma": st.sampled_from([0.5, 0.9, 0.99])})),
    ("CosineAnnealingLR", st.fixed_dictionaries({"T_max": st.integers(1, 10), "eta_min": st.sampled_from([0.0, 1e-3])})),
]


def pair(lr):
    ours = optim.SGD([Parameter(np.zeros(2, np.float32))], lr=lr, momentum=0.9)
    theirs = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=0.9)
    return ours, theirs


@pytest.mark.parametrize("name,cfg", SCHEDULES, ids=[s[0] for s in SCHEDULES])
@given(data=st.data(), lr=st.sampled_from([0.1, 0.05, 1.0]))
def test_schedule_matches_torch(name, cfg, data, lr):
    config = data.draw(cfg)
    opt, ref_opt = pair(lr)
    sched = getattr(optim, name)(opt, **config)
    ref = getattr(torch.optim.lr_scheduler, name)(ref_opt, **config)
    assert sched.get_last_lr() == pytest.approx(ref.get_last_lr()[0], rel=1e-12)
    for epoch in range(1, 25):
        ref_opt.step()
        ref.step()
        sched.step()
        assert sched.last_epoch == epoch
        assert opt.lr == sched.get_last_lr()
        assert opt.lr == pytest.approx(ref.get_last_lr()[0], rel=1e-9, abs=1e-12), f"{name} {config} epoch {epoch}"


@pytest.mark.parametrize("name,cfg", SCHEDULES, ids=[s[0] for s in SCHEDULES])
@given(data=st.data())
def test_schedule_state_dict_round_trip(name, cfg, data):
    config = data.draw(cfg)
    opt, _ = pair(0.1)
    sched = getattr(optim, name)(opt, **config)
    for _ in range(4):
        sched.step()
    state = json.loads(json.dumps(sched.state_dict()))
    other, _ = pair(0.7)
    resumed = getattr(optim, name)(other, **config)
    resumed.load_state_dict(state)
    assert other.lr == opt.lr
    for _ in range(5):
        sched.step()
        resumed.step()
        assert other.lr == opt.lr


def test_schedule_errors():
    opt, _ = pair(0.1)
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive integer, got 0"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be a positive integer"):
        optim.CosineAnnealingLR(opt, T_max=2.5)
    with pytest.raises(ValueError, match="invalid gamma"):
        optim.ExponentialLR(opt, gamma=-0.5)
    with pytest.raises(TypeError, match="StepLR: expected a handgrad Optimizer, got SGD"):
        optim.StepLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), step_size=1)
    state = optim.StepLR(opt, step_size=2).state_dict()
    with pytest.raises(ValueError, match="state was saved from StepLR, not ExponentialLR"):
        optim.ExponentialLR(opt, gamma=0.5).load_state_dict({"type": "StepLR", "base_lr": 0.1, "last_epoch": 0, "gamma": 0.5})
    with pytest.raises(KeyError, match=r"missing keys \['gamma'\], unexpected keys \[\]"):
        optim.StepLR(opt, step_size=2).load_state_dict({k: v for k, v in state.items() if k != "gamma"})


def grads_pair(shapes, seed, scale):
    rng = np.random.default_rng(seed)
    ours = [Parameter(np.zeros(s, np.float32)) for s in shapes]
    theirs = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p, q in zip(ours, theirs):
        g = (rng.standard_normal(p.shape) * scale).astype(np.float32)
        p.grad[...] = g
        q.grad = torch.tensor(g)
    return ours, theirs


shape_lists = st.lists(st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple), min_size=1, max_size=4)


@given(shapes=shape_lists, seed=st.integers(0, 1000), scale=st.sampled_from([1e-3, 1.0, 100.0]),
       max_norm=st.sampled_from([0.1, 1.0, 5.0]), norm_type=st.sampled_from([1.0, 2.0, 3.0, float("inf")]))
def test_clip_grad_norm_matches_torch(shapes, seed, scale, max_norm, norm_type):
    ours, theirs = grads_pair(shapes, seed, scale)
    total = optim.clip_grad_norm_(ours, max_norm, norm_type)
    ref_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(float(ref_total), rel=1e-5)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-5, atol=1e-7)


@given(shapes=shape_lists, seed=st.integers(0, 1000), clip=st.sampled_from([0.0, 0.1, 1.0]))
def test_clip_grad_value_matches_torch(shapes, seed, clip):
    ours, theirs = grads_pair(shapes, seed, 1.0)
    optim.clip_grad_value_(ours, clip)
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())


def test_clip_accepts_one_parameter_and_rejects_bad_values():
    p = Parameter(np.zeros(4, np.float32))
    p.grad[...] = 3.0
    assert optim.clip_grad_norm_(p, 1.0) == pytest.approx(6.0)
    assert np.linalg.norm(p.grad) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="max_norm must be >= 0, got -1"):
        optim.clip_grad_norm_([p], -1)
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        optim.clip_grad_value_([p], -0.5)
    with pytest.raises(TypeError, match="clip_grad_norm_: item 0 is a ndarray"):
        optim.clip_grad_norm_([np.zeros(3)], 1.0)
