"""Every fused recurrent kernel against its step-by-step reference (forward and all
gradients, float64, randomised sizes), finite-difference checks of every recurrent
kernel through ``check_op``, and AttentionRNN(k=math.inf), the cell that attends over
every past state, checked like AttentionRNN(k)."""
import math
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handgrad import nn, ops
from handgrad.gradcheck import HiddenStates, check_module, check_op, numerical_gradient, rel_error


def uniform(rng, shape, scale=1.0):
    return scale * rng.uniform(-1, 1, shape)


def rnn_inputs(rng, n, steps, d, h, nonlinearity="tanh"):
    return {"x": rng.standard_normal((n, steps, d)), "h0": rng.standard_normal((n, h)),
            "w_ih": uniform(rng, (h, d)), "w_hh": uniform(rng, (h, h)), "b_ih": uniform(rng, h),
            "b_hh": uniform(rng, h), "nonlinearity": nonlinearity}


def gates_inputs(gates, with_c):
    def make(rng, n, steps, d, h):
        inputs = {"x": rng.standard_normal((n, steps, d)), "h0": rng.standard_normal((n, h))}
        if with_c:
            inputs["c0"] = rng.standard_normal((n, h))
        inputs.update({"w_ih": uniform(rng, (gates * h, d)), "w_hh": uniform(rng, (gates * h, h)),
                       "b_ih": uniform(rng, gates * h), "b_hh": uniform(rng, gates * h)})
        return inputs
    return make


def gated_inputs(rng, n, steps, d, h):
    return {"x": rng.standard_normal((n, steps, d)), "h0": rng.standard_normal((n, h)),
            "w_c": uniform(rng, (h, d)), "w_h": uniform(rng, (h, h)), "w_x": uniform(rng, (h, d))}


def attention_inputs(lags, scale=1.0):
    def make(rng, n, steps, d, h):
        return {"x": rng.standard_normal((n, steps, d)), "h0": rng.standard_normal((n, lags, h)),
                "w_x": uniform(rng, (3 * h, d), scale), "w_h": uniform(rng, (lags, 3 * h, h), scale)}
    return make


def attention_all_inputs(given_states, scale=1.0):
    def make(rng, n, steps, d, h):
        return {"x": rng.standard_normal((n, steps, d)), "h0": rng.standard_normal((n, given_states, h)),
                "w_x": uniform(rng, (3 * h, d), scale), "w_h": uniform(rng, (3 * h, h), scale)}
    return make


# name -> (module of ops names, input maker)
KERNELS = {
    "rnn tanh": ("rnn", rnn_inputs),
    "rnn relu": ("rnn", partial(rnn_inputs, nonlinearity="relu")),
    "lstm": ("lstm", gates_inputs(4, with_c=True)),
    "gru": ("gru", gates_inputs(3, with_c=False)),
    "gated": ("gated_rnn", gated_inputs),
    "attention k=1": ("attention_rnn", attention_inputs(1)),
    "attention k=3": ("attention_rnn", attention_inputs(3)),
    "attention k=inf S=1": ("attention_rnn_all", attention_all_inputs(1)),
    "attention k=inf S=3": ("attention_rnn_all", attention_all_inputs(3)),
    # large scores: the running log-sum-exp of the fused kernel must stay exact
    "attention k=inf S=2 sharp": ("attention_rnn_all", attention_all_inputs(2, scale=4.0)),
}


def kernels(name, variant=""):
    """(forward, backward) of ops, e.g. ('lstm', '_naive') -> lstm_forward_naive, lstm_backward_naive."""
    prefix, _ = KERNELS[name]
    return getattr(ops, f"{prefix}_forward{variant}"), getattr(ops, f"{prefix}_backward{variant}")


def assert_same(ours, ref, what):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, what
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-13 * max(1.0, np.abs(ref).max()), err_msg=what)


sizes = st.fixed_dictionaries({
    "n": st.integers(1, 4), "steps": st.integers(1, 9), "d": st.integers(1, 5), "h": st.integers(1, 6),
    "seed": st.integers(0, 2**16),
})


