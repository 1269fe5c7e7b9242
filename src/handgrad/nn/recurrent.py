"""Recurrent layers on batch-first sequences (N, T, D): RNN, LSTM, GRU, GatedRNN, AttentionRNN.

``out, state = layer(x, state0)`` returns every hidden state ``out`` (N, T, H) and
the final state, as ``torch.nn.RNN/LSTM/GRU(batch_first=True)`` do:

* RNN and GRU: state = h (num_layers, N, H);
* LSTM: state = (h, c), each (num_layers, N, H);
* GatedRNN: state = h (N, H);
* AttentionRNN: state = the last k states (N, k, H); with k=math.inf, every state so
  far (N, S, H), which grows by T with every chunk.

``state0`` defaults to zeros. ``layer.backward(dout, dstate=None)`` takes the
gradient of the loss w.r.t. ``out`` (or None) and, optionally, w.r.t. the final
state (same structure as ``state``; None, or None entries, mean zero), adds the
parameter gradients and returns dx. The gradient w.r.t. ``state0`` is left in
``layer.initial_state_grad``.

Truncated back-propagation through time: feed the final state of one chunk as
``state0`` of the next. States are plain arrays with no graph attached (they are
already "detached"), so each chunk's backward stops at its initial state; to
back-propagate further, pass ``layer.initial_state_grad`` of the later chunk as
``dstate`` of the earlier one.

Parameter names and layouts are PyTorch's, so state dicts move between the two
libraries: ``weight_ih_l{k}`` (G H, D_k), ``weight_hh_l{k}`` (G H, H),
``bias_ih_l{k}`` and ``bias_hh_l{k}`` (G H,), gates stacked as (i, f, g, o) for
the LSTM and (r, z, n) for the GRU. Default initialisation is PyTorch's:
U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias.
"""
from __future__ import annotations

import math

from .. import init
from ..backend import array_module, get_default_dtype
from ..ops.attention import (
    attention_rnn_all_backward, attention_rnn_all_forward, attention_rnn_backward, attention_rnn_forward,
)
from ..ops.gated import gated_rnn_backward, gated_rnn_forward
from ..ops.gru import gru_backward, gru_forward
from ..ops.lstm import lstm_backward, lstm_embedding_backward, lstm_embedding_forward, lstm_forward
from ..ops.rnn import rnn_backward, rnn_forward
from .module import Module, Parameter, is_grad_enabled


def _check_sequence(layer, x, input_size):
    name = type(layer).__name__
    if x.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D input (N, T, input_size) (batch first), got shape {tuple(x.shape)}")
    if x.shape[2] != input_size:
        raise ValueError(f"{name}: expected input_size {input_size} (last axis), got {x.shape[2]} (input shape {tuple(x.shape)})")
    if x.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one time step, got input shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype}")


def _state_array(layer, what, value, like, shape):
    """Zeros of ``shape`` (on ``like``'s device, in its dtype) when ``value`` is None,
    else ``value`` checked against ``shape``."""
    xp = array_module(like)
    if value is None:
        return xp.zeros(shape, dtype=like.dtype)
    value = xp.asarray(value)
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{type(layer).__name__}: expected {what} of shape {tuple(shape)}, got {tuple(value.shape)}")
    return value.astype(like.dtype, copy=False)


def _check_positive(layer, **sizes):
    for key, value in sizes.items():
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{type(layer).__name__}: {key} must be a positive integer, got {value!r}")


