"""Small data sets, models and a per-time-step loss for the Trainer tests."""
from pathlib import Path

import numpy as np

from handgrad import nn
from handgrad.data.text import read_corpus


def blobs(n=600, classes=3, dim=2, seed=0, spread=0.6):
    """Gaussian blobs around fixed centers: an easy, learnable classification set
    in float32; ``seed`` draws the samples."""
    centers = np.random.default_rng(1234).normal(0, 3, size=(classes, dim))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    X = (centers[y] + spread * rng.normal(size=(n, dim))).astype(np.float32)
    return X, y


SHAKESPEARE = [Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tinyshakespeare.txt",
               Path("/work/shared/data/tinyshakespeare.txt")]


def corpus_slice(size):
    """The start of the Shakespeare corpus (never copied into the repository); where it
    is not installed, English prose-and-code of the same kind of size from the Python
    standard library, so that the test always runs."""
    for path in SHAKESPEARE:
        if path.is_file():
            return read_corpus(path)[:size]
    import argparse

    return Path(argparse.__file__).read_text()[:size]


def mlp(dim=2, classes=3, hidden=32, dropout=0.0, seed=0):
    layers = [nn.Linear(dim, hidden, rng=seed), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, classes, rng=seed + 1))
    return nn.Sequential(*layers)


def make_trainer(lr=0.1, epochs=3, batch_size=32, dropout=0.0, n=600, loader_seed=0, adam=False, step_lr=False,
                 **kw):
    """A Trainer of a small MLP on blobs, with SGD (momentum 0.9) or Adam, optionally a
    StepLR schedule, and a shuffling DataLoader."""
    from handgrad.data import DataLoader
    from handgrad.optim import SGD, Adam, StepLR
    from handgrad.train import Trainer

    X, y = blobs(n)
    Xv, yv = blobs(200, seed=1)
    model = mlp(dropout=dropout)
    opt = Adam(model.parameters(), lr=lr) if adam else SGD(model.parameters(), lr=lr, momentum=0.9)
    if step_lr:
        kw["scheduler"] = StepLR(opt, step_size=1, gamma=0.5)
    loader = DataLoader((X, y), batch_size, shuffle=True, seed=loader_seed)
    kw.setdefault("progress", "none")
    # one process (not the default "auto"): runs are compared bitwise, also with a device's,
    # which trains in one process, and hand-written loops
    kw.setdefault("workers", 1)
    return Trainer(model, nn.CrossEntropyLoss(), opt, loader, (Xv, yv), epochs=epochs, batch_size=batch_size, **kw)


class PerStep(nn.Module):
    """A Linear layer applied at every time step: (N, T, D) -> (N, T, C)."""

    def __init__(self, d, c, seed=0):
        super().__init__()
        self.linear = nn.Linear(d, c, rng=seed)

    def forward(self, x):
        self._shape = x.shape
        out = self.linear(x.reshape(-1, x.shape[-1]))
        return out.reshape(*x.shape[:-1], -1)

    def backward(self, dout):
        return self.linear.backward(dout.reshape(-1, dout.shape[-1])).reshape(self._shape)


class StepCrossEntropy(nn.Module):
    """Cross-entropy averaged over every (n, t) of (N, T, C) logits and (N, T) labels."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction
        self.inner = nn.CrossEntropyLoss(reduction)

    def forward(self, logits, y):
        self._shape = logits.shape
        return self.inner(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def backward(self, dout=1.0):
        return self.inner.backward(dout).reshape(self._shape)
