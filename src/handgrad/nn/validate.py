"""Input checks shared by the layers: each error names the layer, what it expected and what it got."""
from __future__ import annotations

import math


def check_rank(layer, x, ranks, layout: str) -> None:
    """Raise ValueError unless ``x.ndim`` is in ``ranks``."""
    if x.ndim not in ranks:
        raise ValueError(
            f"{type(layer).__name__}: expected a {' or '.join(f'{r}-D' for r in ranks)} input {layout}, "
            f"got shape {tuple(x.shape)}"
        )


def check_min_rank(layer, x, rank: int, layout: str) -> None:
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