class _Stacked(Module):
    """num_layers single-layer kernels stacked: layer k reads the hidden states of layer k-1.

    A subclass's ``_kernel_forward(x, state parts, params)`` returns (seq, cache) with seq
    (state_parts, N, T, H), every part of the state after every step, and its
    ``_kernel_backward(dseq, cache)`` the kernel's gradients."""

    gates = 1
    state_parts = 1  # 2 for the LSTM: (h, c)

    def __init__(self, input_size, hidden_size, num_layers=1, rng=None, dtype=None):
        super().__init__()
        _check_positive(self, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        dtype = dtype or get_default_dtype()
        bound = 1.0 / math.sqrt(hidden_size)
        rows = self.gates * hidden_size
        for k in range(num_layers):
            d = input_size if k == 0 else hidden_size
            for name, shape in ((f"weight_ih_l{k}", (rows, d)), (f"weight_hh_l{k}", (rows, hidden_size)),
                                (f"bias_ih_l{k}", (rows,)), (f"bias_hh_l{k}", (rows,))):
                setattr(self, name, Parameter(init.uniform(shape, -bound, bound, rng=rng, dtype=dtype)))
        self.initial_state_grad = None

    def _layer_params(self, k):
        return [getattr(self, f"{p}_l{k}").data for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def _parts(self, state):
        """The state as a tuple of (num_layers, N, H) arrays (or Nones)."""
        if self.state_parts == 1:
            return (state,)
        if state is None:
            return (None,) * self.state_parts
        if not isinstance(state, (tuple, list)) or len(state) != self.state_parts:
            raise ValueError(f"{type(self).__name__}: expected the state as a tuple (h, c), got {type(state).__name__}")
        return tuple(state)

    def _pack(self, parts):
        return parts[0] if self.state_parts == 1 else tuple(parts)

    def forward(self, x, state=None):
        _check_sequence(self, x, self.input_size)
        return self._forward(x.astype(self.weight_ih_l0.data.dtype, copy=False), state, self._kernel_forward)

    def backward(self, dout, dstate=None):
        return self._backward(dout, dstate, self._kernel_backward)

    def _forward(self, x, state, first_kernel):
        """The stack on x, whose first axis is the batch; layer 0 runs ``first_kernel``
        (a ``_kernel_forward`` reading x), the others ``_kernel_forward``."""
        like = self.weight_ih_l0.data
        shape = (self.num_layers, x.shape[0], self.hidden_size)
        names = ("h0", "c0")
        parts = [_state_array(self, f"initial state {names[i]}", s, like, shape) for i, s in enumerate(self._parts(state))]
        finals, caches = [[] for _ in parts], []
        out = x
        for k in range(self.num_layers):
            kernel = first_kernel if k == 0 else self._kernel_forward
            # seq (state_parts, N, T, H): every part of the state after every step
            seq, cache = kernel(out, [p[k] for p in parts], self._layer_params(k))
            out = seq[0]
            for i in range(self.state_parts):
                finals[i].append(seq[i][:, -1])
            caches.append(cache)
        if is_grad_enabled():
            self._cache = (caches, seq.shape)
        else:  # the kernels kept nothing (see no_grad): a backward says so clearly
            self.__dict__.pop("_cache", None)
        xp = array_module(out)
        return out, self._pack([xp.stack(f) for f in finals])

    def _backward(self, dout, dstate, first_kernel):
        """Backward of :meth:`_forward`; layer 0 runs ``first_kernel``, whose first
        gradient (that of layer 0's input) is returned."""
        caches, seq_shape = self._cache
        dparts = self._parts(dstate)
        dinit = [[None] * self.num_layers for _ in dparts]
        for k in range(self.num_layers - 1, -1, -1):
            # the final state is the last step's, so its gradient adds to the last step's
            w = self.weight_hh_l0.data
            dseq = array_module(w).zeros(seq_shape, dtype=w.dtype)
            if dout is not None:
                dseq[0] = dout
            for i, d in enumerate(dparts):
                if d is not None:
                    dseq[i][:, -1] += d[k]
            kernel = first_kernel if k == 0 else self._kernel_backward
            grads = kernel(dseq, caches[k])
            dout = grads[0]
            for i in range(len(dparts)):
                dinit[i][k] = grads[1 + i]
            for p, g in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), grads[1 + len(dparts):]):
                getattr(self, f"{p}_l{k}").add_grad(g)
        xp = array_module(w)
        self.initial_state_grad = self._pack([xp.stack(d) for d in dinit])
        return dout

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first=True"


