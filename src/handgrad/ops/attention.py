"""Attention RNN kernels: the new state attends over the input and past states.

At step t each source i gives a query, a key and a value, (q_i, k_i, v_i) (N, H) each;
its score is w_i = q_i . k_i and

    a = softmax(w_0, w_1, ...),     h[t] = sum_i a_i v_i.

Source 0 is the input, [q_0, k_0, v_0] = x[t] W_x^T with w_x = [Q_0; K_0; V_0] (3H, D).
The other sources are past states, in one of two variants:

* last k states (``attention_rnn_*``): source i = 1..k is h[t-i], through its own
  matrices, [q_i, k_i, v_i] = h[t-i] W_h[i-1]^T, w_h (k, 3H, H). The states before the
  first step, h[0], h[-1], ..., h[1-k], are h0 (N, k, H), oldest first (zeros by default).
* every past state (``attention_rnn_all_*``): the sources are all the states before
  step t, the S given ones h0 (N, S, H), oldest first, then h[1], ..., h[t-1], all
  through one tied matrix, [q_s, k_s, v_s] = h[s] W_h^T, w_h (3H, H), so the cell is
  defined for any sequence length.

Shapes: x (N, T, D) -> hs (N, T, H). Backward, with dh = dL/dh[t] (from the output and
from every later step that attended to h[t]):

    da_i = dh . v_i,   dv_i = a_i dh,   dw = a * (da - sum_j a_j da_j)   (softmax Jacobian)
    dq_i = dw_i k_i,   dk_i = dw_i q_i
    dx[t] = [dq_0, dk_0, dv_0] W_x,   dh[s] += [dq_i, dk_i, dv_i] W_h(i)   for the source i = h[s]
    dW_x = sum_t [dq_0, dk_0, dv_0]^T x[t],   dW_h(i) = sum [dq_i, dk_i, dv_i]^T h[s]

Backward returns (dx (N, T, D), dh0 (shape of h0), dw_x, dw_h).
"""
from __future__ import annotations

from ..backend import array_module
from .sequence import input_projection, swap_nt, weight_grads


def attend(qkv):
    """h = sum_i a_i v_i with a = softmax_i(q_i . k_i). qkv (N, S, 3H): [q, k, v] of S
    sources -> (h (N, H), a (N, S))."""
    xp = array_module(qkv)
    hid = qkv.shape[2] // 3
    scores = (qkv[:, :, :hid] * qkv[:, :, hid: 2 * hid]).sum(axis=-1)
    e = xp.exp(scores - scores.max(axis=-1, keepdims=True))
    a = e / e.sum(axis=-1, keepdims=True)
    return (a[:, :, None] * qkv[:, :, 2 * hid:]).sum(axis=1), a


def attend_backward(dh, qkv, a):
    """Gradient of :func:`attend` w.r.t. qkv, (N, S, 3H) (the module docstring's formulas)."""
    xp = array_module(qkv)
    hid = qkv.shape[2] // 3
    q, k, v = qkv[:, :, :hid], qkv[:, :, hid: 2 * hid], qkv[:, :, 2 * hid:]
    da = (v * dh[:, None, :]).sum(axis=-1)
    dw = (a * (da - (a * da).sum(axis=-1, keepdims=True)))[:, :, None]
    return xp.concatenate([dw * k, dw * q, a[:, :, None] * dh[:, None, :]], axis=2)


# -- last k states, one matrix per lag -----------------------------------------

def attention_rnn_step_forward(x, past, w_x, w_h):
    """One step over the last k states. Shapes: x (N, D), past (N, k, H) = h[t-k], ...,
    h[t-1] (oldest first), w_x (3H, D), w_h (k, 3H, H) -> h (N, H)."""
    xp = array_module(x)
    lags = w_h.shape[0]
    qkv = xp.stack([x @ w_x.T] + [past[:, lags - i] @ w_h[i - 1].T for i in range(1, lags + 1)], axis=1)
    h, a = attend(qkv)
    return h, (x, past, w_x, w_h, qkv, a)


def attention_rnn_step_backward(dh, cache):
    """Returns (dx, dpast, dw_x, dw_h) for :func:`attention_rnn_step_forward`."""
    xp = array_module(dh)
    x, past, w_x, w_h, qkv, a = cache
    lags = w_h.shape[0]
    dqkv = attend_backward(dh, qkv, a)
    dpast = xp.empty_like(past)
    dw_h = xp.empty_like(w_h)
    for i in range(1, lags + 1):
        dpast[:, lags - i] = dqkv[:, i] @ w_h[i - 1]
        dw_h[i - 1] = dqkv[:, i].T @ past[:, lags - i]
    return dqkv[:, 0] @ w_x, dpast, dqkv[:, 0].T @ x, dw_h


