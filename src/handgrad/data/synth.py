"""Generated two-class problems in the plane: two interleaved spirals or moons
(``synth``), and the course assignment's quadratic rule (``quadratic``).

No linear classifier separates them; a small MLP with a hidden layer does,
which makes them the smallest data set on which one can watch a network learn
a non-linear decision boundary.

Spirals: class k in {0, 1}, radius r = t in [0.05, 1], angle
theta = 3 pi t + k pi, point r (cos theta, sin theta) plus Gaussian noise
of standard deviation ``noise``.
Moons: class 0 is the upper half circle (cos a, sin a), class 1 the lower
half circle (1 - cos a, 0.5 - sin a), a in [0, pi], plus noise.

Samples are drawn from ``seed``: the same seed gives the same points, and the
validation split (the Dataset's ``test``) is a stratified split from the same seed.

Quadratic: x ~ N(0, I_2), label 1 where the quadratic form exceeds a threshold,

    y = [x^T Q x > 0.6],   Q = [[1, 0.5], [1, 0.2]],
    i.e. x1^2 + 1.5 x1 x2 + 0.2 x2^2 > 0.6,

with 60,000 training and 10,000 test points (the assignment's sizes), drawn
from ``seed``. No noise: the rule holds for every point. The boundary is the
level set of the symmetric part [[1, 0.75], [0.75, 0.2]], whose eigenvalues
(1.2 +- sqrt(2.89)) / 2 = 1.45 and -0.25 have opposite signs: a hyperbola,
class 0 the band around the origin between its two branches. About 45.5% of the
points fall in class 1.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_default_dtype
from .datasets import Dataset, register_dataset
from .transforms import train_val_split

SHAPES = ("spirals", "moons")


def make_synth(n_samples: int = 1000, noise: float = 0.1, shape: str = "spirals", seed: int = 0):
    """``X`` (n_samples, 2) float and ``y`` (n_samples,) int64, half of each class."""
    if shape not in SHAPES:
        raise ValueError(f"synth: shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    if n_samples < 4:
        raise ValueError(f"synth: n_samples must be at least 4, got {n_samples}")
    if noise < 0:
        raise ValueError(f"synth: noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % 2
    t = rng.uniform(0.0, 1.0, n_samples)
    if shape == "spirals":
        r = 0.05 + 0.95 * t
        theta = 3 * np.pi * t + np.pi * y
        X = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    else:
        a = np.pi * t
        upper = np.stack([np.cos(a), np.sin(a)], axis=1)
        lower = np.stack([1 - np.cos(a), 0.5 - np.sin(a)], axis=1)
        X = np.where(y[:, None] == 0, upper, lower)
    X = X + rng.normal(0.0, noise, X.shape)
    order = rng.permutation(n_samples)
    return X[order].astype(get_default_dtype()), y[order].astype(np.int64)


@register_dataset("synth")
def load_synth(root=None, seed=0, n_samples=1000, noise=0.1, shape="spirals", val_fraction=0.2):
    """Two interleaved spirals (or moons), split into train and validation."""
    X, y = make_synth(n_samples, noise, shape, seed)
    train, val = train_val_split(X, y, val_fraction, seed=seed, stratify=True)
    return Dataset(name="synth", train=train, test=val, classes=["class 0", "class 1"], input_shape=(2,))


QUADRATIC_Q = np.array([[1.0, 0.5], [1.0, 0.2]])
QUADRATIC_THRESHOLD = 0.6


def quadratic_labels(X) -> np.ndarray:
    """y = [x^T Q x > 0.6] for each row x of X (N, 2), computed in float64, as int64."""
    X = np.asarray(X, dtype=np.float64)
    return (np.einsum("ni,ij,nj->n", X, QUADRATIC_Q, X) > QUADRATIC_THRESHOLD).astype(np.int64)


def make_quadratic(n_samples: int = 1000, seed: int = 0, rng=None):
    """``X`` (n_samples, 2) ~ N(0, I) and ``y = quadratic_labels(X)``; ``rng`` continues a generator.

    The labels are computed from X as stored (after the cast to the default dtype),
    so the rule holds exactly for every returned point.
    """
    if n_samples < 1:
        raise ValueError(f"quadratic: n_samples must be at least 1, got {n_samples}")
    rng = np.random.default_rng(seed) if rng is None else rng
    X = rng.standard_normal((n_samples, 2)).astype(get_default_dtype())
    return X, quadratic_labels(X)


@register_dataset("quadratic")
def load_quadratic(root=None, seed=0, n_train=60000, n_test=10000):
    """The assignment's quadratic-rule data set: ``n_train`` training and ``n_test`` test points."""
    rng = np.random.default_rng(seed)
    train = make_quadratic(n_train, rng=rng)
    test = make_quadratic(n_test, rng=rng)
    return Dataset(name="quadratic", train=train, test=test, classes=["x'Qx <= 0.6", "x'Qx > 0.6"], input_shape=(2,))