@pytest.mark.parametrize("name", sorted(KERNELS))
@given(cfg=sizes)
def test_fused_kernel_equals_its_step_by_step_reference(name, cfg):
    rng = np.random.default_rng(cfg["seed"])
    inputs = KERNELS[name][1](rng, cfg["n"], cfg["steps"], cfg["d"], cfg["h"])
    fast, fast_back = kernels(name)
    naive, naive_back = kernels(name, "_naive")
    out, cache = fast(*inputs.values())
    ref, ref_cache = naive(*inputs.values())
    assert_same(out, ref, "output")
    dout = rng.standard_normal(out.shape)
    kept = dout.copy()
    grads, ref_grads = fast_back(dout, cache), naive_back(dout, ref_cache)
    np.testing.assert_array_equal(dout, kept)
    names = list(inputs)[: len(ref_grads)]
    assert len(grads) == len(ref_grads) == len(names)
    for what, g, r in zip(names, grads, ref_grads):
        assert_same(g, r, f"d{what}")


@pytest.mark.parametrize("variant", ["", "_naive"])
@pytest.mark.parametrize("name", sorted(k for k in KERNELS if "sharp" not in k))  # saturated: gradients ~1e-16
@settings(max_examples=4)
@given(cfg=sizes)
def test_check_op_on_every_recurrent_kernel(name, variant, cfg):
    rng = np.random.default_rng(cfg["seed"])
    inputs = KERNELS[name][1](rng, cfg["n"], min(cfg["steps"], 5), min(cfg["d"], 3), min(cfg["h"], 4))
    # an input behind saturated gates may have gradients 1e-8 of the others', all rounding
    # noise of the finite differences: every error is judged on the op's largest gradient
    report = check_op(*kernels(name, variant), inputs, seed=cfg["seed"], scale="op")
    assert set(report) == {k for k in inputs if k != "nonlinearity"}
    assert max(report.values()) < 1e-6, report


STEPS = {
    "rnn": (ops.rnn_step_forward, ops.rnn_step_backward, rnn_inputs),
    "lstm": (ops.lstm_step_forward, ops.lstm_step_backward, gates_inputs(4, with_c=True)),
    "gru": (ops.gru_step_forward, ops.gru_step_backward, gates_inputs(3, with_c=False)),
    "gated": (ops.gated_rnn_step_forward, ops.gated_rnn_step_backward, gated_inputs),
    "attention k=2": (ops.attention_rnn_step_forward, ops.attention_rnn_step_backward, attention_inputs(2)),
    "attention k=inf": (ops.attention_rnn_all_step_forward, ops.attention_rnn_all_step_backward,
                        attention_all_inputs(3)),
}


@pytest.mark.parametrize("name", sorted(STEPS))
def test_check_op_on_every_step_kernel(name):
    forward, backward, make = STEPS[name]
    inputs = make(np.random.default_rng(5), 3, 1, 4, 3)
    inputs["x"] = inputs["x"][:, 0]
    report = check_op(forward, backward, inputs)
    assert max(report.values()) < 1e-6, report


STACKED = {"RNN": ("rnn", 1), "LSTM": ("lstm", 4), "GRU": ("gru", 3)}


