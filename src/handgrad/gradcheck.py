"""Gradient checking: compare hand-derived gradients with finite differences.

For a function f and an upstream gradient ``dout``, the scalar
L(x) = sum(f(x) * dout) has dL/dx = (what ``backward(dout)`` returns). Each
coordinate is estimated by centred differences::

    dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / (2 h)

whose error is O(h^2) from truncation plus O(eps |L| / h) from rounding; in
float64 with h = 1e-5 both are around 1e-10, so a correct backward pass agrees
to about 1e-8 relative error and a wrong one is off by O(1).

* :func:`check_op` checks a kernel pair ``f_forward``/``f_backward`` from ``handgrad.ops``;
* :func:`check_module` checks a layer, a model or a loss module;
* :func:`library_cases` lists one :class:`GradCase` per layer configuration in
  the library; ``handgrad gradcheck`` runs them all.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Union

import numpy as np

from . import backend, nn

TOLERANCE = 1e-6


def numerical_gradient(f, x, dout=1.0, h: float = 1e-5) -> np.ndarray:
    """Centred-difference estimate of d/dx sum(f(x) * dout).

    ``x`` (a float64 NumPy array) is perturbed in place, one element at a time,
    and restored, so ``f`` may read it through any reference (a Parameter's
    ``data``, a closure). Returns an array of x's shape.
    """
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + h
        plus = float(np.sum(np.asarray(f(x)) * dout))
        x[idx] = old - h
        minus = float(np.sum(np.asarray(f(x)) * dout))
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def rel_error(a, b, tiny: float = 1e-12) -> float:
    """max_i |a_i - b_i| / max(max_i (|a_i| + |b_i|), tiny).

    The error is relative to the tensor's largest entry, not to each entry: an
    entry that is nearly zero is compared on the scale of the whole gradient,
    where the rounding noise of a finite difference is negligible.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes {a.shape} and {b.shape} differ")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a) + np.abs(b))), tiny))


@contextmanager
def _global_seed(seed: int):
    """Seed the global generator for the block, then put the caller's generator back."""
    saved = backend.get_rng()
    backend.manual_seed(seed)
    try:
        yield
    finally:
        backend._rng = saved


def _random_dout(out, rng):
    out = np.asarray(out)
    return float(rng.standard_normal()) if out.ndim == 0 else rng.standard_normal(out.shape)


def check_op(forward, backward, inputs: dict, seed: int = 0, h: float = 1e-5, scale: str = "tensor") -> dict:
    """Check a kernel pair: ``forward(*inputs) -> (out, cache)``, ``backward(dout, cache) -> grads``.

    ``inputs`` maps names to arrays in the order ``forward`` takes them. ``backward``
    returns the gradients of the first inputs in that order (one array, or a tuple;
    ``None`` entries, e.g. for an absent bias, are skipped); the remaining inputs
    (labels, settings) are held fixed. Floating inputs are copied to float64.
    Pass settings with a lambda or ``functools.partial``.

    Returns ``{input name: error}``: with ``scale="tensor"``,
    ``rel_error(analytic, numerical)`` of each input's gradient; with
    ``scale="op"``, max_i |analytic_i - numerical_i| over the largest
    |analytic_i| + |numerical_i| of *every* input's gradients. The second is for
    ops whose inputs matter on very different scales (an input behind saturated
    gates may have gradients 1e-8 of the others', all rounding noise of the
    finite differences): each error is then judged on the op's scale, as
    ``rel_error`` judges an entry on its tensor's.
    """
    if scale not in ("tensor", "op"):
        raise ValueError(f"check_op: scale must be 'tensor' or 'op', got {scale!r}")
    rng = np.random.default_rng(seed)
    values = {k: (np.array(v, dtype=np.float64) if np.asarray(v).dtype.kind == "f" else v) for k, v in inputs.items()}
    out, cache = forward(*values.values())
    dout = _random_dout(out, rng)
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    pairs = {}
    for name, grad in zip(values, grads):
        if grad is not None:
            numeric = numerical_gradient(lambda _: forward(*values.values())[0], values[name], dout, h)
            pairs[name] = (np.asarray(grad, dtype=np.float64), numeric)
    if scale == "tensor":
        return {name: rel_error(a, n) for name, (a, n) in pairs.items()}
    largest = max((float(np.max(np.abs(a) + np.abs(n))) for a, n in pairs.values() if a.size), default=0.0)
    return {name: float(np.max(np.abs(a - n), initial=0.0)) / max(largest, 1e-12) for name, (a, n) in pairs.items()}


