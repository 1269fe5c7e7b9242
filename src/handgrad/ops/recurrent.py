"""Recurrent kernels over whole sequences: vanilla RNN, LSTM and GRU (one layer each).

Every kernel takes a batch-first sequence x (N, T, D) and an initial state, and
returns all hidden states hs (N, T, H) together with the final state, so that a
long sequence can be processed in chunks with the state carried across (truncated
back-propagation through time: the caller detaches the carried state, which for
plain arrays simply means not calling backward past the chunk boundary).

The backward passes take the gradient of the loss with respect to both outputs:
``dhs`` (N, T, H) for the hidden-state sequence and ``dh_T`` (N, H) (and ``dc_T``
for the LSTM) for the final state. Either may be ``None``, meaning zero. They
return the gradients of the input, of the initial state and of every weight.

Speed: the input projection x W_ih^T + b for all time steps is one matrix
product; each step does one fused product h W_hh^T for all gates; backward does
one fused product per step for dh and the weight gradients as one product over
all steps at the end, with the per-step gate gradients stacked into (T N, G H).
Internally arrays are time-major (T, N, .) so that every step works on
contiguous memory. The LSTM instead folds its input projection into the
per-step product, [x, 1, h] W^T, which leaves nothing big to allocate or add per
step (see lstm_forward).

Weight layouts are PyTorch's: w_ih (G H, D), w_hh (G H, H), b_ih and b_hh (G H,)
with the gates stacked in the order (i, f, g, o) for the LSTM and (r, z, n) for
the GRU (G = 4 and 3; G = 1 for the RNN).

Sigmoids are computed as s(a) = (1 + tanh(a / 2)) / 2, which never overflows and
lets one tanh call cover a whole block of gates.
"""
from __future__ import annotations

from ..backend import array_module


def _time_major(x):
    """(N, T, D) -> contiguous (T, N, D)."""
    return array_module(x).ascontiguousarray(x.transpose(1, 0, 2))


def _batch_first(a):
    """Contiguous (T, N, K) -> (N, T, K), as a contiguous copy."""
    return array_module(a).ascontiguousarray(a.transpose(1, 0, 2))


def _input_projection(x_tm, w, b=None):
    """x W^T (+ b) for all time steps at once: (T, N, D) -> (T, N, G H)."""
    t, n, d = x_tm.shape
    out = x_tm.reshape(t * n, d) @ w.T
    if b is not None:
        out += b
    return out.reshape(t, n, -1)


def _sigmoid_(a):
    """In place: a <- 1 / (1 + e^{-a}) = (1 + tanh(a / 2)) / 2."""
    xp = array_module(a)
    a *= 0.5
    xp.tanh(a, out=a)
    a += 1
    a *= 0.5
    return a


def _weight_grads(dgates, inputs):
    """dW = sum_t dgates[t]^T inputs[t] as one product over all (t, n) rows."""
    g = dgates.shape[-1]
    return dgates.reshape(-1, g).T @ inputs.reshape(-1, inputs.shape[-1])


# -- vanilla RNN ---------------------------------------------------------------

def rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """Elman RNN over a sequence.

        h[t] = phi(x[t] W_ih^T + b_ih + h[t-1] W_hh^T + b_hh),   h[-1] = h0,
        phi = tanh or relu.

    Shapes: x (N, T, D), h0 (N, H), w_ih (H, D), w_hh (H, H), b_* (H,).
    Returns ``((hs, h_T), cache)`` with hs (N, T, H) and h_T = hs[:, -1] (N, H).
    """
    xp = array_module(x)
    x_tm = _time_major(x)
    hs = _input_projection(x_tm, w_ih, b_ih + b_hh)
    w_hh_t = w_hh.T
    h = h0
    for t in range(x_tm.shape[0]):
        hs[t] += h @ w_hh_t
        if nonlinearity == "tanh":
            xp.tanh(hs[t], out=hs[t])
        else:
            xp.maximum(hs[t], 0, out=hs[t])
        h = hs[t]
    return (_batch_first(hs), h.copy()), (x_tm, h0, hs, w_ih, w_hh, nonlinearity)