@pytest.mark.parametrize("kind", sorted(STACKED))
@settings(max_examples=10)
@given(cfg=sizes, layers=st.integers(1, 3))
def test_stacked_layer_equals_reference_kernels_chained(kind, cfg, layers):
    """nn.RNN/LSTM/GRU(num_layers=L): layer l reads the hidden states of layer l-1; the
    final state's gradient enters at the last step."""
    prefix, _ = STACKED[kind]
    rng = np.random.default_rng(cfg["seed"])
    n, steps, d, h = cfg["n"], cfg["steps"], cfg["d"], cfg["h"]
    layer = getattr(nn, kind)(d, h, num_layers=layers, rng=rng, dtype=np.float64)
    x = rng.standard_normal((n, steps, d))
    parts = 2 if kind == "LSTM" else 1
    state0 = [rng.standard_normal((layers, n, h)) for _ in range(parts)]
    out, state = layer(x, tuple(state0) if parts == 2 else state0[0])
    state = state if parts == 2 else (state,)
    forward, backward = getattr(ops, f"{prefix}_forward_naive"), getattr(ops, f"{prefix}_backward_naive")
    seq, caches = x, []
    for k in range(layers):
        params = [getattr(layer, f"{p}_l{k}").data for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        full, cache = forward(seq, *[s[k] for s in state0], *params)
        full = full if parts == 2 else full[None]
        for i in range(parts):
            assert_same(state[i][k], full[i][:, -1], f"final state part {i}, layer {k}")
        seq = full[0]
        caches.append(cache)
    assert_same(out, seq, "output")
    dout = rng.standard_normal(out.shape)
    dstate = [rng.standard_normal(s.shape) for s in state]
    layer.zero_grad()
    dx = layer.backward(dout, tuple(dstate) if parts == 2 else dstate[0])
    dinit = layer.initial_state_grad if parts == 2 else (layer.initial_state_grad,)
    dseq = dout
    for k in range(layers - 1, -1, -1):
        d_full = np.zeros((parts, n, steps, h))
        d_full[0] = dseq
        for i in range(parts):
            d_full[i][:, -1] += dstate[i][k]
        grads = backward(d_full if parts == 2 else d_full[0], caches[k])
        dseq = grads[0]
        for i in range(parts):
            assert_same(dinit[i][k], grads[1 + i], f"initial state part {i}, layer {k}")
        for p, g in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), grads[1 + parts:]):
            assert_same(getattr(layer, f"{p}_l{k}").grad, g, f"{p}_l{k}")
    assert_same(dx, dseq, "dx")


@pytest.mark.parametrize("cell_steps", [(), (2,), (0, 2)])
@pytest.mark.parametrize("n", [2, 33])  # N H^2 = 2^15: gate-major gate gradients; 33 * 2^14 > 2^19: (T, N, 4H)
def test_lstm_backward_in_both_layouts_with_cell_gradients_at_some_steps(n, cell_steps):
    """lstm_backward's two layouts of the gate gradients (chosen by N H^2), with a cell-state
    gradient dout[1] that is zero except at ``cell_steps`` (the steps it skips), against
    the step-by-step reference."""
    rng = np.random.default_rng(n + len(cell_steps))
    inputs = gates_inputs(4, with_c=True)(rng, n, 3, 3, 128)
    out, cache = ops.lstm_forward(*inputs.values())
    ref, ref_cache = ops.lstm_forward_naive(*inputs.values())
    dout = rng.standard_normal(out.shape)
    dout[1] = 0
    for t in cell_steps:
        dout[1, :, t] = rng.standard_normal((n, 128))
    grads, ref_grads = ops.lstm_backward(dout, cache), ops.lstm_backward_naive(dout, ref_cache)
    for what, g, r in zip(inputs, grads, ref_grads):
        assert_same(g, r, f"d{what}")


# -- the LSTM reading token ids through an embedding ------------------------------

def embedding_lstm_inputs(rng, n, steps, vocab, d, h):
    inputs = gates_inputs(4, with_c=True)(rng, n, steps, d, h)
    inputs["x"] = rng.standard_normal((vocab, d))
    return rng.integers(0, vocab, size=(n, steps)), {"table": inputs.pop("x"), **inputs}


@given(cfg=sizes, vocab=st.integers(1, 7))
def test_lstm_embedding_kernel_equals_the_lstm_on_the_looked_up_vectors(cfg, vocab):
    """lstm_embedding_forward(ids, E, ...) = lstm_forward_naive(E[ids], ...); its table
    gradient is the scatter-add of the reference's dx over the ids."""
    rng = np.random.default_rng(cfg["seed"])
    ids, inputs = embedding_lstm_inputs(rng, cfg["n"], cfg["steps"], vocab, cfg["d"], cfg["h"])
    table, rest = inputs["table"], list(inputs.values())[1:]
    out, cache = ops.lstm_embedding_forward(ids, table, *rest)
    ref, ref_cache = ops.lstm_forward_naive(table[ids], *rest)
    assert_same(out, ref, "output")
    dout = rng.standard_normal(out.shape)
    grads, ref_grads = ops.lstm_embedding_backward(dout, cache), ops.lstm_backward_naive(dout, ref_cache)
    dtable = np.zeros_like(table)
    np.add.at(dtable, ids, ref_grads[0])
    assert len(grads) == len(ref_grads) == len(inputs)
    for what, g, r in zip(inputs, grads, (dtable,) + ref_grads[1:]):
        assert_same(g, r, f"d{what}")


