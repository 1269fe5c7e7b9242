"""Weight initialisers.

The ``*_`` functions fill a Parameter (or an array) in place, as in
``torch.nn.init``, and return it. Random draws come from ``rng``: a NumPy
Generator, an int seed, or ``None`` for the global generator
(``handgrad.manual_seed``). Draws are made on the host and copied into the
array, so the same seed gives the same weights on CPU and GPU.

fan_in / fan_out follow PyTorch: for a weight of shape (out, in, k_1, ..., k_m),
fan_in = in * k_1 * ... * k_m and fan_out = out * k_1 * ... * k_m.
"""
from __future__ import annotations

import math

import numpy as np

from .backend import array_module, get_default_dtype, get_rng


def _array(tensor):
    return tensor.data if hasattr(tensor, "grad") else tensor


def _fill(tensor, values: np.ndarray):
    arr = _array(tensor)
    arr[...] = array_module(arr).asarray(values, dtype=arr.dtype)
    return tensor


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape; needs at least 2 dimensions."""
    if len(shape) < 2:
        raise ValueError(f"init: fan_in/fan_out need a weight with >= 2 dimensions, got shape {tuple(shape)}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def uniform(shape, low, high, rng=None, dtype=None) -> np.ndarray:
    """A new array of U(low, high) draws."""
    return get_rng(rng).uniform(low, high, size=shape).astype(dtype or get_default_dtype())


def uniform_(tensor, low=0.0, high=1.0, rng=None):
    """Fill with U(low, high)."""
    return _fill(tensor, get_rng(rng).uniform(low, high, size=_array(tensor).shape))


def normal_(tensor, mean=0.0, std=1.0, rng=None):
    """Fill with N(mean, std^2): the classic ``weight_scale * randn`` initialisation."""
    return _fill(tensor, get_rng(rng).normal(mean, std, size=_array(tensor).shape))


def zeros_(tensor):
    """Fill with zeros."""
    _array(tensor)[...] = 0
    return tensor


def xavier_uniform_(tensor, gain=1.0, rng=None):
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)),
    which keeps the variance of activations and gradients roughly constant across layers."""
    fan_in, fan_out = fans(_array(tensor).shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, rng)


def xavier_normal_(tensor, gain=1.0, rng=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(_array(tensor).shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def calculate_gain(nonlinearity: str, param=None) -> float:
    """Recommended gain: 1 for linear/sigmoid, 5/3 for tanh, sqrt(2) for relu,
    sqrt(2 / (1 + a^2)) for leaky_relu with slope a (default 0.01)."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + a * a))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def _kaiming_std(shape, a, mode, nonlinearity):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """He et al. (2015): U(-b, b) with b = gain * sqrt(3 / fan), for ReLU-family networks."""
    std = _kaiming_std(_array(tensor).shape, a, mode, nonlinearity)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, rng)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """N(0, std^2) with std = gain / sqrt(fan)."""
    return normal_(tensor, 0.0, _kaiming_std(_array(tensor).shape, a, mode, nonlinearity), rng)
