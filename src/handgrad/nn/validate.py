"""Input checks shared by the layers and losses: each error names the layer, what it
expected and what it got. Checks of plain values (positive sizes, class labels) are
in :mod:`handgrad.validate`."""
from __future__ import annotations

import math

from ..backend import array_module, to_scalar


def _check_array(layer, x) -> None:
    if not hasattr(x, "ndim"):  # a list or a number: say so, rather than fail on .ndim
        raise TypeError(f"{type(layer).__name__}: expected an array input (np.asarray(...)), got {type(x).__name__}")


def check_rank(layer, x, ranks, layout: str) -> None:
    """Raise ValueError unless ``x.ndim`` is in ``ranks`` (TypeError unless ``x`` is an array)."""
    _check_array(layer, x)
    if x.ndim not in ranks:
        raise ValueError(
            f"{type(layer).__name__}: expected a {' or '.join(f'{r}-D' for r in ranks)} input {layout}, "
            f"got shape {tuple(x.shape)}"
        )


def check_min_rank(layer, x, rank: int, layout: str) -> None:
    _check_array(layer, x)
    if x.ndim < rank:
        raise ValueError(f"{type(layer).__name__}: expected an input {layout} of rank >= {rank}, got shape {tuple(x.shape)}")


def check_features(layer, x, expected: int) -> None:
    """Raise ValueError unless the per-sample size of ``x`` equals ``expected``."""
    got = math.prod(x.shape[1:])
    if got != expected:
        raise ValueError(
            f"{type(layer).__name__}: expected {expected} input features per sample, "
            f"got {got} (input shape {tuple(x.shape)})"
        )


def check_channels(layer, x, expected: int) -> None:
    if x.shape[1] != expected:
        raise ValueError(
            f"{type(layer).__name__}: expected {expected} input channels, got {x.shape[1]} (input shape {tuple(x.shape)})"
        )


def check_reduction(loss, reduction) -> None:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"{type(loss).__name__}: reduction must be 'mean' or 'sum', got {reduction!r}")


def check_finite(layer, name: str, x) -> None:
    """Raise ValueError if ``x`` holds NaN or inf (``name``: what x is, e.g. "logits")."""
    if not to_scalar(array_module(x).isfinite(x).all()):
        raise ValueError(f"{type(layer).__name__}: {name} contain NaN or inf")
