"""A character corpus for language modelling: vocabulary, encoding, splits and batches.

    text --CharVocab--> ids (int64) --split_ids--> train ids | held-out ids (by position)
    ids  --sequence_pairs--> (X, Y): non-overlapping chunks, Y = X shifted by one
    (X, Y) --stream_ids--> ids: the contiguous text behind the chunks again
    ids  --StreamLoader--> (x, y) batches in stream order for truncated BPTT

For truncated back-propagation through time the ids are cut into ``batch_size``
parallel streams; batch j holds characters [j T, (j + 1) T) of every stream, so
row r of batch j + 1 continues row r of batch j and a model may carry its final
(h, c) from one batch to the next (see ``handgrad.models.char_lstm``).

Registered as the data set ``text``: ``load_dataset("text", text_file=PATH)``, a
*sequential* :class:`~handgrad.data.datasets.Dataset` (its chunks continue each
other). ``handgrad train`` (:func:`handgrad.train.build.split_data`) therefore
splits it by position, never at random: the last ``val_fraction`` of the training
text is the validation text, and a stateful model trains on a :class:`StreamLoader`
of the rest and is evaluated on streams of the validation and test text with its
state carried from chunk to chunk (losses in nats per character).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .datasets import Dataset, register_dataset
from .loader import BatchSource


class CharVocab:
    """The characters of a corpus, sorted, with their ids: ``encode`` / ``decode``."""

    def __init__(self, chars):
        self.chars = list(chars)
        if not self.chars:
            raise ValueError("CharVocab: the vocabulary is empty (is the corpus empty?)")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("CharVocab: the characters must be distinct")
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        if not text:
            raise ValueError("CharVocab: cannot build a vocabulary from an empty text")
        return cls(sorted(set(text)))

    def __len__(self):
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Ids (int64) of the characters of ``text``; a character outside the vocabulary is an error."""
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            raise ValueError(f"CharVocab: characters not in the vocabulary: {''.join(unknown)!r} "
                             f"(the vocabulary has {len(self)} characters)")
        return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def read_corpus(path) -> str:
    """The text of a UTF-8 file; an empty file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text corpus {path}: no such file")
    text = path.read_text(encoding="utf-8")
    if not text:
        raise ValueError(f"text corpus {path}: the file is empty")
    return text


def split_ids(ids: np.ndarray, val_fraction: float = 0.1):
    """(train, validation): the first 1 - val_fraction of the ids and the rest (contiguous,
    so no validation text ever appears in training)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"split_ids: val_fraction must be in (0, 1), got {val_fraction!r}")
    cut = int(round(len(ids) * (1 - val_fraction)))
    return ids[:cut], ids[cut:]


def sequence_pairs(ids: np.ndarray, seq_len: int):
    """Non-overlapping chunks (X, Y), each (M, seq_len), with Y[m, t] = X[m, t + 1]:
    the target of every position is the next character."""
    if seq_len <= 0:
        raise ValueError(f"sequence_pairs: seq_len must be positive, got {seq_len!r}")
    count = (len(ids) - 1) // seq_len
    if count == 0:
        raise ValueError(f"sequence_pairs: {len(ids)} characters are too few for one sequence of {seq_len} (+1)")
    usable = count * seq_len
    return ids[:usable].reshape(count, seq_len), ids[1: usable + 1].reshape(count, seq_len)


def stream_ids(pairs) -> np.ndarray:
    """The contiguous ids behind the chunks ``(X, Y)`` of :func:`sequence_pairs`:
    X row after row, then the last target (inverts ``sequence_pairs`` up to the
    fewer than seq_len ids it leaves off at the end)."""
    X, Y = pairs
    return np.concatenate([np.ravel(X), np.ravel(Y)[-1:]])