def rnn_backward(dhs, dh_T, cache):
    """Back-propagation through time for :func:`rnn_forward`.

    With a[t] the pre-activation and dh[t] = dhs[t] + (gradient from step t+1):

        da[t]   = dh[t] * phi'(a[t])      (1 - h[t]^2 for tanh, [h[t] > 0] for relu)
        dh[t-1] += da[t] W_hh
        dx[t]   = da[t] W_ih
        dW_ih = sum_t da[t]^T x[t],  dW_hh = sum_t da[t]^T h[t-1],  db_ih = db_hh = sum_t da[t]

    Returns (dx (N, T, D), dh0 (N, H), dw_ih, dw_hh, db_ih, db_hh).
    """
    x_tm, h0, hs, w_ih, w_hh, nonlinearity = cache
    xp = array_module(hs)
    steps = hs.shape[0]
    if nonlinearity == "tanh":
        deriv = 1 - hs * hs
    else:
        deriv = (hs > 0).astype(hs.dtype)
    # a copy: da is updated in place, and _time_major(dhs) may be a view of dhs (T = 1 or N = 1)
    da = xp.array(dhs.transpose(1, 0, 2), order="C") if dhs is not None else xp.zeros_like(hs)
    dh = dh_T if dh_T is not None else xp.zeros_like(h0)
    for t in range(steps - 1, -1, -1):
        da[t] += dh
        da[t] *= deriv[t]
        dh = da[t] @ w_hh
    h_prev = xp.concatenate([h0[None], hs[:-1]])
    dx = (da.reshape(-1, da.shape[-1]) @ w_ih).reshape(x_tm.shape)
    db = da.sum(axis=(0, 1))
    return _batch_first(dx), dh, _weight_grads(da, x_tm), _weight_grads(da, h_prev), db, db.copy()


# -- LSTM ----------------------------------------------------------------------

def _lstm_internal_order(xp, hid):
    """Row order taking PyTorch's gate blocks (i, f, g, o) to (i, f, o, g): the three
    sigmoid gates first, so that one slice covers them."""
    return xp.concatenate([xp.arange(0, 2 * hid), xp.arange(3 * hid, 4 * hid), xp.arange(2 * hid, 3 * hid)])


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """Long short-term memory over a sequence (Hochreiter & Schmidhuber, 1997).

        a[t] = x[t] W_ih^T + b_ih + h[t-1] W_hh^T + b_hh        (N, 4H), blocks (i, f, g, o)
        i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);   g = tanh(a_g)
        c[t] = f * c[t-1] + i * g
        h[t] = o * tanh(c[t])
        h[-1] = h0, c[-1] = c0

    Shapes: x (N, T, D), h0 and c0 (N, H), w_ih (4H, D), w_hh (4H, H), b_* (4H,).
    Returns ``((hs, h_T, c_T), cache)`` with hs (N, T, H).

    Each step is one product a[t] = [x[t], 1, h[t-1]] W^T with W = [W_ih, b, W_hh]
    (the bias rides along as an input column of ones), written gate-major (4, N, H)
    so that every gate is one contiguous block. The rows [x[t], 1, h[t-1]] of all
    steps live in one array, which the backward pass reuses for all weight
    gradients in one product. The gates are reordered to (i, f, o, g) and the
    sigmoid rows of W halved, so one tanh covers the whole block, after which the
    first three gates become sigmoids by sigmoid(a) = (1 + tanh(a / 2)) / 2.
    """
    xp = array_module(x)
    n, steps, d = x.shape
    hid = w_hh.shape[1]
    order = _lstm_internal_order(xp, hid)
    w = xp.concatenate([w_ih, (b_ih + b_hh)[:, None], w_hh], axis=1)[order]
    half = xp.ones((4 * hid, 1), dtype=w.dtype)
    half[: 3 * hid] = 0.5
    # (4, D + 1 + H, H): one (D + 1 + H, H) block per gate
    w_gates = xp.ascontiguousarray((w * half).reshape(4, hid, -1).transpose(0, 2, 1))
    # rows[t] = [x[t], 1, h[t-1]]; the last slot holds only the final h (its x part is unused)
    rows = xp.empty((steps + 1, n, d + 1 + hid), dtype=x.dtype)
    rows[:steps, :, :d] = x.transpose(1, 0, 2)
    rows[:, :, d] = 1
    rows[0, :, d + 1:] = h0
    hs = rows[:, :, d + 1:]
    # slot 0 holds the initial cell state, slot t + 1 the state after step t
    cs = xp.empty((steps + 1, n, hid), dtype=x.dtype)
    cs[0] = c0
    tanh_cs = xp.empty((steps, n, hid), dtype=x.dtype)
    acts = xp.empty((steps, 4, n, hid), dtype=x.dtype)
    ig = xp.empty((n, hid), dtype=x.dtype)
    for t in range(steps):
        a = acts[t]
        xp.matmul(rows[t], w_gates, out=a)
        xp.tanh(a, out=a)
        a[:3] += 1
        a[:3] *= 0.5
        i, f, o, g = a
        xp.multiply(f, cs[t], out=cs[t + 1])
        xp.multiply(i, g, out=ig)
        cs[t + 1] += ig
        xp.tanh(cs[t + 1], out=tanh_cs[t])
        xp.multiply(o, tanh_cs[t], out=hs[t + 1])
    cache = (rows, w, order, acts, cs, tanh_cs)
    return (_batch_first(hs[1:]), hs[-1].copy(), cs[-1].copy()), cache


