"""Small stand-ins for handgrad.optim.SGD and handgrad.data.DataLoader, used by the
Trainer tests until those land in main (test helpers only, not library code)."""
import numpy as np

from handgrad import nn


class PlainSGD:
    """w <- w - lr * (grad + velocity momentum); enough to drive the Trainer."""

    def __init__(self, params, lr, momentum=0.0):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.zero_grad()

    def step(self):
        for p, v in zip(self.params, self.velocity):
            v *= self.momentum
            v -= self.lr * p.grad
            p.data += v

    def state_dict(self):
        return {"lr": self.lr, "velocity": [v.copy() for v in self.velocity]}

    def load_state_dict(self, state):
        self.lr = state["lr"]
        self.velocity = [np.array(v) for v in state["velocity"]]


class ShuffledLoader:
    """Batches of (X, y) in a fresh permutation each epoch, drawn from its own generator."""

    def __init__(self, data, batch_size, seed=0):
        self.X, self.y = data
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return -(-len(self.X) // self.batch_size)

    def __iter__(self):
        order = self.rng.permutation(len(self.X))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.X[idx], self.y[idx]

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["rng"]


def blobs(n=600, classes=3, dim=2, seed=0, spread=0.6):
    """Gaussian blobs around fixed centers: an easy, learnable classification set
    in float32; ``seed`` draws the samples."""
    centers = np.random.default_rng(1234).normal(0, 3, size=(classes, dim))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    X = (centers[y] + spread * rng.normal(size=(n, dim))).astype(np.float32)
    return X, y


def mlp(dim=2, classes=3, hidden=32, dropout=0.0, seed=0):
    layers = [nn.Linear(dim, hidden, rng=seed), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, classes, rng=seed + 1))
    return nn.Sequential(*layers)


def make_trainer(lr=0.1, epochs=3, batch_size=32, dropout=0.0, n=600, loader_seed=0, **kw):
    from handgrad.train import Trainer

    X, y = blobs(n)
    Xv, yv = blobs(200, seed=1)
    model = mlp(dropout=dropout)
    opt = PlainSGD(model.parameters(), lr=lr, momentum=0.9)
    loader = ShuffledLoader((X, y), batch_size, seed=loader_seed)
    kw.setdefault("progress", "none")
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
        self.inner = nn.CrossEntropyLoss(reduction)

    def forward(self, logits, y):
        self._shape = logits.shape
        return self.inner(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def backward(self, dout=1.0):
        return self.inner.backward(dout).reshape(self._shape)