@settings(max_examples=4)
@given(cfg=sizes, vocab=st.integers(1, 5))
def test_check_op_on_the_lstm_embedding_kernel(cfg, vocab):
    rng = np.random.default_rng(cfg["seed"])
    ids, inputs = embedding_lstm_inputs(rng, cfg["n"], min(cfg["steps"], 5), vocab, min(cfg["d"], 3),
                                        min(cfg["h"], 4))
    report = check_op(partial(ops.lstm_embedding_forward, ids), ops.lstm_embedding_backward, inputs, seed=cfg["seed"])
    assert set(report) == set(inputs)
    assert max(report.values()) < 1e-6, report


@pytest.mark.parametrize("vocab", [5, 9])  # V <= 2 D: the fused kernel; V > 2 D: the Embedding module
@settings(max_examples=10)
@given(cfg=sizes, layers=st.integers(1, 2))
def test_lstm_reading_ids_through_an_embedding_equals_the_two_layers_in_turn(vocab, cfg, layers):
    rng = np.random.default_rng(cfg["seed"])
    n, steps, h = cfg["n"], cfg["steps"], cfg["h"]
    emb = nn.Embedding(vocab, 4, rng=rng, dtype=np.float64)
    lstm = nn.LSTM(4, h, num_layers=layers, rng=rng, dtype=np.float64)
    ids = rng.integers(0, vocab, size=(n, steps))
    state0 = tuple(rng.standard_normal((layers, n, h)) for _ in range(2))
    dout = rng.standard_normal((n, steps, h))
    dstate = tuple(rng.standard_normal((layers, n, h)) for _ in range(2))
    results = []
    for fused in (True, False):
        emb.zero_grad()
        lstm.zero_grad()
        out, state = lstm(ids, state0, embedding=emb) if fused else lstm(emb(ids), state0)
        dx = lstm.backward(dout, dstate)
        if fused:
            assert dx is None
        else:
            emb.backward(dx)
        grads = [p.grad.copy() for p in (*emb.parameters(), *lstm.parameters())]
        results.append((out, *state, lstm.initial_state_grad[0], lstm.initial_state_grad[1], *grads))
    for i, (ours, ref) in enumerate(zip(*results)):
        assert_same(ours, ref, f"result {i}")


def test_lstm_reading_ids_gets_clear_errors():
    lstm = nn.LSTM(4, 3)
    with pytest.raises(ValueError, match="LSTM: expected an embedding of width input_size 4, got embedding_dim 5"):
        lstm(np.zeros((2, 3), dtype=int), embedding=nn.Embedding(6, 5))
    with pytest.raises(ValueError, match=r"LSTM: expected token ids of shape \(N, T\) with T >= 1, got shape \(2, 3, 1\)"):
        lstm(np.zeros((2, 3, 1), dtype=int), embedding=nn.Embedding(6, 4))
    with pytest.raises(ValueError, match="Embedding: token ids"):
        lstm(np.full((2, 3), 6), embedding=nn.Embedding(6, 4))


# -- AttentionRNN(k=math.inf) ----------------------------------------------------

