"""Finite-difference checks (float64) of every recurrent layer: gradients of the input,
the initial state and every parameter, through several time steps and across truncated
back-propagation-through-time chunk boundaries."""
import numpy as np
import pytest

from handgrad import nn
from handgrad.gradcheck import numerical_gradient, rel_error

LAYERS = {
    "rnn": lambda d, h: nn.RNN(d, h, rng=1, dtype=np.float64),
    "lstm": lambda d, h: nn.LSTM(d, h, rng=1, dtype=np.float64),
    "lstm2": lambda d, h: nn.LSTM(d, h, num_layers=2, rng=1, dtype=np.float64),
    "gru": lambda d, h: nn.GRU(d, h, num_layers=2, rng=1, dtype=np.float64),
    "gated": lambda d, h: nn.GatedRNN(d, h, rng=1, dtype=np.float64),
    "attention": lambda d, h: nn.AttentionRNN(d, h, k=2, rng=1, dtype=np.float64),
}


def numerical_grad(f, a):
    """Central differences of the scalar f() w.r.t. every entry of ``a`` (perturbed in place)."""
    return numerical_gradient(lambda _: f(), a)


def as_list(state):
    return list(state) if isinstance(state, tuple) else [state]


def state_like(layer, n, rng):
    if isinstance(layer, nn.LSTM):
        shape = (layer.num_layers, n, layer.hidden_size)
        return (rng.standard_normal(shape), rng.standard_normal(shape))
    if isinstance(layer, nn.AttentionRNN):
        return rng.standard_normal((n, layer.k, layer.hidden_size))
    if isinstance(layer, nn.GatedRNN):
        return rng.standard_normal((n, layer.hidden_size))
    return rng.standard_normal((layer.num_layers, n, layer.hidden_size))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_gradients_of_input_state_and_parameters(kind, rng):
    n, steps, d, h = 2, 4, 3, 4
    layer = LAYERS[kind](d, h)
    x = rng.standard_normal((n, steps, d))
    state0 = state_like(layer, n, rng)
    w_out = rng.standard_normal((n, steps, h))
    w_state = [rng.standard_normal(s.shape) for s in as_list(state0)]

    def loss():
        out, state = layer(x, state0)
        return float((out * w_out).sum() + sum((s * w).sum() for s, w in zip(as_list(state), w_state)))

    loss()
    layer.zero_grad()
    dstate = tuple(w_state) if isinstance(state0, tuple) else w_state[0]
    dx = layer.backward(w_out, dstate)
    dstate0 = as_list(layer.initial_state_grad)
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-6
    for s, ds in zip(as_list(state0), dstate0):
        assert rel_error(ds, numerical_grad(loss, s)) < 1e-6
    for name, p in layer.named_parameters():
        assert rel_error(p.grad, numerical_grad(loss, p.data)) < 1e-6, name


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_gradient_only_for_hidden_sequence(kind, rng):
    """dstate=None means the loss does not depend on the final state."""
    layer = LAYERS[kind](2, 3)
    x = rng.standard_normal((2, 3, 2))
    w_out = rng.standard_normal((2, 3, 3))

    def loss():
        return float((layer(x)[0] * w_out).sum())

    loss()
    dx = layer.backward(w_out)
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-6
    for name, p in layer.named_parameters():
        assert rel_error(p.grad, numerical_grad(loss, p.data)) < 1e-6, name


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_chunks_carrying_state_equal_one_long_sequence(kind, rng):
    layer = LAYERS[kind](3, 4)
    x = rng.standard_normal((2, 7, 3))
    whole, final = layer(x)
    first, state = layer(x[:, :3])
    second, final_chunked = layer(x[:, 3:], state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-12)
    for a, b in zip(as_list(final), as_list(final_chunked)):
        np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_truncated_and_full_bptt_across_chunk_boundary(kind, rng):
    """Two chunks of one sequence. Truncated BPTT: the second chunk's gradient treats the
    carried state as a constant. Full BPTT: handing ``initial_state_grad`` of the second
    chunk to the first chunk's backward gives the gradient of the whole sequence."""
    layer = LAYERS[kind](3, 3)
    x = rng.standard_normal((2, 5, 3))
    w1, w2 = rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 3, 3))
    params = [p for _, p in layer.named_parameters()]

    def chunk_loss(state_in):
        out, _ = layer(x[:, 2:], state_in)
        return float((out * w2).sum())

    _, carried = layer(x[:, :2])
    frozen = tuple(s.copy() for s in carried) if isinstance(carried, tuple) else carried.copy()
    chunk_loss(frozen)
    layer.zero_grad()
    layer.backward(w2)
    truncated = [p.grad.copy() for p in params]
    for p, g in zip(params, truncated):
        assert rel_error(g, numerical_grad(lambda: chunk_loss(frozen), p.data)) < 1e-6

    def total_loss():
        out1, state = layer(x[:, :2])
        return float((out1 * w1).sum()) + chunk_loss(state)

    layer.zero_grad()
    out1, state = layer(x[:, :2])
    cache_first = layer._cache
    layer(x[:, 2:], state)
    layer.backward(w2)
    through_boundary = layer.initial_state_grad
    layer._cache = cache_first
    dx1 = layer.backward(w1, through_boundary)
    assert rel_error(dx1, numerical_grad(total_loss, x)[:, :2]) < 1e-6
    for name, p in layer.named_parameters():
        assert rel_error(p.grad, numerical_grad(total_loss, p.data)) < 1e-6, name
    assert any(rel_error(p.grad, g) > 1e-3 for p, g in zip(params, truncated))


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "GatedRNN"])
@pytest.mark.parametrize("n, steps", [(1, 5), (3, 1), (1, 1)])
def test_backward_leaves_the_callers_gradient_alone(kind, n, steps):
    """With one step or one row, a time-major view of dout is dout itself; the RNN
    kernel used to update it in place."""
    rng = np.random.default_rng(0)
    layer = getattr(nn, kind)(3, 4, dtype=np.float64)
    out, _ = layer(rng.standard_normal((n, steps, 3)))
    dout = rng.standard_normal(out.shape)
    kept = dout.copy()
    layer.backward(dout)
    np.testing.assert_array_equal(dout, kept)