def attention_rnn_forward_naive(x, h0, w_x, w_h):
    """Reference: :func:`attention_rnn_step_forward` once per step, sliding the window of
    the last k states. Returns (hs (N, T, H), caches)."""
    xp = array_module(x)
    window, hs, caches = h0, [], []
    for t in range(x.shape[1]):
        h, cache = attention_rnn_step_forward(x[:, t], window, w_x, w_h)
        window = xp.concatenate([window[:, 1:], h[:, None]], axis=1)
        hs.append(h)
        caches.append(cache)
    return xp.stack(hs, axis=1), caches


def attention_rnn_backward_naive(dhs, caches):
    """Reference: :func:`attention_rnn_step_backward` from the last step to the first,
    carrying the gradient of the window of the last k states."""
    xp = array_module(dhs)
    dwindow = xp.zeros_like(caches[0][1])
    dxs, dparams = [], None
    for t in range(len(caches) - 1, -1, -1):
        # the window after step t is [window before it without its oldest state, h[t]]
        dx, dpast, *dp = attention_rnn_step_backward(dhs[:, t] + dwindow[:, -1], caches[t])
        dpast[:, 1:] += dwindow[:, :-1]
        dwindow = dpast
        dxs.append(dx)
        dparams = dp if dparams is None else [a + b for a, b in zip(dparams, dp)]
    return (xp.stack(dxs[::-1], axis=1), dwindow, *dparams)


def attention_rnn_forward(x, h0, w_x, w_h):
    """Fused :func:`attention_rnn_forward_naive`. Each new state is projected by all k
    matrices at once, (N, H) x (H, k 3H), when it is made; step t then reads the
    projection made i steps earlier with matrix i."""
    xp = array_module(x)
    lags, three_h, hid = w_h.shape
    x_tm = swap_nt(x)
    steps, n = x_tm.shape[:2]
    w_h_flat = w_h.reshape(lags * three_h, hid)
    xq = input_projection(x_tm, w_x)
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
        # attend, written out to work in place (the fused loop's hot spot)
        q, k, v = qkv[t, :, :, :hid], qkv[t, :, :, hid: 2 * hid], qkv[t, :, :, 2 * hid:]
        scores = (q * k).sum(axis=-1)
        e = xp.exp(scores - scores.max(axis=-1, keepdims=True))
        attn[t] = e / e.sum(axis=-1, keepdims=True)
        h = history[t + lags]
        xp.matmul(attn[t][:, None, :], v, out=h[:, None, :])
        if t < steps - 1:
            proj[t + lags] = (h @ w_h_flat.T).reshape(n, lags, three_h)
    return swap_nt(history[lags:]), (x_tm, w_x, w_h_flat, history, qkv, attn)


def attention_rnn_backward(dhs, cache):
    """Fused :func:`attention_rnn_backward_naive`: the gradients of the projections of
    h[s] are gathered from the k steps that read them, then go through all k matrices
    in one product when step s is reached; the weight gradients are one product each."""
    x_tm, w_x, w_h_flat, history, qkv, attn = cache
    xp = array_module(history)
    steps, n, slots, three_h = qkv.shape
    lags, hid = slots - 1, w_h_flat.shape[1]
    dhist = xp.zeros_like(history)
    dhist[lags:] = dhs.transpose(1, 0, 2)
    dproj = xp.zeros((steps + lags, n, lags, three_h), dtype=history.dtype)
    dxq = xp.empty((steps, n, three_h), dtype=history.dtype)
    dqkv = xp.empty((n, slots, three_h), dtype=history.dtype)
    back = xp.arange(1, lags + 1)
    for t in range(steps - 1, -1, -1):
        dh = dhist[t + lags]
        dh += dproj[t + lags].reshape(n, -1) @ w_h_flat
        # attend_backward, written out to work in place
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
    dw_h = weight_grads(dproj.reshape(steps + lags, n, -1), history).reshape(lags, three_h, hid)
    return swap_nt(dx), swap_nt(dhist[:lags]), weight_grads(dxq, x_tm), dw_h


# -- every past state, one tied matrix ------------------------------------------

def attention_rnn_all_step_forward(x, past, w_x, w_h):
    """One step over every past state. Shapes: x (N, D), past (N, S, H), every state
    before this step, w_x (3H, D), w_h (3H, H) -> h (N, H)."""
    xp = array_module(x)
    qkv = xp.concatenate([(x @ w_x.T)[:, None], past @ w_h.T], axis=1)
    h, a = attend(qkv)
    return h, (x, past, w_x, w_h, qkv, a)