def softmax_rows(w):
    e = np.exp(w - w.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_attention_rnn_inf_matches_step_by_step_reference(rng):
    """h[t] = sum_i a_i v_i over x[t] and every past state h[0] = 0, h[1], ..., h[t-1],
    the past states all through the one tied weight_h."""
    hid, steps = 4, 6
    layer = nn.AttentionRNN(3, hid, k=math.inf, rng=2, dtype=np.float64)
    assert layer.weight_h.shape == (3 * hid, hid)
    x = rng.standard_normal((2, steps, 3))
    out, states = layer(x)
    wx, wh = layer.weight_x.data, layer.weight_h.data
    hist = [np.zeros((2, hid))]
    for step in range(1, steps + 1):
        qkv = [x[:, step - 1] @ wx.T] + [h @ wh.T for h in hist]
        w = np.stack([(p[:, :hid] * p[:, hid: 2 * hid]).sum(axis=1) for p in qkv], axis=1)
        a = softmax_rows(w)
        hist.append(sum(a[:, i: i + 1] * p[:, 2 * hid:] for i, p in enumerate(qkv)))
        np.testing.assert_allclose(out[:, step - 1], hist[step], atol=1e-12)
    np.testing.assert_allclose(states, np.stack(hist, axis=1), atol=1e-12)


def test_attention_rnn_inf_gradients_match_finite_differences(rng):
    report = check_module(HiddenStates(nn.AttentionRNN(3, 4, k=math.inf, rng=1)), rng.standard_normal((2, 5, 3)))
    assert set(report) == {"input", "layer.weight_x", "layer.weight_h"}
    assert max(report.values()) < 1e-6, report


@pytest.mark.parametrize("k", [2, math.inf])
def test_attention_rnn_state_gradient_and_chunks(k, rng):
    """The returned state (last k states, or all of them) carries a chunked sequence
    exactly; its gradient (and initial_state_grad) match finite differences, also when
    T < k, where part of the returned state is the given one."""
    layer = nn.AttentionRNN(3, 4, k=k, rng=1, dtype=np.float64)
    x = rng.standard_normal((2, 5, 3))
    whole, final = layer(x)
    first, state = layer(x[:, :1])
    second, final_chunked = layer(x[:, 1:], state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-12)
    np.testing.assert_allclose(final_chunked, final, atol=1e-12)

    state0 = rng.standard_normal((2, 3 if k == math.inf else k, 4))
    x = x[:, :1]  # one step: T < k
    w_out = rng.standard_normal((2, 1, 4))
    _, state = layer(x, state0)
    w_state = rng.standard_normal(state.shape)

    def loss():
        out, state = layer(x, state0)
        return float((out * w_out).sum() + (state * w_state).sum())

    loss()
    layer.zero_grad()
    dx = layer.backward(w_out, w_state)
    dstate0 = layer.initial_state_grad
    assert rel_error(dx, numerical_gradient(lambda _: loss(), x)) < 1e-6
    assert rel_error(dstate0, numerical_gradient(lambda _: loss(), state0)) < 1e-6
    for name, p in layer.named_parameters():
        assert rel_error(p.grad, numerical_gradient(lambda _: loss(), p.data)) < 1e-6, name


def test_attention_rnn_inf_full_bptt_across_chunks(rng):
    """Handing initial_state_grad of a later chunk to the earlier chunk's backward gives
    the gradient of the whole sequence."""
    layer = nn.AttentionRNN(3, 3, k=math.inf, rng=1, dtype=np.float64)
    x = rng.standard_normal((2, 5, 3))
    w1, w2 = rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 3, 3))

    def total_loss():
        out1, state = layer(x[:, :2])
        return float((out1 * w1).sum() + (layer(x[:, 2:], state)[0] * w2).sum())

    layer.zero_grad()
    _, state = layer(x[:, :2])
    cache_first = layer._cache
    layer(x[:, 2:], state)
    layer.backward(w2)
    layer._cache = cache_first
    dx1 = layer.backward(w1, layer.initial_state_grad)
    assert rel_error(dx1, numerical_gradient(lambda _: total_loss(), x)[:, :2]) < 1e-6
    for name, p in layer.named_parameters():
        assert rel_error(p.grad, numerical_gradient(lambda _: total_loss(), p.data)) < 1e-6, name


def test_attention_rnn_inf_bad_input_gets_clear_errors():
    layer = nn.AttentionRNN(3, 4, k=math.inf)
    assert "k=inf" in repr(layer)
    with pytest.raises(ValueError, match=r"AttentionRNN: expected initial state .* of shape \(N, S, H\) = \(2, S, 4\)"):
        layer(np.zeros((2, 4, 3), np.float32), np.zeros((2, 0, 4), np.float32))
    with pytest.raises(ValueError, match=r"AttentionRNN: expected initial state .* got \(2, 4\)"):
        layer(np.zeros((2, 4, 3), np.float32), np.zeros((2, 4), np.float32))
    for bad in (0, 2.5, None, -math.inf):
        with pytest.raises(ValueError, match="AttentionRNN: k must be a positive integer or math.inf"):
            nn.AttentionRNN(3, 4, k=bad)
