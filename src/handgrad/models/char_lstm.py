"""A character-level language model: Embedding -> LSTM -> Linear, and sampling from it."""
from __future__ import annotations

import numpy as np

from ..backend import array_module, get_rng, to_numpy
from ..nn import LSTM, Embedding, Linear, Stateful, is_grad_enabled, no_grad
from ..validate import positive_int


class CharLSTM(Stateful):
    """Predicts the next character at every position of a batch of character ids.

        e[n, t] = E[x[n, t]]                 (N, T, embedding_dim)
        h       = LSTM(e)                    (N, T, hidden_size), num_layers stacked
        z[n, t] = h[n, t] W^T + b            (N, T, vocab_size) logits of the next character

    Sub-modules ``embedding``, ``lstm`` and ``decoder`` carry PyTorch's names, so the
    state dict loads into the same stack built from ``torch.nn`` modules. In training,
    and in inference (eval mode under :func:`~handgrad.nn.no_grad`: evaluation,
    prediction, sampling), the LSTM reads the ids through the embedding
    (``LSTM.forward``'s ``embedding``), which forms neither e nor its gradient and
    makes each step's product shorter (500 sequences of 50 characters, one core: the
    LSTM kernel 58 against 67 ms, the whole prediction 69-70 against 74 ms). An
    eval-mode pass that keeps what backward needs runs the embedding and the LSTM
    one after the other, as summaries and exports show them.

    Truncated back-propagation through time: with ``stateful=True`` the final (h, c)
    of each training batch is kept in ``carried_state`` and becomes the initial
    state of the next one (as a plain array, i.e. detached: gradients stop at the
    batch boundary), which is right when consecutive batches continue the same
    text streams row by row (see :class:`handgrad.data.text.StreamLoader`).
    ``carried_state`` is dropped by :meth:`reset_state` (the Trainer does so at the
    start of every epoch) and ignored when the batch size changes. Only
    training-mode forward passes read or write it: in eval mode a batch starts from
    ``state`` (zeros by default), so evaluating or sampling in the middle of an
    epoch leaves the training carry as it was. Evaluation on streams passes each
    chunk's ``final_state`` to the next chunk explicitly (see
    :func:`handgrad.train.evaluate.evaluate`).
    """

    def __init__(self, vocab_size: int, hidden_size: int = 256, num_layers: int = 1,
                 embedding_dim: int = 64, stateful: bool = False, rng=None, dtype=None):
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = Embedding(vocab_size, embedding_dim, rng=rng, dtype=dtype)
        self.lstm = LSTM(embedding_dim, hidden_size, num_layers=num_layers, rng=rng, dtype=dtype)
        self.decoder = Linear(hidden_size, vocab_size, rng=rng, dtype=dtype)
        self.stateful = stateful
        self.input_shape = (50,)  # any sequence length works; 50 is the usual training length
        self.carried_state = None  # (h, c), each (num_layers, N, hidden_size), or None

    @property
    def carries_state(self) -> bool:
        return self.stateful

    def reset_state(self) -> None:
        """Forget the (h, c) carried between training batches."""
        self.carried_state = None

    def get_state(self):
        """The carried (h, c), each (num_layers, N, hidden_size), or None."""
        return self.carried_state

    def set_state(self, state) -> None:
        self.carried_state = None if state is None else tuple(state)

    def forward(self, x, state=None):
        """Logits (N, T, vocab_size) for ids x (N, T). ``state`` (h, c) overrides the
        carried state; the final state is kept in ``self.final_state`` (and, when
        stateful and training, in ``self.carried_state``)."""
        if x.ndim != 2:
            raise ValueError(f"CharLSTM: expected character ids of shape (N, T), got shape {tuple(x.shape)}")
        carry = self.stateful and self.training
        carried = self.carried_state
        if state is None and carry and carried is not None and carried[0].shape[1] == x.shape[0]:
            state = carried
        if self.training or not is_grad_enabled():
            hs, self.final_state = self.lstm(x, state, embedding=self.embedding)
        else:
            hs, self.final_state = self.lstm(self.embedding(x), state)
        if carry:
            self.carried_state = self.final_state
        n, steps, hid = hs.shape
        return self.decoder(hs.reshape(n * steps, hid)).reshape(n, steps, -1)

    def backward(self, dlogits):
        """Back-propagate dL/dlogits (N, T, vocab_size); the integer input has no gradient."""
        n, steps, vocab = dlogits.shape
        dh = self.decoder.backward(dlogits.reshape(n * steps, vocab)).reshape(n, steps, -1)
        dx = self.lstm.backward(dh)
        if dx is not None:  # an eval-mode forward: the LSTM read embedding(x)
            self.embedding.backward(dx)
        return None

    def sample(self, prime, length: int, temperature: float = 1.0, greedy: bool = False, rng=None):
        """Continue the ids ``prime`` (a non-empty sequence of ints) by ``length`` ids.

        The prime is read in one forward pass; then each step feeds the previous id
        back in and draws the next one from softmax(z / temperature) (or takes the
        argmax with ``greedy``). The same ``rng`` seed gives the same ids. Returns the
        new ids as a list (the prime not included). Runs in eval mode and leaves the
        model's mode as it was.
        """
        if len(prime) == 0:
            raise ValueError("CharLSTM.sample: the prime must contain at least one character")
        if not greedy and not temperature > 0:
            raise ValueError(f"CharLSTM.sample: temperature must be > 0, got {temperature!r}")
        if length < 0:
            raise ValueError(f"CharLSTM.sample: length must be >= 0, got {length!r}")
        rng = get_rng(rng)
        xp = array_module(self.decoder.weight.data)
        was_training = self.training
        self.eval()
        try:
            with no_grad():  # inference: nothing kept for a backward, the LSTM reads the ids directly
                ids = xp.asarray(np.asarray(prime, dtype=np.int64)[None, :])
                logits = self.forward(ids)[0, -1]
                out = []
                for _ in range(length):
                    z = to_numpy(logits).astype(np.float64)
                    if greedy:
                        nxt = int(z.argmax())
                    else:
                        z = z / temperature
                        p = np.exp(z - z.max())
                        nxt = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
                        nxt = min(nxt, len(p) - 1)
                    out.append(nxt)
                    ids = xp.asarray(np.array([[nxt]], dtype=np.int64))
                    logits = self.forward(ids, self.final_state)[0, -1]
        finally:
            self.train(was_training)
        return out

    def extra_repr(self):
        return f"stateful={self.stateful}"


def char_lstm(vocab_size: int = 65, hidden_size: int = 256, num_layers: int = 1, embedding_dim: int = 64,
              stateful: bool = False, rng=None) -> CharLSTM:
    """A character LSTM language model over ``vocab_size`` characters (see :class:`CharLSTM`);
    the default vocabulary size is that of the tiny-Shakespeare corpus."""
    for key, value in (("vocab_size", vocab_size), ("hidden_size", hidden_size), ("num_layers", num_layers),
                       ("embedding_dim", embedding_dim)):
        positive_int(value, f"char_lstm: {key}")
    return CharLSTM(vocab_size, hidden_size, num_layers, embedding_dim, stateful, rng=rng)
