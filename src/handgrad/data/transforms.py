"""Splits, subsets, one-hot labels and standardisation of whole arrays.

Random choices come from ``numpy.random.default_rng(seed)``, so the same seed
gives the same split on every machine. Selected samples keep their original
order.
"""
from __future__ import annotations

import numpy as np


def _check_pair(fn: str, X, y) -> None:
    if len(X) != len(y):
        raise ValueError(f"{fn}: X and y must have the same length, got {len(X)} and {len(y)}")


def train_val_split(X, y, val_fraction: float, seed: int = 0, stratify: bool = False):
    """Split ``(X, y)`` into ``(X_train, y_train), (X_val, y_val)``.

    ``round(val_fraction * N)`` samples go to validation, chosen at random from
    ``seed``; with ``stratify=True`` each class contributes
    ``round(val_fraction * N_c)`` samples, so class proportions are kept.
    """
    _check_pair("train_val_split", X, y)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"train_val_split: val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    y_arr = np.asarray(y)
    if stratify:
        groups = [np.flatnonzero(y_arr == c) for c in np.unique(y_arr)]
    else:
        groups = [np.arange(len(y_arr))]
    val = np.concatenate([g[rng.permutation(len(g))[: int(round(val_fraction * len(g)))]] for g in groups])
    val.sort()
    is_val = np.zeros(len(y_arr), dtype=bool)
    is_val[val] = True
    if is_val.all() or not is_val.any():
        raise ValueError(
            f"train_val_split: val_fraction {val_fraction} of {len(y_arr)} samples leaves an empty train or validation set"
        )
    train = np.flatnonzero(~is_val)
    return (X[train], y[train]), (X[val], y[val])


def subset(X, y, fraction: float, seed: int = 0):
    """A random ``fraction`` of ``(X, y)`` (at least one sample), in the original order."""
    _check_pair("subset", X, y)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"subset: fraction must be in (0, 1], got {fraction}")
    n = max(1, int(round(fraction * len(y))))
    keep = np.sort(np.random.default_rng(seed).permutation(len(y))[:n])
    return X[keep], y[keep]


def one_hot(y, num_classes: int, dtype=np.float32) -> np.ndarray:
    """Labels (...,) in [0, num_classes) as one-hot vectors (..., num_classes)."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"one_hot: labels must be integers, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"one_hot: labels must be in [0, {num_classes}), got range [{y.min()}, {y.max()}]")
    out = np.zeros(y.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return out


def mean_std(X, eps: float = 1e-8):
    """Mean and standard deviation of training data, shaped to broadcast against it.

    Images (N, C, H, W) get one statistic per channel, shape (1, C, 1, 1);
    other arrays (N, D...) one per feature, shape (1, D...). A standard
    deviation below ``eps`` (a constant feature) is replaced by 1 so that
    :func:`standardize` leaves the feature centred instead of dividing by zero.
    """
    X = np.asarray(X)
    axes = (0, 2, 3) if X.ndim == 4 else (0,)
    mean = X.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = X.std(axis=axes, keepdims=True, dtype=np.float64)
    std[std < eps] = 1.0
    return mean.astype(X.dtype), std.astype(X.dtype)


def standardize(X, mean, std):
    """(X - mean) / std, in the dtype of X. Compute ``mean, std`` on the training
    set with :func:`mean_std` and apply the same values to every split."""
    X = np.asarray(X)
    return ((X - mean) / std).astype(X.dtype, copy=False)
