"""RNN, LSTM, GRU, Embedding and the temporal cross-entropy against PyTorch (float32,
copied weights, randomised sizes); GatedRNN and AttentionRNN against step-by-step
references written here; bad input gets clear errors."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from handgrad import nn
from oracle import assert_close, assert_grads_match, copy_weights, t

sizes = st.fixed_dictionaries({
    "n": st.integers(1, 5), "steps": st.integers(1, 25), "d": st.integers(1, 7),
    "h": st.integers(1, 9), "layers": st.integers(1, 2), "seed": st.integers(0, 2**16),
})


def run_both(ours, theirs, x, state0, with_state_grad=True, seed=0):
    """Forward both with the same input and state, backward a random linear function of
    every output; return (our dx, our initial-state grads) after checking everything."""
    rng = np.random.default_rng(seed)
    out, state = ours(x, state0)
    xt = t(x, grad=True)
    parts0 = state0 if isinstance(state0, tuple) else (state0,)
    parts0_t = [t(s, grad=True) for s in parts0]
    tout, tstate = theirs(xt, tuple(parts0_t) if isinstance(state0, tuple) else parts0_t[0])
    parts, tparts = (state, tstate) if isinstance(state, tuple) else ((state,), (tstate,))
    assert_close(out, tout, 1e-5, "output")
    for a, b in zip(parts, tparts):
        assert_close(a, b, 1e-5, "final state")
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dparts = [rng.standard_normal(p.shape).astype(np.float32) for p in parts] if with_state_grad else None
    total = (tout * t(dout)).sum()
    if with_state_grad:
        total = total + sum((b * t(d)).sum() for b, d in zip(tparts, dparts))
    total.backward()
    dstate = None if dparts is None else (tuple(dparts) if isinstance(state, tuple) else dparts[0])
    dx = ours.backward(dout, dstate)
    tol = 1e-5 * max(1.0, x.shape[1])
    assert_close(dx, xt.grad, tol, "dx")
    init_grads = ours.initial_state_grad if isinstance(state, tuple) else (ours.initial_state_grad,)
    for a, b in zip(init_grads, parts0_t):
        assert_close(a, b.grad, tol, "initial state grad")
    assert_grads_match(ours, theirs, tol * max(1, x.shape[0]))


@given(sizes, st.sampled_from(["tanh", "relu"]))
def test_rnn_matches_torch(cfg, nonlinearity):
    rng = np.random.default_rng(cfg["seed"])
    ours = nn.RNN(cfg["d"], cfg["h"], num_layers=cfg["layers"], nonlinearity=nonlinearity, rng=rng)
    theirs = torch.nn.RNN(cfg["d"], cfg["h"], num_layers=cfg["layers"], nonlinearity=nonlinearity, batch_first=True)
    copy_weights(ours, theirs)
    x = rng.standard_normal((cfg["n"], cfg["steps"], cfg["d"])).astype(np.float32)
    h0 = rng.standard_normal((cfg["layers"], cfg["n"], cfg["h"])).astype(np.float32)
    run_both(ours, theirs, x, h0, seed=cfg["seed"])


@given(sizes, st.booleans())
def test_lstm_matches_torch(cfg, with_state_grad):
    rng = np.random.default_rng(cfg["seed"])
    ours = nn.LSTM(cfg["d"], cfg["h"], num_layers=cfg["layers"], rng=rng)
    theirs = torch.nn.LSTM(cfg["d"], cfg["h"], num_layers=cfg["layers"], batch_first=True)
    copy_weights(ours, theirs)
    x = rng.standard_normal((cfg["n"], cfg["steps"], cfg["d"])).astype(np.float32)
    shape = (cfg["layers"], cfg["n"], cfg["h"])
    state0 = (rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32))
    run_both(ours, theirs, x, state0, with_state_grad, seed=cfg["seed"])


@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_weights_move_to_torch_and_back(layers):
    theirs = torch.nn.LSTM(5, 7, num_layers=layers, batch_first=True)
    ours = nn.LSTM(5, 7, num_layers=layers)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(3).standard_normal((4, 6, 5)).astype(np.float32)
    out, (h, c) = ours(x)
    tout, (th, tc) = theirs(t(x))
    assert_close(out, tout)
    assert_close(h, th)
    assert_close(c, tc)


@given(sizes)
def test_gru_matches_torch(cfg):
    rng = np.random.default_rng(cfg["seed"])
    ours = nn.GRU(cfg["d"], cfg["h"], num_layers=cfg["layers"], rng=rng)
    theirs = torch.nn.GRU(cfg["d"], cfg["h"], num_layers=cfg["layers"], batch_first=True)
    copy_weights(ours, theirs)
    x = rng.standard_normal((cfg["n"], cfg["steps"], cfg["d"])).astype(np.float32)
    h0 = rng.standard_normal((cfg["layers"], cfg["n"], cfg["h"])).astype(np.float32)
    run_both(ours, theirs, x, h0, seed=cfg["seed"])


@given(st.integers(1, 30), st.integers(1, 8), st.tuples(st.integers(1, 4), st.integers(1, 6)), st.integers(0, 999))
def test_embedding_matches_torch(vocab, dim, shape, seed):
    rng = np.random.default_rng(seed)
    ours = nn.Embedding(vocab, dim, rng=rng)
    theirs = torch.nn.Embedding(vocab, dim)
    copy_weights(ours, theirs)
    idx = rng.integers(0, vocab, size=shape)
    out = ours(idx)
    tout = theirs(torch.tensor(idx))
    assert_close(out, tout)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    assert ours.backward(dout) is None
    (tout * t(dout)).sum().backward()
    assert_grads_match(ours, theirs)


@given(st.integers(1, 4), st.integers(1, 6), st.integers(2, 9), st.booleans(), st.integers(0, 999))
def test_temporal_cross_entropy_matches_torch(n, steps, classes, masked, seed):
    rng = np.random.default_rng(seed)
    logits = (3 * rng.standard_normal((n, steps, classes))).astype(np.float32)
    target = rng.integers(0, classes, size=(n, steps))
    mask = rng.random((n, steps)) < 0.6 if masked else None
    if mask is not None:
        mask[0, 0] = True
    loss_fn = nn.TemporalCrossEntropyLoss()
    loss = loss_fn(logits, target, mask)
    dz = loss_fn.backward()
    zt = t(logits, grad=True)
    tt = torch.tensor(np.where(mask, target, -100) if masked else target)
    tloss = torch.nn.functional.cross_entropy(zt.reshape(-1, classes), tt.reshape(-1), ignore_index=-100)
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-5 * max(1.0, abs(loss))
    assert_close(dz, zt.grad)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def test_gated_rnn_matches_step_by_step_reference(rng):
    layer = nn.GatedRNN(3, 4, rng=2, dtype=np.float64)
    x = rng.standard_normal((2, 5, 3))
    out, h_last = layer(x)
    w_c, w_h, w_x = layer.weight_c.data, layer.weight_h.data, layer.weight_x.data
    h = np.zeros((2, 4))
    for step in range(5):
        c = sigmoid(x[:, step] @ w_c.T + h @ w_h.T)
        h = c * h + (1 - c) * (x[:, step] @ w_x.T)
        np.testing.assert_allclose(out[:, step], h, atol=1e-12)
    np.testing.assert_allclose(h_last, h, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3])
def test_attention_rnn_matches_step_by_step_reference(k, rng):
    hid, steps = 4, 6
    layer = nn.AttentionRNN(3, hid, k=k, rng=2, dtype=np.float64)
    x = rng.standard_normal((2, steps, 3))
    out, last = layer(x)
    wx, wh = layer.weight_x.data, layer.weight_h.data
    hist = {s: np.zeros((2, hid)) for s in range(1 - k, 1)}  # h[t] = 0 for t < 1
    for step in range(1, steps + 1):
        qkv = [x[:, step - 1] @ wx.T] + [hist[step - i] @ wh[i - 1].T for i in range(1, k + 1)]
        w = np.stack([(p[:, :hid] * p[:, hid: 2 * hid]).sum(axis=1) for p in qkv], axis=1)
        a = np.exp(w) / np.exp(w).sum(axis=1, keepdims=True)
        hist[step] = sum(a[:, i: i + 1] * p[:, 2 * hid:] for i, p in enumerate(qkv))
        np.testing.assert_allclose(out[:, step - 1], hist[step], atol=1e-12)
    np.testing.assert_allclose(last, np.stack([hist[s] for s in range(steps - k + 1, steps + 1)], axis=1), atol=1e-12)


LAYER_MAKERS = [
    lambda: nn.RNN(3, 4), lambda: nn.LSTM(3, 4, num_layers=2), lambda: nn.GRU(3, 4),
    lambda: nn.GatedRNN(3, 4), lambda: nn.AttentionRNN(3, 4, k=2),
]


@pytest.mark.parametrize("make", LAYER_MAKERS)
def test_bad_input_gets_clear_errors(make):
    layer = make()
    name = type(layer).__name__
    with pytest.raises(ValueError, match=f"{name}: expected a 3-D input"):
        layer(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=f"{name}: expected input_size 3 .* got 5"):
        layer(np.zeros((2, 4, 5), np.float32))
    with pytest.raises(ValueError, match=f"{name}: expected at least one time step"):
        layer(np.zeros((2, 0, 3), np.float32))
    with pytest.raises(TypeError, match=f"{name}: expected a floating-point input"):
        layer(np.zeros((2, 4, 3), np.int64))
    bad_state = np.zeros((7, 7, 7), np.float32)
    state = (bad_state, bad_state) if isinstance(layer, nn.LSTM) else bad_state
    with pytest.raises(ValueError, match=f"{name}: expected initial state .* of shape"):
        layer(np.zeros((2, 4, 3), np.float32), state)


def test_lstm_state_must_be_a_pair():
    with pytest.raises(ValueError, match=r"LSTM: expected the state as a tuple \(h, c\)"):
        nn.LSTM(3, 4)(np.zeros((2, 4, 3), np.float32), np.zeros((1, 2, 4), np.float32))


def test_bad_sizes_and_ids_get_clear_errors():
    with pytest.raises(ValueError, match="LSTM: hidden_size must be a positive integer"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="RNN: nonlinearity must be 'tanh' or 'relu'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"Embedding: token ids must be in \[0, 5\), got 5"):
        nn.Embedding(5, 2)(np.array([[0, 5]]))
    with pytest.raises(TypeError, match="Embedding: token ids must be integers"):
        nn.Embedding(5, 2)(np.array([0.5]))
    with pytest.raises(ValueError, match=r"TemporalCrossEntropyLoss: expected logits of shape \(N, T, C\)"):
        nn.TemporalCrossEntropyLoss()(np.zeros((2, 3), np.float32), np.zeros(2, int))
    with pytest.raises(ValueError, match=r"TemporalCrossEntropyLoss: expected targets of shape \(N, T\)"):
        nn.TemporalCrossEntropyLoss()(np.zeros((2, 3, 4), np.float32), np.zeros(2, int))