class RNN(_Stacked):
    """Elman RNN: h[t] = phi(x[t] W_ih^T + b_ih + h[t-1] W_hh^T + b_hh), phi = tanh or relu.
    See :mod:`handgrad.ops.rnn` for the gradients."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", rng=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, rng, dtype)
        self.nonlinearity = nonlinearity

    def _kernel_forward(self, x, state, params):
        hs, cache = rnn_forward(x, state[0], *params, self.nonlinearity)
        return hs[None], cache

    def _kernel_backward(self, dseq, cache):
        return rnn_backward(dseq[0], cache)

    def extra_repr(self):
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTM(_Stacked):
    """Long short-term memory, gates (i, f, g, o):

        i, f, o = sigmoid(.), g = tanh(.) of x[t] W_ih^T + b_ih + h[t-1] W_hh^T + b_hh
        c[t] = f * c[t-1] + i * g,   h[t] = o * tanh(c[t])

    ``state`` is the tuple (h, c). See :mod:`handgrad.ops.lstm`.
    """

    gates = 4
    state_parts = 2
    _embedded = None  # (embedding, fused) when the last forward read token ids, else None

    def forward(self, x, state=None, embedding=None):
        """``embedding``: an :class:`~handgrad.nn.Embedding` whose output is this layer's
        input; x then holds token ids (N, T), the layer runs on embedding(x), and
        backward adds the embedding's weight gradient and returns None. With a
        vocabulary of at most twice the embedding width, layer 0 reads the ids
        through :func:`~handgrad.ops.lstm.lstm_embedding_forward` (fused), which
        forms neither embedding(x) nor its gradient."""
        self._embedded = None
        if embedding is None:
            return super().forward(x, state)
        if embedding.embedding_dim != self.input_size:
            raise ValueError(f"LSTM: expected an embedding of width input_size {self.input_size}, "
                             f"got embedding_dim {embedding.embedding_dim}")
        fused = (embedding.num_embeddings <= 2 * embedding.embedding_dim
                 and embedding.weight.data.dtype == self.weight_ih_l0.data.dtype)
        self._embedded = (embedding, fused)
        if not fused:
            return super().forward(embedding(x), state)
        ids = embedding.token_ids(x)
        if ids.ndim != 2 or ids.shape[1] == 0:
            raise ValueError(f"LSTM: expected token ids of shape (N, T) with T >= 1, got shape {tuple(ids.shape)}")
        return self._forward(ids, state, self._embedding_kernel_forward)

    def backward(self, dout, dstate=None):
        if self._embedded is None:
            return super().backward(dout, dstate)
        embedding, fused = self._embedded
        if fused:
            embedding.weight.add_grad(self._backward(dout, dstate, lstm_embedding_backward))
        else:
            embedding.backward(super().backward(dout, dstate))
        return None

    # without a backward to come (no_grad), the kernels keep nothing for it
    def _kernel_forward(self, x, state, params):
        return lstm_forward(x, state[0], state[1], *params, keep=is_grad_enabled())

    def _kernel_backward(self, dseq, cache):
        return lstm_backward(dseq, cache)

    def _embedding_kernel_forward(self, ids, state, params):
        return lstm_embedding_forward(ids, self._embedded[0].weight.data, state[0], state[1], *params,
                                      keep=is_grad_enabled())


class GRU(_Stacked):
    """Gated recurrent unit, gates (r, z, n):

        r, z = sigmoid(x W_i^T + b_i + h W_h^T + b_h),  n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
        h[t] = (1 - z) * n + z * h[t-1]

    See :mod:`handgrad.ops.gru`.
    """

    gates = 3

    def _kernel_forward(self, x, state, params):
        hs, cache = gru_forward(x, state[0], *params)
        return hs[None], cache

    def _kernel_backward(self, dseq, cache):
        return gru_backward(dseq[0], cache)


class GatedRNN(Module):
    """c[t] = sigmoid(W_c x[t] + W_h h[t-1]);  h[t] = c[t] * h[t-1] + (1 - c[t]) * (W_x x[t]);  h0 = 0.

    Parameters ``weight_c`` (H, D), ``weight_h`` (H, H), ``weight_x`` (H, D), no
    biases, initialised U(-1/sqrt(H), 1/sqrt(H)). ``state`` is h (N, H).
    See :mod:`handgrad.ops.gated`.
    """

    def __init__(self, input_size, hidden_size, rng=None, dtype=None):
        super().__init__()
        _check_positive(self, input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        dtype = dtype or get_default_dtype()
        bound = 1.0 / math.sqrt(hidden_size)
        for name, shape in (("weight_c", (hidden_size, input_size)), ("weight_h", (hidden_size, hidden_size)),
                            ("weight_x", (hidden_size, input_size))):
            setattr(self, name, Parameter(init.uniform(shape, -bound, bound, rng=rng, dtype=dtype)))
        self.initial_state_grad = None

    def forward(self, x, state=None):
        _check_sequence(self, x, self.input_size)
        dtype = self.weight_h.data.dtype
        x = x.astype(dtype, copy=False)
        h0 = _state_array(self, "initial state h0", state, x, (x.shape[0], self.hidden_size))
        hs, cache = gated_rnn_forward(x, h0, self.weight_c.data, self.weight_h.data, self.weight_x.data)
        self._cache = (cache, hs.shape)
        return hs, hs[:, -1].copy()

    def backward(self, dout, dstate=None):
        cache, shape = self._cache
        w = self.weight_h.data
        dhs = array_module(w).zeros(shape, dtype=w.dtype)
        if dout is not None:
            dhs[...] = dout
        if dstate is not None:
            dhs[:, -1] += dstate  # the final state is the last step's
        dx, dh0, dw_c, dw_h, dw_x = gated_rnn_backward(dhs, cache)
        self.weight_c.add_grad(dw_c)
        self.weight_h.add_grad(dw_h)
        self.weight_x.add_grad(dw_x)
        self.initial_state_grad = dh0
        return dx

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"


class AttentionRNN(Module):
    """h[t] = sum_i a_i v_i with a = softmax(q_i . k_i), where (q_0, k_0, v_0) come from
    x[t] and (q_i, k_i, v_i) from past states:

    * ``k`` a positive int: the last k states h[t-1], ..., h[t-k], each lag i through
      its own matrices (Q_i, K_i, V_i). Parameters ``weight_x`` (3H, D) = [Q_0; K_0; V_0]
      and ``weight_h`` (k, 3H, H) with ``weight_h[i-1]`` = [Q_i; K_i; V_i]. ``state`` is
      the last k states (N, k, H), oldest first; zeros by default (h[t] = 0 for t < 1).
    * ``k=math.inf``: every past state, all through one tied ``weight_h`` (3H, H), so the
      layer is defined for any sequence length. ``state`` is every state so far
      (N, S, H), oldest first, any S >= 1; by default the one state h[0] = 0. The
      returned state is the given one followed by this call's T states, so in a
      stateful stream it grows by T per chunk (reset it to bound the memory); the
      kernel still does O(S + T) work per call, not O((S + T) T).

    k is infinite rather than None because it is the limit of the window as k grows
    (h[0] = 0 and all h[1..t-1] are attended), and ``None`` would read as "no
    attention" or "some default". Weights are initialised U(-1/sqrt(H), 1/sqrt(H)).
    See :mod:`handgrad.ops.attention`.
    """

    def __init__(self, input_size, hidden_size, k, rng=None, dtype=None):
        super().__init__()
        _check_positive(self, input_size=input_size, hidden_size=hidden_size)
        if k != math.inf and (not isinstance(k, int) or k <= 0):
            raise ValueError(f"AttentionRNN: k must be a positive integer or math.inf, got {k!r}")
        self.input_size, self.hidden_size, self.k = input_size, hidden_size, k
        dtype = dtype or get_default_dtype()
        bound = 1.0 / math.sqrt(hidden_size)
        w_h_shape = (3 * hidden_size, hidden_size) if k == math.inf else (k, 3 * hidden_size, hidden_size)
        self.weight_x = Parameter(init.uniform((3 * hidden_size, input_size), -bound, bound, rng=rng, dtype=dtype))
        self.weight_h = Parameter(init.uniform(w_h_shape, -bound, bound, rng=rng, dtype=dtype))
        self.initial_state_grad = None

    def _initial_state(self, state, x):
        n, hid = x.shape[0], self.hidden_size
        if self.k != math.inf:
            return _state_array(self, "initial state (last k states)", state, x, (n, self.k, hid))
        if state is None:
            return _state_array(self, "initial state", None, x, (n, 1, hid))
        shape = tuple(array_module(x).asarray(state).shape)
        if len(shape) != 3 or shape[0] != n or shape[1] < 1 or shape[2] != hid:
            raise ValueError(f"AttentionRNN: expected initial state (every past state) of shape "
                             f"(N, S, H) = ({n}, S, {hid}) with S >= 1, got {shape}")
        return _state_array(self, "initial state", state, x, shape)

    def forward(self, x, state=None):
        _check_sequence(self, x, self.input_size)
        dtype = self.weight_x.data.dtype
        x = x.astype(dtype, copy=False)
        h0 = self._initial_state(state, x)
        kernel = attention_rnn_all_forward if self.k == math.inf else attention_rnn_forward
        hs, cache = kernel(x, h0, self.weight_x.data, self.weight_h.data)
        # every state so far, of which the state handed on is the last k
        states = array_module(x).concatenate([h0, hs], axis=1)
        self._cache = (cache, states.shape, h0.shape[1])
        return hs, states if self.k == math.inf else states[:, -self.k:].copy()

    def backward(self, dout, dstate=None):
        cache, shape, past = self._cache
        w = self.weight_h.data
        dstates = array_module(w).zeros(shape, dtype=w.dtype)
        if dout is not None:
            dstates[:, past:] = dout
        if dstate is not None:
            dstates[:, -dstate.shape[1]:] += dstate
        kernel = attention_rnn_all_backward if self.k == math.inf else attention_rnn_backward
        dx, dh0, dw_x, dw_h = kernel(dstates[:, past:], cache)
        self.weight_x.add_grad(dw_x)
        self.weight_h.add_grad(dw_h)
        self.initial_state_grad = dh0 + dstates[:, :past]
        return dx

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, k={self.k}"