def attention_rnn_all_step_backward(dh, cache):
    """Returns (dx, dpast, dw_x, dw_h) for :func:`attention_rnn_all_step_forward`."""
    x, past, w_x, w_h, qkv, a = cache
    dqkv = attend_backward(dh, qkv, a)
    dp = dqkv[:, 1:]
    return dqkv[:, 0] @ w_x, dp @ w_h, dqkv[:, 0].T @ x, weight_grads(dp, past)


def attention_rnn_all_forward_naive(x, h0, w_x, w_h):
    """Reference: :func:`attention_rnn_all_step_forward` once per step over the growing
    list of past states (O(T^2) work). Returns (hs (N, T, H), caches)."""
    xp = array_module(x)
    history, hs, caches = h0, [], []
    for t in range(x.shape[1]):
        h, cache = attention_rnn_all_step_forward(x[:, t], history, w_x, w_h)
        history = xp.concatenate([history, h[:, None]], axis=1)
        hs.append(h)
        caches.append(cache)
    return xp.stack(hs, axis=1), caches


def attention_rnn_all_backward_naive(dhs, caches):
    """Reference: :func:`attention_rnn_all_step_backward` from the last step to the first;
    step t hands a gradient to every state before it."""
    xp = array_module(dhs)
    given = caches[0][1].shape[1]
    dhist = xp.zeros((dhs.shape[0], given + len(caches), dhs.shape[2]), dtype=dhs.dtype)
    dxs, dparams = [], None
    for t in range(len(caches) - 1, -1, -1):
        dx, dpast, *dp = attention_rnn_all_step_backward(dhs[:, t] + dhist[:, given + t], caches[t])
        dhist[:, : given + t] += dpast
        dxs.append(dx)
        dparams = dp if dparams is None else [a + b for a, b in zip(dparams, dp)]
    return (xp.stack(dxs[::-1], axis=1), dhist[:, :given], *dparams)


def attention_rnn_all_forward(x, h0, w_x, w_h):
    """Fused :func:`attention_rnn_all_forward_naive`, in O(T) instead of O(T^2).

    A past state's score w_s = q_s . k_s does not depend on the step that reads it, so
    the past enters every step only through two running sums: its log total weight
    z = log sum_s e^{w_s} and its attention-weighted mean value m = sum_s e^{w_s - z} v_s.
    With w_0 the input's score,

        alpha = e^{w_0} / (e^{w_0} + e^z) = sigmoid(w_0 - z),   h[t] = m + alpha (v_0 - m)

    and absorbing h[t] (score w, value v) into the sums:

        z' = log(e^z + e^w),   beta = e^{w - z'} = sigmoid(w - z),   m' = m + beta (v - m).

    The S given states are summed into (m, z) in one pass at the start. alpha, beta and
    their complements are computed as e^{w_0 - log(e^{w_0} + e^z)} and so on, which keeps
    their relative precision when the scores are far apart (1 - alpha would not).
    """
    xp = array_module(x)
    hid = w_h.shape[1]
    x_tm = swap_nt(x)
    steps, n = x_tm.shape[:2]
    xq = input_projection(x_tm, w_x)
    w_scores = (xq[:, :, :hid] * xq[:, :, hid: 2 * hid]).sum(axis=-1)
    past_qkv = h0 @ w_h.T
    past_scores = (past_qkv[:, :, :hid] * past_qkv[:, :, hid: 2 * hid]).sum(axis=-1)
    top = past_scores.max(axis=1, keepdims=True)
    e = xp.exp(past_scores - top)
    past_a = e / e.sum(axis=1, keepdims=True)
    z = top[:, 0] + xp.log(e.sum(axis=1))
    # ms[t]: the mean over the states before step t; hq[t]: projections of h[t]
    ms = xp.empty((steps, n, hid), dtype=x.dtype)
    ms[0] = (past_a[:, :, None] * past_qkv[:, :, 2 * hid:]).sum(axis=1)
    # the gates and their complements: alpha[0] = alpha, alpha[1] = 1 - alpha (likewise beta)
    alpha = xp.empty((2, steps, n), dtype=x.dtype)
    beta = xp.empty((2, steps, n), dtype=x.dtype)
    hs = xp.empty((steps, n, hid), dtype=x.dtype)
    hq = xp.empty((steps, n, 3 * hid), dtype=x.dtype)
    w_h_t = w_h.T
    for t in range(steps):
        total = xp.logaddexp(z, w_scores[t])
        xp.exp(w_scores[t] - total, out=alpha[0, t])
        xp.exp(z - total, out=alpha[1, t])
        xp.subtract(xq[t, :, 2 * hid:], ms[t], out=hs[t])
        hs[t] *= alpha[0, t][:, None]
        hs[t] += ms[t]
        if t == steps - 1:
            break  # the sums after the last step are not an output: the caller keeps the states
        xp.matmul(hs[t], w_h_t, out=hq[t])
        w = (hq[t, :, :hid] * hq[t, :, hid: 2 * hid]).sum(axis=-1)
        total = xp.logaddexp(z, w)
        xp.exp(w - total, out=beta[0, t])
        xp.exp(z - total, out=beta[1, t])
        z = total
        xp.subtract(hq[t, :, 2 * hid:], ms[t], out=ms[t + 1])
        ms[t + 1] *= beta[0, t][:, None]
        ms[t + 1] += ms[t]
    cache = (x_tm, h0, w_x, w_h, xq, past_qkv, past_a, ms, alpha, beta, hs, hq)
    return swap_nt(hs), cache


