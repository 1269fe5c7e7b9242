"""Helpers shared by the recurrent kernels (rnn, lstm, gru, gated, attention).

The sequence kernels share one contract, the one of every kernel in ``ops``:

    f_forward(x, state0, weights...) -> (out, cache)
    f_backward(dout, cache) -> (dx, dstate0, dweights...)

x is batch-first (N, T, D); ``out`` is the state after every step, (N, T, H), so the
final state, which a caller carries into the next chunk of a long sequence
(truncated back-propagation through time), is ``out[:, -1]``; a gradient of the
loss w.r.t. that final state is added into ``dout[:, -1]`` by the caller. The LSTM's
state is the pair (h, c), so its ``out`` is (2, N, T, H); the attention cells'
states are windows of past h's (see attention.py).

Each cell has three kernels side by side: ``*_step_forward/backward`` (one step,
written the plain way), ``*_forward_naive/backward_naive`` (a Python loop over time
calling the step: the reference) and ``*_forward/backward`` (fused and fast: input
projections for all steps as one product, weight gradients as one product over all
steps, time-major arrays so every step touches contiguous memory).
"""
from __future__ import annotations

from ..backend import array_module


def swap_nt(a):
    """(N, T, K) <-> (T, N, K), as a contiguous copy (always a copy: with N = 1 or
    T = 1 the transpose is already contiguous, and callers update the result in place)."""
    return array_module(a).array(a.transpose(1, 0, 2), order="C")


def input_projection(x_tm, w, b=None):
    """x W^T (+ b) for all time steps at once: (T, N, D) -> (T, N, G H)."""
    t, n, d = x_tm.shape
    out = x_tm.reshape(t * n, d) @ w.T
    if b is not None:
        out += b
    return out.reshape(t, n, -1)


def sigmoid(a):
    """1 / (1 + e^{-a}) = (1 + tanh(a / 2)) / 2, which never overflows."""
    return (1 + array_module(a).tanh(a / 2)) / 2


def sigmoid_(a):
    """In place: a <- sigmoid(a), through one tanh call."""
    xp = array_module(a)
    a *= 0.5
    xp.tanh(a, out=a)
    a += 1
    a *= 0.5
    return a


def weight_grads(dgates, inputs):
    """dW = sum_t dgates[t]^T inputs[t] as one product over all (t, n) rows."""
    g = dgates.shape[-1]
    return dgates.reshape(-1, g).T @ inputs.reshape(-1, inputs.shape[-1])