class StreamLoader(BatchSource):
    """(x, y) batches (batch_size, seq_len) in stream order for truncated BPTT.

    The ids are cut into ``batch_size`` streams of equal length L (``inputs`` and
    ``targets``, each (batch_size, L), targets = inputs shifted by one character);
    batch j is x = inputs[:, j T: (j + 1) T], y = targets[:, j T: (j + 1) T]. Every
    epoch yields the same batches in the same order (the order is the point).
    ``drop_last=True`` (training) serves only whole chunks of T; ``drop_last=False``
    (evaluation) also serves the shorter last chunk, so that every position of the
    streams is scored.

    Has the ``__len__`` / ``state_dict`` / ``load_state_dict`` a Trainer expects of a
    loader. Nothing in it changes between epochs, so its state is its layout; the
    Trainer counts the batches done itself and saves the model's carried (h, c) in
    its checkpoint (see :class:`handgrad.train.Trainer`).

    ``continues = True``: row r of each batch continues row r of the one before, so
    a :class:`~handgrad.nn.Stateful` model carries its state across them.
    """

    continues = True

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int, drop_last: bool = True):
        if batch_size <= 0 or seq_len <= 0:
            raise ValueError(f"StreamLoader: batch_size and seq_len must be positive, got {batch_size}, {seq_len}")
        length = (len(ids) - 1) // batch_size
        need = seq_len if drop_last else 1
        if length < need:
            raise ValueError(f"StreamLoader: {len(ids)} characters are too few for {batch_size} streams "
                             f"of at least {need} (+1) characters")
        self.batch_size, self.seq_len, self.drop_last = batch_size, seq_len, bool(drop_last)
        self.inputs = ids[: batch_size * length].reshape(batch_size, length)
        self.targets = ids[1: batch_size * length + 1].reshape(batch_size, length)

    def __len__(self):
        length = self.inputs.shape[1]
        return length // self.seq_len if self.drop_last else -(-length // self.seq_len)

    def __iter__(self):
        for j in range(len(self)):
            cols = slice(j * self.seq_len, (j + 1) * self.seq_len)
            yield self.inputs[:, cols], self.targets[:, cols]

    def state_dict(self) -> dict:
        """The layout ``{"batch_size", "seq_len", "length"}`` (L, characters per stream)."""
        return {"batch_size": self.batch_size, "seq_len": self.seq_len, "length": int(self.inputs.shape[1])}

    def load_state_dict(self, state: dict) -> None:
        """Check that ``state`` describes this loader's layout: a checkpoint of other
        streams cannot continue on these."""
        if state != self.state_dict():
            raise ValueError(f"StreamLoader.load_state_dict: the saved streams {state} are not these "
                             f"streams {self.state_dict()} (a different corpus, batch size or seq_len?)")

    def __repr__(self):
        return (f"StreamLoader(batch_size={self.batch_size}, seq_len={self.seq_len}, "
                f"length={self.inputs.shape[1]}, drop_last={self.drop_last})")


@register_dataset("text")
def load_text(root=None, seed: int = 0, text_file=None, seq_len: int = 50, val_fraction: float = 0.1) -> Dataset:
    """A character corpus as a sequential Dataset of next-character prediction.

    ``train`` = :func:`sequence_pairs` of the first 1 - val_fraction of the text,
    ``test`` = those of the rest (held out: never seen in training); X and y are
    int64 (M, seq_len), ``classes`` the vocabulary's characters (from the whole
    corpus, so that every held-out character has an id), ``input_shape`` (seq_len,).
    ``sequential=True``: the chunks continue each other (:func:`stream_ids` gives
    the text back). ``root`` and ``seed`` are unused: the split is by position.
    """
    if text_file is None:
        raise ValueError("data set 'text' needs a corpus: text_file=PATH (handgrad train --text-file PATH)")
    if not (isinstance(seq_len, int) and seq_len > 0):
        raise ValueError(f"data set 'text': seq_len must be a positive integer, got {seq_len!r}")
    text = read_corpus(text_file)
    vocab = CharVocab.from_text(text)
    train_ids, test_ids = split_ids(vocab.encode(text), val_fraction)
    return Dataset("text", sequence_pairs(train_ids, seq_len), sequence_pairs(test_ids, seq_len),
                   list(vocab.chars), (seq_len,), sequential=True)
