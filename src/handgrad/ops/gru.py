"""GRU kernels (Cho et al., 2014, PyTorch's formulation): one step, the naive loop, the fused sequence.

    u[t] = x[t] W_ih^T + b_ih,   v[t] = h[t-1] W_hh^T + b_hh       (N, 3H), blocks (r, z, n)
    r = sigmoid(u_r + v_r),  z = sigmoid(u_z + v_z),  n = tanh(u_n + r * v_n)
    h[t] = (1 - z) * n + z * h[t-1],   h[-1] = h0

Shapes: x (N, T, D), h0 (N, H), w_ih (3H, D), w_hh (3H, H), b_* (3H,) -> hs (N, T, H).

Backward, with dh[t] = dhs[t] + (gradient from step t+1):

    dn = dh (1 - z),   dz = dh (h[t-1] - n),   dh[t-1] = dh z + dv W_hh
    dn_pre = dn (1 - n^2)           -> du_n = dn_pre,  dv_n = dn_pre * r,  dr = dn_pre * v_n
    du_r = dv_r = dr r (1 - r),     du_z = dv_z = dz z (1 - z)
    dx[t] = du W_ih,  dW_ih = sum_t du^T x[t],  dW_hh = sum_t dv^T h[t-1],
    db_ih = sum_t du,  db_hh = sum_t dv

Backward returns (dx (N, T, D), dh0, dw_ih, dw_hh, db_ih, db_hh).
"""
from __future__ import annotations

from ..backend import array_module
from .sequence import input_projection, sigmoid, sigmoid_, swap_nt, weight_grads


def gru_step_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh):
    """One step. Shapes: x (N, D), h_prev (N, H) -> h (N, H)."""
    xp = array_module(x)
    hid = h_prev.shape[1]
    u = x @ w_ih.T + b_ih
    v = h_prev @ w_hh.T + b_hh
    r = sigmoid(u[:, :hid] + v[:, :hid])
    z = sigmoid(u[:, hid: 2 * hid] + v[:, hid: 2 * hid])
    n = xp.tanh(u[:, 2 * hid:] + r * v[:, 2 * hid:])
    h = (1 - z) * n + z * h_prev
    return h, (x, h_prev, w_ih, w_hh, v, r, z, n)


def gru_step_backward(dh, cache):
    """The module docstring's formulas for one step: (dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh)."""
    xp = array_module(dh)
    x, h_prev, w_ih, w_hh, v, r, z, n = cache
    hid = h_prev.shape[1]
    dn_pre = dh * (1 - z) * (1 - n * n)
    da_r = dn_pre * v[:, 2 * hid:] * r * (1 - r)
    da_z = dh * (h_prev - n) * z * (1 - z)
    du = xp.concatenate([da_r, da_z, dn_pre], axis=1)
    dv = xp.concatenate([da_r, da_z, dn_pre * r], axis=1)
    return (du @ w_ih, dh * z + dv @ w_hh, du.T @ x, dv.T @ h_prev, du.sum(axis=0), dv.sum(axis=0))


def gru_forward_naive(x, h0, w_ih, w_hh, b_ih, b_hh):
    """Reference: :func:`gru_step_forward` once per time step. Returns (hs (N, T, H), caches)."""
    xp = array_module(x)
    h, hs, caches = h0, [], []
    for t in range(x.shape[1]):
        h, cache = gru_step_forward(x[:, t], h, w_ih, w_hh, b_ih, b_hh)
        hs.append(h)
        caches.append(cache)
    return xp.stack(hs, axis=1), caches


def gru_backward_naive(dhs, caches):
    """Reference: :func:`gru_step_backward` from the last step to the first, carrying dh."""
    xp = array_module(dhs)
    dh = xp.zeros_like(dhs[:, 0])
    dxs, dparams = [], None
    for t in range(len(caches) - 1, -1, -1):
        dx, dh, *dp = gru_step_backward(dhs[:, t] + dh, caches[t])
        dxs.append(dx)
        dparams = dp if dparams is None else [a + b for a, b in zip(dparams, dp)]
    return (xp.stack(dxs[::-1], axis=1), dh, *dparams)


def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh):
    """Fused :func:`gru_forward_naive`: u for all steps is one product; each step one
    product h[t-1] W_hh^T for all three gates, the gates computed in place."""
    xp = array_module(x)
    hid = w_hh.shape[1]
    x_tm = swap_nt(x)
    steps, n = x_tm.shape[:2]
    u = input_projection(x_tm, w_ih, b_ih)
    vs = xp.empty_like(u)
    rz = xp.empty((steps, n, 2 * hid), dtype=x.dtype)
    ns = xp.empty((steps, n, hid), dtype=x.dtype)
    hs = xp.empty_like(ns)
    w_hh_t = w_hh.T
    h = h0
    for t in range(steps):
        v = vs[t]
        xp.matmul(h, w_hh_t, out=v)
        v += b_hh
        xp.add(u[t, :, : 2 * hid], v[:, : 2 * hid], out=rz[t])
        sigmoid_(rz[t])
        r, z = rz[t, :, :hid], rz[t, :, hid:]
        xp.multiply(r, v[:, 2 * hid:], out=ns[t])
        ns[t] += u[t, :, 2 * hid:]
        xp.tanh(ns[t], out=ns[t])
        # h = n + z (h_prev - n)
        xp.subtract(h, ns[t], out=hs[t])
        hs[t] *= z
        hs[t] += ns[t]
        h = hs[t]
    return swap_nt(hs), (x_tm, h0, w_ih, w_hh, vs, rz, ns, hs)


def gru_backward(dhs, cache):
    """Fused :func:`gru_backward_naive`: the factors that do not depend on the incoming
    gradient computed for all steps at once; one product dv W_hh per step; dx and the
    weight gradients one product each over all steps."""
    x_tm, h0, w_ih, w_hh, vs, rz, ns, hs = cache
    xp = array_module(hs)
    steps, n, hid = hs.shape
    h_prev = xp.concatenate([h0[None], hs[:-1]])
    rz_deriv = rz * (1 - rz)
    n_deriv = 1 - ns * ns
    one_minus_z = 1 - rz[:, :, hid:]
    du = xp.empty_like(vs)
    dv = xp.empty_like(vs)
    dh = xp.zeros((n, hid), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        dh += dhs[:, t]
        r, z = rz[t, :, :hid], rz[t, :, hid:]
        du_t, dv_t = du[t], dv[t]
        dn_pre = du_t[:, 2 * hid:]
        xp.multiply(dh, one_minus_z[t], out=dn_pre)
        dn_pre *= n_deriv[t]
        xp.multiply(dn_pre, r, out=dv_t[:, 2 * hid:])
        xp.multiply(dn_pre, vs[t, :, 2 * hid:], out=du_t[:, :hid])
        xp.subtract(h_prev[t], ns[t], out=du_t[:, hid: 2 * hid])
        du_t[:, hid: 2 * hid] *= dh
        du_t[:, : 2 * hid] *= rz_deriv[t]
        dv_t[:, : 2 * hid] = du_t[:, : 2 * hid]
        dh *= z
        dh += dv_t @ w_hh
    dx = (du.reshape(-1, 3 * hid) @ w_ih).reshape(x_tm.shape)
    return (swap_nt(dx), dh, weight_grads(du, x_tm), weight_grads(dv, h_prev),
            du.sum(axis=(0, 1)), dv.sum(axis=(0, 1)))
