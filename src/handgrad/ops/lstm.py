"""LSTM kernels (Hochreiter & Schmidhuber, 1997): one step, the naive loop, the fused sequence.

    a[t] = x[t] W_ih^T + b_ih + h[t-1] W_hh^T + b_hh        (N, 4H), blocks (i, f, g, o)
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);   g = tanh(a_g)
    c[t] = f * c[t-1] + i * g
    h[t] = o * tanh(c[t]),         h[-1] = h0,  c[-1] = c0

Shapes: x (N, T, D), h0 and c0 (N, H), w_ih (4H, D), w_hh (4H, H), b_* (4H,), in
PyTorch's layout. The state is the pair (h, c), so the output is the state after
every step stacked, out (2, N, T, H): out[0] = h, out[1] = c.

Backward, with dh[t] = dout[0, :, t] + (from step t+1) and dc[t] = dout[1, :, t] + (from step t+1):

    dc[t]   += dh[t] * o * (1 - tanh(c[t])^2)
    do = dh[t] * tanh(c[t]),  di = dc[t] * g,  dg = dc[t] * i,  df = dc[t] * c[t-1]
    dc[t-1]  = dc[t] * f
    da = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)]          (N, 4H)
    dh[t-1]  = da W_hh,   dx[t] = da W_ih
    dW_ih = sum_t da[t]^T x[t],  dW_hh = sum_t da[t]^T h[t-1],  db_ih = db_hh = sum_t da[t]

Backward returns (dx (N, T, D), dh0, dc0, dw_ih, dw_hh, db_ih, db_hh).

When x is an embedding, x[t] = E[ids[:, t]] = onehot(ids[:, t]) E with E (V, D), the
input term is x[t] W_ih^T = onehot(ids[:, t]) (W_ih E^T)^T: the same LSTM on one-hot
inputs with input weights W' = W_ih E^T (4H, V). Its weight gradient
dW' = sum_t da[t]^T onehot(ids[:, t]) (the scatter-add of da over token ids) gives

    dW_ih = dW' E,   dE = dW'^T W_ih

so no dx is formed (see :func:`lstm_embedding_forward`).
"""
from __future__ import annotations

from ..backend import array_module
from .sequence import sigmoid, swap_nt


def lstm_step_forward(x, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh):
    """One step. Shapes: x (N, D), h_prev and c_prev (N, H) -> out (2, N, H) = [h, c]."""
    xp = array_module(x)
    hid = h_prev.shape[1]
    a = x @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
    i, f, o = sigmoid(a[:, :hid]), sigmoid(a[:, hid: 2 * hid]), sigmoid(a[:, 3 * hid:])
    g = xp.tanh(a[:, 2 * hid: 3 * hid])
    c = f * c_prev + i * g
    h = o * xp.tanh(c)
    return xp.stack([h, c]), (x, h_prev, c_prev, w_ih, w_hh, i, f, g, o, c)


def lstm_step_backward(dout, cache):
    """dout (2, N, H) = [dh, dc] -> (dx, dh_prev, dc_prev, dw_ih, dw_hh, db_ih, db_hh);
    the formulas are the module docstring's for one step."""
    xp = array_module(dout)
    x, h_prev, c_prev, w_ih, w_hh, i, f, g, o, c = cache
    dh, dc = dout
    tc = xp.tanh(c)
    dc = dc + dh * o * (1 - tc * tc)
    di, df, dg, do = dc * g, dc * c_prev, dc * i, dh * tc
    da = xp.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=1)
    db = da.sum(axis=0)
    return da @ w_ih, da @ w_hh, dc * f, da.T @ x, da.T @ h_prev, db, db.copy()


