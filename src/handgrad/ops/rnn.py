"""Vanilla (Elman) RNN kernels: one step, the naive loop over steps, the fused sequence.

    h[t] = phi(x[t] W_ih^T + b_ih + h[t-1] W_hh^T + b_hh),   h[-1] = h0,   phi = tanh or relu

Shapes: x (N, T, D), h0 (N, H), w_ih (H, D), w_hh (H, H), b_ih and b_hh (H,)
-> hs (N, T, H), the state after every step. Weight layout is PyTorch's.

Backward, with a[t] the pre-activation and dh[t] = dhs[t] + (gradient from step t+1):

    da[t]    = dh[t] * phi'(a[t])          (1 - h[t]^2 for tanh, [h[t] > 0] for relu)
    dh[t-1]  = da[t] W_hh,   dx[t] = da[t] W_ih
    dW_ih = sum_t da[t]^T x[t],   dW_hh = sum_t da[t]^T h[t-1],   db_ih = db_hh = sum_t da[t]

Backward returns (dx (N, T, D), dh0 (N, H), dw_ih, dw_hh, db_ih, db_hh).
"""
from __future__ import annotations

from ..backend import array_module
from .sequence import input_projection, swap_nt, weight_grads


def _phi_slope(h, nonlinearity):
    """phi'(a) written through h = phi(a): 1 - h^2 for tanh, [h > 0] for relu."""
    return 1 - h * h if nonlinearity == "tanh" else (h > 0).astype(h.dtype)


def rnn_step_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """One step: h = phi(x W_ih^T + b_ih + h_prev W_hh^T + b_hh).

    Shapes: x (N, D), h_prev (N, H) -> h (N, H).
    """
    xp = array_module(x)
    a = x @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
    h = xp.tanh(a) if nonlinearity == "tanh" else xp.maximum(a, 0)
    return h, (x, h_prev, w_ih, w_hh, h, nonlinearity)


def rnn_step_backward(dh, cache):
    """da = dh * phi'(a);  dx = da W_ih,  dh_prev = da W_hh,  dW_ih = da^T x,
    dW_hh = da^T h_prev,  db_ih = db_hh = sum_n da.

    Returns (dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh).
    """
    x, h_prev, w_ih, w_hh, h, nonlinearity = cache
    da = dh * _phi_slope(h, nonlinearity)
    db = da.sum(axis=0)
    return da @ w_ih, da @ w_hh, da.T @ x, da.T @ h_prev, db, db.copy()


def rnn_forward_naive(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """Reference: :func:`rnn_step_forward` once per time step. Returns (hs (N, T, H), caches)."""
    xp = array_module(x)
    h, hs, caches = h0, [], []
    for t in range(x.shape[1]):
        h, cache = rnn_step_forward(x[:, t], h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
        hs.append(h)
        caches.append(cache)
    return xp.stack(hs, axis=1), caches


def rnn_backward_naive(dhs, caches):
    """Reference: :func:`rnn_step_backward` from the last step to the first, carrying dh."""
    xp = array_module(dhs)
    dh = xp.zeros_like(dhs[:, 0])
    dxs, dparams = [], None
    for t in range(len(caches) - 1, -1, -1):
        dx, dh, *dp = rnn_step_backward(dhs[:, t] + dh, caches[t])
        dxs.append(dx)
        dparams = dp if dparams is None else [a + b for a, b in zip(dparams, dp)]
    return (xp.stack(dxs[::-1], axis=1), dh, *dparams)


def rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """Fused :func:`rnn_forward_naive`: the input projection x W_ih^T + b for all steps is
    one product; each step adds h[t-1] W_hh^T and applies phi in place."""
    xp = array_module(x)
    x_tm = swap_nt(x)
    hs = input_projection(x_tm, w_ih, b_ih + b_hh)
    w_hh_t = w_hh.T
    h = h0
    for t in range(x_tm.shape[0]):
        hs[t] += h @ w_hh_t
        if nonlinearity == "tanh":
            xp.tanh(hs[t], out=hs[t])
        else:
            xp.maximum(hs[t], 0, out=hs[t])
        h = hs[t]
    return swap_nt(hs), (x_tm, h0, hs, w_ih, w_hh, nonlinearity)


def rnn_backward(dhs, cache):
    """Fused :func:`rnn_backward_naive`: one product da[t] W_hh per step; dx and the weight
    gradients as one product each over all steps."""
    x_tm, h0, hs, w_ih, w_hh, nonlinearity = cache
    xp = array_module(hs)
    deriv = _phi_slope(hs, nonlinearity)
    da = swap_nt(dhs)  # a copy, updated in place below
    dh = xp.zeros_like(h0)
    for t in range(hs.shape[0] - 1, -1, -1):
        da[t] += dh
        da[t] *= deriv[t]
        dh = da[t] @ w_hh
    h_prev = xp.concatenate([h0[None], hs[:-1]])
    dx = (da.reshape(-1, da.shape[-1]) @ w_ih).reshape(x_tm.shape)
    db = da.sum(axis=(0, 1))
    return swap_nt(dx), dh, weight_grads(da, x_tm), weight_grads(da, h_prev), db, db.copy()