def check_module(module, x, target=None, seed: int = 0, h: float = 1e-5) -> dict:
    """Check a module's backward pass: dL/d(input) and every parameter gradient.

    The module's forward returns one array (or, for a loss, a float).

    The module is cast to float64 in place, ``x`` (and a floating ``target``) is
    copied to float64. Forward runs as ``module(x)``, or ``module(x, target)`` for a
    loss, with the global generator seeded by ``seed`` before every call, so
    layers that draw random numbers (dropout) use the same mask each time; the
    caller's generator is restored afterwards. The upstream gradient dout is
    random (seeded), L = sum(out * dout).

    Returns ``{"input": error, "<parameter name>": error, ...}`` with
    ``rel_error(analytic, numerical)``; the input is skipped when ``x`` is not
    floating (class indices into an embedding).
    """
    rng = np.random.default_rng(seed)
    module.astype(np.float64)
    x = np.array(x, dtype=np.float64) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
    if target is not None and np.asarray(target).dtype.kind == "f":
        target = np.array(target, dtype=np.float64)

    def run(_=None):
        with _global_seed(seed):
            return module(x) if target is None else module(x, target)

    dout = _random_dout(run(), rng)
    module.zero_grad()
    dx = module.backward(dout)
    report = {}
    if x.dtype.kind == "f":
        report["input"] = rel_error(dx, numerical_gradient(run, x, dout, h))
    for name, p in module.named_parameters():
        report[name] = rel_error(p.grad, numerical_gradient(run, p.data, dout, h))
    return report


@dataclass(frozen=True)
class GradCase:
    """One gradient check of the library.

    ``name`` starts with the layer's class name (used by ``--layer``), then says
    the variant. ``module`` builds the module; ``x`` is the input shape (standard
    normal draws) or a function ``rng -> array``; ``target`` (losses) is a
    function ``rng -> array``; ``train`` picks train or eval mode.
    """

    name: str
    module: Callable[[], nn.Module]
    x: Union[tuple, Callable[[np.random.Generator], np.ndarray]]
    target: Union[Callable[[np.random.Generator], np.ndarray], None] = None
    train: bool = True

    @property
    def layer(self) -> str:
        return self.name.split()[0]

    def run(self, seed: int = 0) -> dict:
        """Build the module and its input from ``seed`` and return :func:`check_module`'s report."""
        rng = np.random.default_rng(seed)
        with _global_seed(seed):
            module = self.module().train(self.train)
        x = self.x(rng) if callable(self.x) else rng.standard_normal(self.x)
        target = self.target(rng) if self.target is not None else None
        return check_module(module, x, target, seed=seed)


def labels(n: int, classes: int):
    """A target factory: ``n`` integer labels in [0, classes)."""
    return lambda rng: rng.integers(0, classes, size=n)


def distributions(n: int, classes: int):
    """A target factory: ``n`` probability rows over ``classes`` (Dirichlet draws)."""
    return lambda rng: rng.dirichlet(np.ones(classes), size=n)


def normal(*shape: int):
    """An input or target factory: standard normal draws of ``shape``."""
    return lambda rng: rng.standard_normal(shape)