def lstm_forward_naive(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """Reference: :func:`lstm_step_forward` once per time step. Returns (out (2, N, T, H), caches)."""
    xp = array_module(x)
    h, c, outs, caches = h0, c0, [], []
    for t in range(x.shape[1]):
        (h, c), cache = lstm_step_forward(x[:, t], h, c, w_ih, w_hh, b_ih, b_hh)
        outs.append(xp.stack([h, c]))
        caches.append(cache)
    return xp.stack(outs, axis=2), caches


def lstm_backward_naive(dout, caches):
    """Reference: :func:`lstm_step_backward` from the last step to the first, carrying (dh, dc)."""
    xp = array_module(dout)
    dh, dc = xp.zeros_like(dout[:, :, 0])
    dxs, dparams = [], None
    for t in range(len(caches) - 1, -1, -1):
        dx, dh, dc, *dp = lstm_step_backward(xp.stack([dout[0, :, t] + dh, dout[1, :, t] + dc]), caches[t])
        dxs.append(dx)
        dparams = dp if dparams is None else [a + b for a, b in zip(dparams, dp)]
    return (xp.stack(dxs[::-1], axis=1), dh, dc, *dparams)


def _internal_order(xp, hid):
    """Row order taking PyTorch's gate blocks (i, f, g, o) to (i, f, o, g): the three
    sigmoid gates first, so that one slice covers them. It swaps two blocks, so it
    is its own inverse: indexing with it again takes (i, f, o, g) back."""
    return xp.concatenate([xp.arange(0, 2 * hid), xp.arange(3 * hid, 4 * hid), xp.arange(2 * hid, 3 * hid)])


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, keep=True):
    """Fused :func:`lstm_forward_naive`.

    Each step is one product a[t] = [x[t], 1, h[t-1]] W^T with W = [W_ih, b, W_hh]
    (the bias rides along as an input column of ones), written gate-major (4, N, H)
    so that every gate is one contiguous block. The rows [x[t], 1, h[t-1]] of all
    steps live in one array, which the backward pass reuses for all weight
    gradients in one product. The gates are reordered to (i, f, o, g) and the
    sigmoid rows of W halved, so one tanh covers the whole block, after which the
    first three gates become sigmoids by sigmoid(a) = (1 + tanh(a / 2)) / 2.

    It computes in the weights' dtype (:class:`~handgrad.nn.LSTM` casts x to it).
    ``keep=False`` (no backward to come, e.g. under ``no_grad``): every step reuses
    one buffer for its gates and tanh(c) instead of keeping them all, and the cache
    is None. For a batch of 500 sequences of 50 steps the kept gates alone are 51 MB,
    fresh pages that the kernel must fault in on every call.
    """
    return _fused_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, keep=keep)


def _fused_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, ids=None, keep=True):
    """:func:`lstm_forward`. With ``ids`` (N, T), x is onehot(ids): each step's product
    then skips the one-hot columns of its rows and adds the rows of W^T they would
    pick instead, a[t] = W_ih^T[ids[:, t]] + [1, h[t-1]] [b, W_hh]^T, the lookup made
    for all steps at once into the kept gates (with ``keep=False``, step by step into
    the one slot). Only backward reads the one-hot columns, so with ``keep=False`` x
    may be None."""
    xp = array_module(w_hh)
    (n, steps), d = (ids.shape if x is None else x.shape[:2]), w_ih.shape[1]
    hid = w_hh.shape[1]
    order = _internal_order(xp, hid)
    w = xp.concatenate([w_ih, (b_ih + b_hh)[:, None], w_hh], axis=1)[order]
    half = xp.ones((4 * hid, 1), dtype=w.dtype)
    half[: 3 * hid] = 0.5
    # (4, D + 1 + H, H): one (D + 1 + H, H) block per gate
    w_gates = xp.ascontiguousarray((w * half).reshape(4, hid, -1).transpose(0, 2, 1))
    # rows[t] = [x[t], 1, h[t-1]]; the last slot holds only the final h (its x part is unused)
    dtype = w_hh.dtype
    rows = xp.empty((steps + 1, n, d + 1 + hid), dtype=dtype)
    if x is not None:
        rows[:steps, :, :d] = x.transpose(1, 0, 2)
    rows[:, :, d] = 1
    rows[0, :, d + 1:] = h0
    hs = rows[:, :, d + 1:]
    # slot 0 holds the initial cell state, slot t + 1 the state after step t
    cs = xp.empty((steps + 1, n, hid), dtype=dtype)
    cs[0] = c0
    kept = steps if keep else 1  # without a backward, one slot serves every step
    tanh_cs = xp.empty((kept, n, hid), dtype=dtype)
    ig = xp.empty((n, hid), dtype=dtype)
    ids_tm = None if ids is None else ids.T
    if ids is not None and keep:
        # every step's input term at once, acts[t, k] = W_k^T[ids[:, t]]: one lookup instead of T
        acts = w_gates[xp.arange(4)[:, None], ids_tm[:, None, :]]
        hw = xp.empty((4, n, hid), dtype=dtype)
    else:
        acts = xp.empty((kept, 4, n, hid), dtype=dtype)
    for t in range(steps):
        slot = t if keep else 0
        a, tc = acts[slot], tanh_cs[slot]
        if ids is None:
            xp.matmul(rows[t], w_gates, out=a)
        elif keep:
            xp.matmul(rows[t, :, d:], w_gates[:, d:], out=hw)
            a += hw
        else:
            xp.matmul(rows[t, :, d:], w_gates[:, d:], out=a)
            a += w_gates[:, ids_tm[t]]
        xp.tanh(a, out=a)
        a[:3] += 1
        a[:3] *= 0.5
        i, f, o, g = a
        xp.multiply(f, cs[t], out=cs[t + 1])
        xp.multiply(i, g, out=ig)
        cs[t + 1] += ig
        xp.tanh(cs[t + 1], out=tc)
        xp.multiply(o, tc, out=hs[t + 1])
    out = xp.empty((2, n, steps, hid), dtype=dtype)
    out[0] = hs[1:].transpose(1, 0, 2)
    out[1] = cs[1:].transpose(1, 0, 2)
    return out, ((rows, w, order, acts, cs, tanh_cs) if keep else None)