def attention_rnn_all_backward(dhs, cache):
    """Back-propagation through :func:`attention_rnn_all_forward`'s running sums.

    With dm, dz the gradients of (m, z) after step t, the absorb step gives

        dv = beta dm,   dbeta = (v - m) . dm,   dw = beta dz + beta (1 - beta) dbeta
        dm <- (1 - beta) dm,   dz <- (1 - beta) dz - beta (1 - beta) dbeta
        dq = dw k,  dk = dw q,   dh[t] += [dq, dk, dv] W_h

    and the output h[t] = m + alpha (v_0 - m), with dh = dL/dh[t]:

        dv_0 = alpha dh,   dalpha = (v_0 - m) . dh,   dm += (1 - alpha) dh
        dw_0 = alpha (1 - alpha) dalpha,   dz -= dw_0,   dq_0 = dw_0 k_0,  dk_0 = dw_0 q_0

    The given states, m = sum_s a_s v_s and z = log sum_s e^{w_s}, get
    dv_s = a_s dm and dw_s = a_s ((v_s - m) . dm + dz).
    """
    x_tm, h0, w_x, w_h, xq, past_qkv, past_a, ms, alpha, beta, hs, hq = cache
    xp = array_module(hs)
    steps, n, hid = hs.shape
    dm = xp.zeros((n, hid), dtype=hs.dtype)
    dz = xp.zeros(n, dtype=hs.dtype)
    dxq = xp.empty_like(xq)
    dhq = xp.empty_like(hq)
    for t in range(steps - 1, -1, -1):
        dh = dhs[:, t].copy()
        if t < steps - 1:
            b, cb = beta[0, t][:, None], beta[1, t][:, None]
            dbeta = ((hq[t, :, 2 * hid:] - ms[t]) * dm).sum(axis=-1, keepdims=True)
            dw = b * dz[:, None] + b * cb * dbeta
            xp.multiply(dw, hq[t, :, hid: 2 * hid], out=dhq[t, :, :hid])
            xp.multiply(dw, hq[t, :, :hid], out=dhq[t, :, hid: 2 * hid])
            xp.multiply(b, dm, out=dhq[t, :, 2 * hid:])
            dm *= cb
            dz = cb[:, 0] * dz - (b * cb * dbeta)[:, 0]
            dh += dhq[t] @ w_h
        al, cal = alpha[0, t][:, None], alpha[1, t][:, None]
        dalpha = ((xq[t, :, 2 * hid:] - ms[t]) * dh).sum(axis=-1, keepdims=True)
        dw0 = al * cal * dalpha
        xp.multiply(dw0, xq[t, :, hid: 2 * hid], out=dxq[t, :, :hid])
        xp.multiply(dw0, xq[t, :, :hid], out=dxq[t, :, hid: 2 * hid])
        xp.multiply(al, dh, out=dxq[t, :, 2 * hid:])
        dm += cal * dh
        dz -= dw0[:, 0]
    dws = past_a * (((past_qkv[:, :, 2 * hid:] - ms[0][:, None]) * dm[:, None]).sum(axis=-1) + dz[:, None])
    dws = dws[:, :, None]
    dpast_qkv = xp.concatenate([dws * past_qkv[:, :, hid: 2 * hid], dws * past_qkv[:, :, :hid],
                                past_a[:, :, None] * dm[:, None]], axis=2)
    dx = (dxq.reshape(-1, 3 * hid) @ w_x).reshape(x_tm.shape)
    dw_h = weight_grads(dhq[:-1], hs[:-1]) + weight_grads(dpast_qkv, h0)
    return swap_nt(dx), dpast_qkv @ w_h, weight_grads(dxq, x_tm), dw_h