def library_cases() -> list:
    """Every layer and loss of the library, each in the configurations worth checking.

    A new layer adds one ``GradCase`` line per configuration (keep inputs small:
    each element costs two forward passes). ``tests/test_gradcheck.py`` fails for
    a Module exported from ``handgrad.nn`` without a case, and runs every case.
    """
    return [
        GradCase("Linear 2-D", lambda: nn.Linear(5, 4), (3, 5)),
        GradCase("Linear 2-D no bias", lambda: nn.Linear(5, 4, bias=False), (3, 5)),
        GradCase("Linear 4-D", lambda: nn.Linear(12, 4), (3, 2, 3, 2)),
        GradCase("Linear 4-D no bias", lambda: nn.Linear(12, 4, bias=False), (3, 2, 3, 2)),
        GradCase("ReLU", nn.ReLU, (4, 5)),
        GradCase("LeakyReLU slope=0.1", lambda: nn.LeakyReLU(0.1), (4, 5)),
        GradCase("Sigmoid", nn.Sigmoid, (4, 5)),
        GradCase("Tanh", nn.Tanh, (4, 5)),
        GradCase("Softmax dim=-1", nn.Softmax, (3, 5)),
        GradCase("Softmax dim=1 3-D", lambda: nn.Softmax(dim=1), (2, 4, 3)),
        GradCase("LogSoftmax dim=-1", nn.LogSoftmax, (3, 5)),
        GradCase("LogSoftmax dim=0", lambda: nn.LogSoftmax(dim=0), (4, 3)),
        GradCase("Flatten", nn.Flatten, (2, 3, 2, 2)),
        GradCase("Dropout p=0.3 train", lambda: nn.Dropout(0.3), (4, 6)),
        GradCase("Dropout p=0.3 eval", lambda: nn.Dropout(0.3), (4, 6), train=False),
        GradCase("Conv2d stride=2 padding=same dilation=(1,2)", lambda: nn.Conv2d(
            2, 3, (3, 2), stride=2, padding="same", dilation=(1, 2)), (2, 2, 5, 6)),
        GradCase("Conv1d padding=1 no bias", lambda: nn.Conv1d(2, 3, 3, padding=1, bias=False), (2, 2, 7)),
        GradCase("MaxPool2d 3x3 stride 2 padding 1", lambda: nn.MaxPool2d(3, 2, 1), (2, 2, 5, 6)),
        GradCase("AvgPool2d 2x2 padding=same", lambda: nn.AvgPool2d(2, padding="same"), (2, 2, 5, 5)),
        GradCase("MaxPool1d 3 stride 1", lambda: nn.MaxPool1d(3, 1), (2, 2, 7)),
        # uniform inputs: a standard normal x would equal the seeded dout, and for
        # dout = x batch norm's dL/dx is exactly zero
        GradCase("BatchNorm1d train", lambda: nn.BatchNorm1d(3), lambda rng: rng.uniform(-2, 2, (4, 3))),
        GradCase("BatchNorm1d train 3-D", lambda: nn.BatchNorm1d(2), lambda rng: rng.uniform(-2, 2, (3, 2, 4))),
        GradCase("BatchNorm2d train", lambda: nn.BatchNorm2d(2), lambda rng: rng.uniform(-2, 2, (3, 2, 2, 3))),
        GradCase("BatchNorm2d eval", lambda: nn.BatchNorm2d(2), (3, 2, 2, 3), train=False),
        GradCase("Dropout2d p=0.5 train", lambda: nn.Dropout2d(0.5), (3, 4, 2, 2)),
        GradCase("RandomShiftFlip shift=2 train", lambda: nn.RandomShiftFlip(2), (4, 2, 5, 6)),
        GradCase("Sequential MLP", lambda: nn.Sequential(
            nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)), (5, 4)),
        GradCase("CrossEntropyLoss labels mean", nn.CrossEntropyLoss, (6, 4), labels(6, 4)),
        GradCase("CrossEntropyLoss labels sum", lambda: nn.CrossEntropyLoss("sum"), (6, 4), labels(6, 4)),
        GradCase("CrossEntropyLoss distributions", nn.CrossEntropyLoss, (6, 4), distributions(6, 4)),
        GradCase("MSELoss mean", nn.MSELoss, (3, 4), normal(3, 4)),
        GradCase("MSELoss sum", lambda: nn.MSELoss("sum"), (3, 4), normal(3, 4)),
        GradCase("Embedding", lambda: nn.Embedding(7, 3), lambda rng: rng.integers(0, 7, size=(3, 4))),
        GradCase("RNN tanh 2 layers", lambda: HiddenStates(nn.RNN(3, 4, num_layers=2)), (2, 3, 3)),
        GradCase("LSTM 1 layer", lambda: HiddenStates(nn.LSTM(3, 4)), (2, 4, 3)),
        GradCase("LSTM 2 layers", lambda: HiddenStates(nn.LSTM(3, 4, num_layers=2)), (2, 3, 3)),
        GradCase("GRU 2 layers", lambda: HiddenStates(nn.GRU(3, 4, num_layers=2)), (2, 3, 3)),
        GradCase("GatedRNN", lambda: HiddenStates(nn.GatedRNN(3, 4)), (2, 4, 3)),
        GradCase("AttentionRNN k=2", lambda: HiddenStates(nn.AttentionRNN(3, 4, k=2)), (2, 4, 3)),
        GradCase("AttentionRNN k=inf", lambda: HiddenStates(nn.AttentionRNN(3, 4, k=math.inf)), (2, 4, 3)),
        GradCase("TemporalCrossEntropyLoss", nn.TemporalCrossEntropyLoss, (2, 3, 4),
                 lambda rng: rng.integers(0, 4, size=(2, 3))),
    ]


class HiddenStates(nn.Module):
    """A recurrent layer seen as a function of its input alone: returns the hidden
    states (N, T, H) and back-propagates into them (the final state is not an output
    here; the recurrent layers' own tests check its gradient too)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]

    def backward(self, dout):
        return self.layer.backward(dout)
