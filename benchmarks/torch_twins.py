"""The zoo models' twins in PyTorch, for benchmarks/compare.py: same layers, same
shapes, same names where state dicts are compared. Only the benchmark imports this."""
from __future__ import annotations

import torch

t = torch.nn


def mlp():
    return t.Sequential(t.Flatten(), t.Linear(784, 256), t.ReLU(), t.Linear(256, 256), t.ReLU(), t.Linear(256, 10))


def mlp200():
    return t.Sequential(t.Flatten(), t.Linear(784, 200), t.ReLU(), t.Linear(200, 10))


class CharLSTM(t.Module):
    """handgrad.models.char_lstm's twin: Embedding -> 1-layer LSTM -> Linear, same names."""

    def __init__(self, vocab=65, embedding_dim=64, hidden=128):
        super().__init__()
        self.embedding = t.Embedding(vocab, embedding_dim)
        self.lstm = t.LSTM(embedding_dim, hidden, batch_first=True)
        self.decoder = t.Linear(hidden, vocab)

    def forward(self, x):
        return self.decoder(self.lstm(self.embedding(x))[0])


def lenet5():
    return t.Sequential(
        t.Conv2d(1, 6, 5), t.MaxPool2d(2), t.ReLU(), t.Conv2d(6, 16, 5), t.MaxPool2d(2), t.ReLU(),
        t.Flatten(), t.Linear(256, 120), t.ReLU(), t.Linear(120, 84), t.ReLU(), t.Linear(84, 10),
    )


def small_cnn():
    return t.Sequential(
        t.Conv2d(1, 8, 3, padding="same"), t.MaxPool2d(2), t.ReLU(),
        t.Conv2d(8, 8, 3, padding="same"), t.MaxPool2d(2), t.ReLU(),
        t.Flatten(), t.Linear(392, 32), t.ReLU(), t.Linear(32, 10),
    )


class RandomShiftFlip(t.Module):
    """handgrad's RandomShiftFlip: each image flipped left-right with probability 1/2 and
    moved by up to ``shift`` pixels each way, zeros filling in (training mode only)."""

    def __init__(self, shift: int = 1, flip: bool = True):
        super().__init__()
        self.shift, self.flip = shift, flip

    def forward(self, x):
        if not self.training:
            return x
        n, _, h, w = x.shape
        s = self.shift
        if self.flip:
            x = torch.where((torch.rand(n) < 0.5)[:, None, None, None], x.flip(-1), x)
        rows = s + torch.randint(-s, s + 1, (n, 1)) + torch.arange(h)
        cols = s + torch.randint(-s, s + 1, (n, 1)) + torch.arange(w)
        padded = t.functional.pad(x, (s, s, s, s))
        return padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None],
                      rows[:, None, :, None], cols[:, None, None, :]]


def cnn(flip: bool = True, shift: int = 1, dropout: float = 0.3):
    """handgrad.models.cnn()'s twin: flips and shifts, three conv/pool/BN/ReLU blocks, dropout."""
    layers, channels = [RandomShiftFlip(shift, flip)] if flip or shift else [], 1
    for w in (24, 48, 64):
        layers += [t.Conv2d(channels, w, 3, padding="same", bias=False), t.MaxPool2d(2), t.BatchNorm2d(w), t.ReLU()]
        channels = w
    return t.Sequential(*layers, t.Flatten(), t.Linear(576, 96), t.ReLU(), t.Dropout(dropout), t.Linear(96, 10))


def cnn_no_flip():
    """handgrad.models.cnn(flip=False, shift=0)'s twin (for the GPU comparison)."""
    return cnn(flip=False, shift=0)


def char_lstm():
    return CharLSTM()