def lstm_backward(dout, cache, input_grad=True):
    """Fused :func:`lstm_backward_naive`: one product per step for dh[t-1], gate gradients
    da[k, t] (N, H) of all steps kept, and one product of them with the forward rows
    [x[t], 1, h[t-1]] of all steps for every weight and bias gradient. dc[t] takes
    dout[1, :, t] only at steps where it is non-zero (with h alone feeding the next
    layer, no step's or only the last one's). The weight gradients come back in
    PyTorch's (i, f, g, o) layout. With ``input_grad=False``, dx is None (skipping its product).

    Layout: for small batches (N H^2 <= 2^19) da is gate-major (4, T, N, H), every
    step writes contiguous blocks, and dh[t-1] = sum_k da[k, t] W_hh,k is a batched
    product of four (N, H) x (H, H) blocks and a sum: at N = 16, H = 128 (OpenBLAS,
    one core) these take 19 + 1.5 us against 25 us for one (N, 4H) x (4H, H)
    product. From N = 64 on the one product is as fast or faster (451 against
    497 + 35 us at N = 500), so larger batches keep da as (T, N, 4H).
    """
    rows, w, order, acts, cs, tanh_cs = cache
    xp = array_module(rows)
    steps, n, hid = tanh_cs.shape
    width = rows.shape[2]
    d = width - hid - 1
    dtype = rows.dtype
    per_gate = n * hid * hid <= 1 << 19
    if per_gate:
        da = xp.empty((4, steps, n, hid), dtype=dtype)
        w_hh = xp.ascontiguousarray(w[:, d + 1:]).reshape(4, hid, hid)
        dh_gates = xp.empty((4, n, hid), dtype=dtype)
    else:
        da_rows = xp.empty((steps, n, 4 * hid), dtype=dtype)
        da = da_rows.reshape(steps, n, 4, hid).transpose(2, 0, 1, 3)  # da[k, t], stored as (T, N, 4H)
        w_hh = xp.ascontiguousarray(w[:, d + 1:])
    dh = xp.zeros((n, hid), dtype=dtype)
    dc = xp.zeros((n, hid), dtype=dtype)
    tmp = xp.empty((n, hid), dtype=dtype)
    slopes = xp.empty((4, n, hid), dtype=dtype)
    d_out = xp.empty_like(slopes)
    cell_grad = dout[1].any(axis=(0, 2)).tolist()
    di, df, do, dg = d_out
    sig_slopes, g_slope = slopes[:3], slopes[3]
    dh_out, dc_out = dout[0].transpose(1, 0, 2), dout[1].transpose(1, 0, 2)
    for t in range(steps - 1, -1, -1):
        dh += dh_out[t]
        if cell_grad[t]:
            dc += dc_out[t]
        a, tc = acts[t], tanh_cs[t]
        i, f, o, g = a
        # dc += dh o (1 - tanh(c)^2)
        xp.multiply(tc, tc, out=tmp)
        xp.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        # gradients of the gate outputs (di, df, do, dg)
        xp.multiply(dc, g, out=di)
        xp.multiply(dc, cs[t], out=df)
        xp.multiply(dh, tc, out=do)
        xp.multiply(dc, i, out=dg)
        dc *= f
        # s (1 - s) for the sigmoid gates, 1 - g^2 for g
        xp.subtract(1, a, out=slopes)
        sig_slopes *= a[:3]
        xp.add(1, g, out=tmp)
        g_slope *= tmp
        da_t = da[:, t]
        xp.multiply(d_out, slopes, out=da_t)
        if per_gate:
            xp.matmul(da_t, w_hh, out=dh_gates)
            dh_gates.sum(axis=0, out=dh)
        else:
            xp.matmul(da_rows[t], w_hh, out=dh)
    inputs = rows[:-1].reshape(-1, width)
    if per_gate:
        # dW_k = sum_t da[k, t]^T rows[t], (4, H, D + 1 + H) stacked to (4H, D + 1 + H)
        flat = da.reshape(4, steps * n, hid)
        dw = xp.matmul(flat.transpose(0, 2, 1), inputs).reshape(4 * hid, width)[order]  # back to (i, f, g, o)
    else:
        flat = da_rows.reshape(-1, 4 * hid)
        dw = (flat.T @ inputs)[order]  # back to (i, f, g, o)
    dx = None
    if input_grad:
        if per_gate:
            w_in = w[:, :d].reshape(4, hid, d)
            dx = flat[0] @ w_in[0]
            for k in range(1, 4):
                dx += flat[k] @ w_in[k]
        else:
            dx = flat @ w[:, :d]
        dx = swap_nt(dx.reshape(steps, n, d))
    db = dw[:, d]
    return dx, dh, dc, dw[:, :d], dw[:, d + 1:], db, db.copy()