def lstm_backward(dhs, dh_T, dc_T, cache):
    """Back-propagation through time for :func:`lstm_forward`.

    With dh[t] = dhs[t] + (gradient from step t+1) and dc[t] carried back:

        dc[t]   += dh[t] * o * (1 - tanh(c[t])^2)
        do = dh[t] * tanh(c[t]),  di = dc[t] * g,  dg = dc[t] * i,  df = dc[t] * c[t-1]
        dc[t-1]  = dc[t] * f
        da = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)]          (N, 4H)
        dh[t-1] += da W_hh                                          (one product per step)
        dx[t]    = da W_ih
        dW_ih = sum_t da[t]^T x[t],  dW_hh = sum_t da[t]^T h[t-1],  db_ih = db_hh = sum_t da[t]

    The weight and bias gradients are one product of the stacked (T N, 4H) gate
    gradients with the forward rows [x[t], 1, h[t-1]]. Returns (dx (N, T, D), dh0,
    dc0, dw_ih, dw_hh, db_ih, db_hh), the weight gradients in PyTorch's (i, f, g, o)
    layout.
    """
    rows, w, order, acts, cs, tanh_cs = cache
    xp = array_module(rows)
    steps, n, hid = tanh_cs.shape
    d = rows.shape[2] - hid - 1
    w_hh = xp.ascontiguousarray(w[:, d + 1:])
    da = xp.empty((steps, n, 4 * hid), dtype=rows.dtype)
    dh = dh_T.copy() if dh_T is not None else xp.zeros((n, hid), dtype=rows.dtype)
    dc = dc_T.copy() if dc_T is not None else xp.zeros((n, hid), dtype=rows.dtype)
    tmp = xp.empty((n, hid), dtype=rows.dtype)
    slopes = xp.empty((4, n, hid), dtype=rows.dtype)
    d_out = xp.empty_like(slopes)
    for t in range(steps - 1, -1, -1):
        if dhs is not None:
            dh += dhs[:, t]
        a, tc = acts[t], tanh_cs[t]
        i, f, o, g = a
        # dc += dh o (1 - tanh(c)^2)
        xp.multiply(tc, tc, out=tmp)
        xp.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        # gradients of the gate outputs (di, df, do, dg), gate-major and contiguous
        xp.multiply(dc, g, out=d_out[0])
        xp.multiply(dc, cs[t], out=d_out[1])
        xp.multiply(dh, tc, out=d_out[2])
        xp.multiply(dc, i, out=d_out[3])
        dc *= f
        # s (1 - s) for the sigmoid gates, 1 - g^2 for g
        xp.subtract(1, a, out=slopes)
        slopes[:3] *= a[:3]
        xp.add(1, g, out=tmp)
        slopes[3] *= tmp
        # da[t] (N, 4H) seen as (4, N, H), written once
        xp.multiply(d_out, slopes, out=da[t].reshape(n, 4, hid).transpose(1, 0, 2))
        xp.matmul(da[t], w_hh, out=dh)
    flat = da.reshape(-1, 4 * hid)
    inverse = xp.argsort(order)
    dw = _weight_grads(da, rows[:-1])[inverse]
    dx = (flat @ w[:, :d]).reshape(steps, n, d)
    db = dw[:, d]
    return _batch_first(dx), dh, dc, dw[:, :d], dw[:, d + 1:], db, db.copy()


