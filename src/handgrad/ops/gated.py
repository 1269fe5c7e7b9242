"""Gated RNN kernels: a single-gate cell that interpolates between memory and input.

    c[t] = sigmoid(x[t] W_c^T + h[t-1] W_h^T)
    h[t] = c[t] * h[t-1] + (1 - c[t]) * (x[t] W_x^T),     h[-1] = h0 (zeros by default)

Shapes: x (N, T, D), h0 (N, H), w_c and w_x (H, D), w_h (H, H), no biases -> hs (N, T, H).

Backward, with dh[t] = dhs[t] + (gradient from step t+1), a = x W_c^T + h[t-1] W_h^T
and p = x W_x^T:

    da = dh (h[t-1] - p) c (1 - c),   dp = dh (1 - c),   dh[t-1] = dh c + da W_h
    dx[t] = da W_c + dp W_x,   dW_c = sum_t da^T x[t],  dW_x = sum_t dp^T x[t],
    dW_h = sum_t da^T h[t-1]

Backward returns (dx (N, T, D), dh0, dw_c, dw_h, dw_x).
"""
from __future__ import annotations

from ..backend import array_module
from .sequence import input_projection, sigmoid, sigmoid_, swap_nt, weight_grads


def gated_rnn_step_forward(x, h_prev, w_c, w_h, w_x):
    """One step. Shapes: x (N, D), h_prev (N, H) -> h (N, H)."""
    c = sigmoid(x @ w_c.T + h_prev @ w_h.T)
    p = x @ w_x.T
    return c * h_prev + (1 - c) * p, (x, h_prev, w_c, w_h, w_x, c, p)


def gated_rnn_step_backward(dh, cache):
    """The module docstring's formulas for one step: (dx, dh_prev, dw_c, dw_h, dw_x)."""
    x, h_prev, w_c, w_h, w_x, c, p = cache
    da = dh * (h_prev - p) * c * (1 - c)
    dp = dh * (1 - c)
    return da @ w_c + dp @ w_x, dh * c + da @ w_h, da.T @ x, da.T @ h_prev, dp.T @ x


def gated_rnn_forward_naive(x, h0, w_c, w_h, w_x):
    """Reference: :func:`gated_rnn_step_forward` once per time step. Returns (hs (N, T, H), caches)."""
    xp = array_module(x)
    h, hs, caches = h0, [], []
    for t in range(x.shape[1]):
        h, cache = gated_rnn_step_forward(x[:, t], h, w_c, w_h, w_x)
        hs.append(h)
        caches.append(cache)
    return xp.stack(hs, axis=1), caches


def gated_rnn_backward_naive(dhs, caches):
    """Reference: :func:`gated_rnn_step_backward` from the last step to the first, carrying dh."""
    xp = array_module(dhs)
    dh = xp.zeros_like(dhs[:, 0])
    dxs, dparams = [], None
    for t in range(len(caches) - 1, -1, -1):
        dx, dh, *dp = gated_rnn_step_backward(dhs[:, t] + dh, caches[t])
        dxs.append(dx)
        dparams = dp if dparams is None else [a + b for a, b in zip(dparams, dp)]
    return (xp.stack(dxs[::-1], axis=1), dh, *dparams)


def gated_rnn_forward(x, h0, w_c, w_h, w_x):
    """Fused :func:`gated_rnn_forward_naive`: the products with W_c and W_x for all steps
    are one product with [W_c; W_x]; each step one product h[t-1] W_h^T."""
    xp = array_module(x)
    hid = w_h.shape[0]
    x_tm = swap_nt(x)
    steps, n = x_tm.shape[:2]
    w_cx = xp.concatenate([w_c, w_x])
    u = input_projection(x_tm, w_cx)
    cs = xp.empty((steps, n, hid), dtype=x.dtype)
    hs = xp.empty_like(cs)
    w_h_t = w_h.T
    h = h0
    for t in range(steps):
        xp.matmul(h, w_h_t, out=cs[t])
        cs[t] += u[t, :, :hid]
        sigmoid_(cs[t])
        # h = p + c (h_prev - p), with p = x W_x^T
        p = u[t, :, hid:]
        xp.subtract(h, p, out=hs[t])
        hs[t] *= cs[t]
        hs[t] += p
        h = hs[t]
    return swap_nt(hs), (x_tm, h0, w_cx, w_h, u, cs, hs)


def gated_rnn_backward(dhs, cache):
    """Fused :func:`gated_rnn_backward_naive`: one product da W_h per step; dx and the
    weight gradients one product each over all steps."""
    x_tm, h0, w_cx, w_h, u, cs, hs = cache
    xp = array_module(hs)
    steps, n, hid = hs.shape
    h_prev = xp.concatenate([h0[None], hs[:-1]])
    c_deriv = cs * (1 - cs)
    du = xp.empty_like(u)
    dh = xp.zeros((n, hid), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        dh += dhs[:, t]
        da, dp = du[t, :, :hid], du[t, :, hid:]
        xp.subtract(h_prev[t], u[t, :, hid:], out=da)
        da *= dh
        da *= c_deriv[t]
        xp.subtract(1, cs[t], out=dp)
        dp *= dh
        dh *= cs[t]
        dh += da @ w_h
    dx = (du.reshape(-1, 2 * hid) @ w_cx).reshape(x_tm.shape)
    dw_cx = weight_grads(du, x_tm)
    return swap_nt(dx), dh, dw_cx[:hid], weight_grads(du[:, :, :hid], h_prev), dw_cx[hid:]