def lstm_embedding_forward(ids, table, h0, c0, w_ih, w_hh, b_ih, b_hh, keep=True):
    """:func:`lstm_forward` on x = table[ids] without forming x: the LSTM on the one-hot
    rows of ``ids`` with input weights W' = W_ih E^T (see the module docstring). Each
    step's input term is a lookup of rows of W' instead of a product; backward's
    one product for the weight gradients has V instead of D input columns and
    there is no dx product (T N x 4H x D), so the pair is cheaper than the
    embedding followed by :func:`lstm_forward` while V is at most about 2 D.

    Shapes: ids (N, T) integers in [0, V), table E (V, D), the rest as in
    :func:`lstm_forward`. Returns (out (2, N, T, H), cache); with ``keep=False``
    (no backward to come) the one-hot rows are never formed and the cache is None.
    """
    xp = array_module(table)
    onehot = (ids[..., None] == xp.arange(table.shape[0])).astype(table.dtype) if keep else None
    out, cache = _fused_forward(onehot, h0, c0, w_ih @ table.T, w_hh, b_ih, b_hh, ids, keep)
    return out, ((cache, table, w_ih) if keep else None)


def lstm_embedding_backward(dout, cache):
    """Backward of :func:`lstm_embedding_forward`: (dtable (V, D), dh0, dc0, dw_ih, dw_hh,
    db_ih, db_hh), with dtable = dW'^T W_ih and dW_ih = dW' E from the one-hot
    LSTM's input weight gradient dW' (4H, V)."""
    cache, table, w_ih = cache
    _, dh0, dc0, dw_onehot, dw_hh, db_ih, db_hh = lstm_backward(dout, cache, input_grad=False)
    return dw_onehot.T @ w_ih, dh0, dc0, dw_onehot @ table, dw_hh, db_ih, db_hh
