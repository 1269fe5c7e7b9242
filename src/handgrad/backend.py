"""Array module, default dtype and random numbers.

Kernels never call ``numpy`` on data directly: they ask
``xp = array_module(x)`` and call ``xp.*`` so that the same code runs on CuPy
arrays on a GPU. Only NumPy is required; CuPy is used when it is installed and
the arrays are CuPy arrays.
"""
from __future__ import annotations

import numpy as np

_DTYPES = {"float32": np.float32, "float64": np.float64}
_default_dtype = np.dtype(np.float32)
_rng = np.random.default_rng()


def array_module(x):
    """Return ``numpy`` or ``cupy``, whichever module owns the array ``x``."""
    if type(x).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def device_module(device: str):
    """The array module for a device name: ``'cpu'`` -> numpy, ``'cuda'`` -> cupy."""
    if device == "cpu":
        return np
    if device in ("cuda", "gpu"):
        try:
            import cupy
        except ImportError as exc:
            raise ImportError(f"device {device!r} needs CuPy: pip install cupy-cuda12x (matching your CUDA)") from exc
        return cupy
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def get_default_dtype() -> np.dtype:
    """The floating dtype new parameters and data sets are created with (float32)."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the default floating dtype: ``'float32'`` or ``'float64'`` (or the NumPy types)."""
    global _default_dtype
    dt = np.dtype(dtype)
    if dt.name not in _DTYPES:
        raise ValueError(f"set_default_dtype: expected float32 or float64, got {dt.name}")
    _default_dtype = dt


def manual_seed(seed: int) -> None:
    """Seed the global generator used by initialisers and dropout when no ``rng`` is given."""
    global _rng
    _rng = np.random.default_rng(seed)


def get_rng(rng=None) -> np.random.Generator:
    """Resolve an ``rng`` argument: a Generator is used as is, an int seeds a new one,
    ``None`` means the global generator (see :func:`manual_seed`)."""
    if rng is None:
        return _rng
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def to_numpy(x) -> np.ndarray:
    """Copy an array to host memory (a no-op for NumPy arrays)."""
    if array_module(x) is np:
        return np.asarray(x)
    return x.get()