# -- GRU -----------------------------------------------------------------------

def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh):
    """Gated recurrent unit over a sequence (Cho et al., 2014), PyTorch's formulation.

        u[t] = x[t] W_ih^T + b_ih,   v[t] = h[t-1] W_hh^T + b_hh       (N, 3H), blocks (r, z, n)
        r = sigmoid(u_r + v_r),  z = sigmoid(u_z + v_z),  n = tanh(u_n + r * v_n)
        h[t] = (1 - z) * n + z * h[t-1],   h[-1] = h0

    Shapes: x (N, T, D), h0 (N, H), w_ih (3H, D), w_hh (3H, H), b_* (3H,).
    Returns ``((hs, h_T), cache)`` with hs (N, T, H).
    """
    xp = array_module(x)
    hid = w_hh.shape[1]
    x_tm = _time_major(x)
    steps, n = x_tm.shape[:2]
    u = _input_projection(x_tm, w_ih, b_ih)
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
        _sigmoid_(rz[t])
        r, z = rz[t, :, :hid], rz[t, :, hid:]
        xp.multiply(r, v[:, 2 * hid:], out=ns[t])
        ns[t] += u[t, :, 2 * hid:]
        xp.tanh(ns[t], out=ns[t])
        # h = n + z (h_prev - n)
        xp.subtract(h, ns[t], out=hs[t])
        hs[t] *= z
        hs[t] += ns[t]
        h = hs[t]
    return (_batch_first(hs), h.copy()), (x_tm, h0, w_ih, w_hh, vs, rz, ns, hs)


def gru_backward(dhs, dh_T, cache):
    """Back-propagation through time for :func:`gru_forward`.

    With dh[t] = dhs[t] + (gradient from step t+1):

        dn = dh (1 - z),   dz = dh (h[t-1] - n),   dh[t-1] = dh z + dv W_hh
        dn_pre = dn (1 - n^2)           -> du_n = dn_pre,  dv_n = dn_pre * r,  dr = dn_pre * v_n
        du_r = dv_r = dr r (1 - r),     du_z = dv_z = dz z (1 - z)
        dx[t] = du W_ih,  dW_ih = sum_t du^T x[t],  dW_hh = sum_t dv^T h[t-1],
        db_ih = sum_t du,  db_hh = sum_t dv

    Returns (dx (N, T, D), dh0, dw_ih, dw_hh, db_ih, db_hh).
    """
    x_tm, h0, w_ih, w_hh, vs, rz, ns, hs = cache
    xp = array_module(hs)
    steps, n, hid = hs.shape
    h_prev = xp.concatenate([h0[None], hs[:-1]])
    # factors that do not depend on the incoming gradient, for all steps at once
    rz_deriv = rz * (1 - rz)
    n_deriv = 1 - ns * ns
    one_minus_z = 1 - rz[:, :, hid:]
    du = xp.empty_like(vs)
    dv = xp.empty_like(vs)
    dh = dh_T.copy() if dh_T is not None else xp.zeros((n, hid), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        if dhs is not None:
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
    return (_batch_first(dx), dh, _weight_grads(du, x_tm), _weight_grads(dv, h_prev),
            du.sum(axis=(0, 1)), dv.sum(axis=(0, 1)))


# -- gated RNN -----------------------------------------------------------------

def gated_rnn_forward(x, h0, w_c, w_h, w_x):
    """A single-gate recurrent cell that interpolates between memory and input.

        c[t] = sigmoid(x[t] W_c^T + h[t-1] W_h^T)
        h[t] = c[t] * h[t-1] + (1 - c[t]) * (x[t] W_x^T),     h[-1] = h0 (zeros by default)

    Shapes: x (N, T, D), h0 (N, H), w_c and w_x (H, D), w_h (H, H); no biases.
    The products with W_c and W_x for all steps are one product with [W_c; W_x].
    Returns ``((hs, h_T), cache)`` with hs (N, T, H).
    """
    xp = array_module(x)
    hid = w_h.shape[0]
    x_tm = _time_major(x)
    steps, n = x_tm.shape[:2]
    w_cx = xp.concatenate([w_c, w_x])
    u = _input_projection(x_tm, w_cx)
    cs = xp.empty((steps, n, hid), dtype=x.dtype)
    hs = xp.empty_like(cs)
    w_h_t = w_h.T
    h = h0
    for t in range(steps):
        xp.matmul(h, w_h_t, out=cs[t])
        cs[t] += u[t, :, :hid]
        _sigmoid_(cs[t])
        # h = p + c (h_prev - p), with p = x W_x^T
        p = u[t, :, hid:]
        xp.subtract(h, p, out=hs[t])
        hs[t] *= cs[t]
        hs[t] += p
        h = hs[t]
    return (_batch_first(hs), h.copy()), (x_tm, h0, w_cx, w_h, u, cs, hs)


def gated_rnn_backward(dhs, dh_T, cache):
    """Back-propagation through time for :func:`gated_rnn_forward`.

    With dh[t] = dhs[t] + (gradient from step t+1), a = x W_c^T + h[t-1] W_h^T and
    p = x W_x^T:

        da = dh (h[t-1] - p) c (1 - c),   dp = dh (1 - c),   dh[t-1] = dh c + da W_h
        dx[t] = da W_c + dp W_x,   dW_c = sum_t da^T x[t],  dW_x = sum_t dp^T x[t],
        dW_h = sum_t da^T h[t-1]

    Returns (dx (N, T, D), dh0, dw_c, dw_h, dw_x).
    """
    x_tm, h0, w_cx, w_h, u, cs, hs = cache
    xp = array_module(hs)
    steps, n, hid = hs.shape
    h_prev = xp.concatenate([h0[None], hs[:-1]])
    c_deriv = cs * (1 - cs)
    du = xp.empty_like(u)
    dh = dh_T.copy() if dh_T is not None else xp.zeros((n, hid), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        if dhs is not None:
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
    dw_cx = _weight_grads(du, x_tm)
    return _batch_first(dx), dh, dw_cx[:hid], _weight_grads(du[:, :, :hid], h_prev), dw_cx[hid:]


# -- attention RNN -------------------------------------------------------------

def attention_rnn_forward(x, h0, w_x, w_h):
    """A recurrent cell whose new state attends over the input and the last k states.

    For i = 1..k, with q_0, k_0, v_0 from the input and q_i, k_i, v_i from the state
    i steps back (each with its own matrices Q_i, K_i, V_i):

        [q_0, k_0, v_0] = x[t] [Q_0; K_0; V_0]^T              (w_x = [Q_0; K_0; V_0], (3H, D))
        [q_i, k_i, v_i] = h[t-i] [Q_i; K_i; V_i]^T            (w_h[i-1], (3H, H))
        w_i = q_i . k_i,   a = softmax(w_0, ..., w_k),   h[t] = sum_i a_i v_i

    The states before the first step, h[0], h[-1], ..., h[1-k], come from h0
    (N, k, H), ordered oldest first (zeros by default). Each new state is projected
    by all k matrices at once, (N, H) x (H, k 3H), when it is made; step t then reads
    the projection made i steps earlier with matrix i.

    Shapes: x (N, T, D), h0 (N, k, H), w_x (3H, D), w_h (k, 3H, H).
    Returns ``((hs, state), cache)`` with hs (N, T, H) and state (N, k, H), the last
    k states oldest first (the h0 of a following chunk).
    """
    xp = array_module(x)
    lags, three_h, hid = w_h.shape
    x_tm = _time_major(x)
    steps, n = x_tm.shape[:2]
    w_h_flat = w_h.reshape(lags * three_h, hid)
    xq = _input_projection(x_tm, w_x)
    # history[j] is h at step j - k + 1 (h0 fills j < k); proj[j] its projections by all k matrices
    history = xp.empty((steps + lags, n, hid), dtype=x.dtype)
    history[:lags] = h0.transpose(1, 0, 2)
    proj = xp.zeros((steps + lags, n, lags, three_h), dtype=x.dtype)
    proj[:lags] = (history[:lags].reshape(-1, hid) @ w_h_flat.T).reshape(lags, n, lags, three_h)
    qkv = xp.empty((steps, n, lags + 1, three_h), dtype=x.dtype)
    attn = xp.empty((steps, n, lags + 1), dtype=x.dtype)
    back = xp.arange(1, lags + 1)
    for t in range(steps):
        qkv[t, :, 0] = xq[t]
        qkv[t, :, 1:] = proj[t + lags - back, :, back - 1].transpose(1, 0, 2)
        q, k, v = qkv[t, :, :, :hid], qkv[t, :, :, hid: 2 * hid], qkv[t, :, :, 2 * hid:]
        scores = (q * k).sum(axis=-1)
        e = xp.exp(scores - scores.max(axis=-1, keepdims=True))
        attn[t] = e / e.sum(axis=-1, keepdims=True)
        h = history[t + lags]
        xp.matmul(attn[t][:, None, :], v, out=h[:, None, :])
        if t < steps - 1:
            proj[t + lags] = (h @ w_h_flat.T).reshape(n, lags, three_h)
    state = xp.ascontiguousarray(history[steps:].transpose(1, 0, 2))
    cache = (x_tm, w_x, w_h_flat, history, qkv, attn)
    return (_batch_first(history[lags:]), state), cache


def attention_rnn_backward(dhs, dstate, cache):
    """Back-propagation through time for :func:`attention_rnn_forward`.

    With dh[t] = dhs[t] + (gradient through the projections of h[t] used by later steps):

        da_i = dh . v_i,   dv_i = a_i dh,   dw = a * (da - sum_j a_j da_j)   (softmax Jacobian)
        dq_i = dw_i k_i,   dk_i = dw_i q_i
        d(x[t] projections) = [dq_0, dk_0, dv_0];  d(h[t-i] projections) += [dq_i, dk_i, dv_i]
        dh[t-i] += [dq_i, dk_i, dv_i] [Q_i; K_i; V_i]   (all i in one product when step t-i is reached)

        dW_x = sum_t d(x proj)[t]^T x[t],   dW_h[i] = sum_t d(h proj)[t, i]^T h[t]

    ``dstate`` (N, k, H) is the gradient of the returned state, or None.
    Returns (dx (N, T, D), dh0 (N, k, H), dw_x, dw_h).
    """
    x_tm, w_x, w_h_flat, history, qkv, attn = cache
    xp = array_module(history)
    steps, n, slots, three_h = qkv.shape
    lags, hid = slots - 1, w_h_flat.shape[1]
    dhist = xp.zeros_like(history)
    if dhs is not None:
        dhist[lags:] = dhs.transpose(1, 0, 2)
    if dstate is not None:
        dhist[steps:] += dstate.transpose(1, 0, 2)
    dproj = xp.zeros((steps + lags, n, lags, three_h), dtype=history.dtype)
    dxq = xp.empty((steps, n, three_h), dtype=history.dtype)
    dqkv = xp.empty((n, slots, three_h), dtype=history.dtype)
    back = xp.arange(1, lags + 1)
    for t in range(steps - 1, -1, -1):
        dh = dhist[t + lags]
        dh += dproj[t + lags].reshape(n, -1) @ w_h_flat
        q, k, v = qkv[t, :, :, :hid], qkv[t, :, :, hid: 2 * hid], qkv[t, :, :, 2 * hid:]
        a = attn[t]
        da = (v @ dh[:, :, None])[:, :, 0]
        dw = a * (da - (a * da).sum(axis=-1, keepdims=True))
        xp.multiply(dw[:, :, None], k, out=dqkv[:, :, :hid])
        xp.multiply(dw[:, :, None], q, out=dqkv[:, :, hid: 2 * hid])
        xp.multiply(a[:, :, None], dh[:, None, :], out=dqkv[:, :, 2 * hid:])
        dxq[t] = dqkv[:, 0]
        dproj[t + lags - back, :, back - 1] += dqkv[:, 1:].transpose(1, 0, 2)
    dhist[:lags] += (dproj[:lags].reshape(lags * n, -1) @ w_h_flat).reshape(lags, n, hid)
    dx = (dxq.reshape(-1, three_h) @ w_x).reshape(x_tm.shape)
    dw_h = _weight_grads(dproj.reshape(steps + lags, n, -1), history).reshape(lags, three_h, hid)
    dh0 = xp.ascontiguousarray(dhist[:lags].transpose(1, 0, 2))
    return _batch_first(dx), dh0, _weight_grads(dxq, x_tm), dw_h
