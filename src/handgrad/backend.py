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


_DEVICES: dict = {}  # further device names: name -> (array module, is_array predicate)


def register_device(name: str, module, is_array) -> None:
    """Make a further device known by ``name``: ``module`` is its array module (what
    ``xp`` is in the kernels) and ``is_array(x)`` says whether ``x`` lives on it.

    handgrad itself knows ``'cpu'`` (NumPy) and ``'cuda'`` (CuPy); the test suite
    registers a strict stand-in for CuPy that runs on NumPy (``tests/strict_backend.py``).
    """
    _DEVICES[name] = (module, is_array)


def array_module(x):
    """Return ``numpy`` or ``cupy`` (or a registered device's module), whichever owns the array ``x``."""
    if type(x).__module__.startswith("cupy"):
        import cupy

        return cupy
    for module, is_array in _DEVICES.values():
        if is_array(x):
            return module
    return np


def device_module(device: str):
    """The array module for a device name: ``'cpu'`` -> numpy, ``'cuda'`` -> cupy.

    Raises ImportError naming the package to install when CuPy is missing, and
    RuntimeError when CuPy is installed but finds no usable CUDA GPU.
    """
    if device == "cpu":
        return np
    if device in ("cuda", "gpu"):
        try:
            import cupy
        except ImportError as exc:
            raise ImportError(f"device {device!r} needs CuPy: pip install cupy-cuda12x "
                              f"(the wheel matching your CUDA version)") from exc
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDARuntimeError: no driver, no device
            raise RuntimeError(f"device {device!r}: CuPy is installed but no CUDA GPU is usable ({exc})") from exc
        if count == 0:
            raise RuntimeError(f"device {device!r}: CuPy is installed but finds no CUDA GPU")
        return cupy
    if device in _DEVICES:
        return _DEVICES[device][0]
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def to_host(x) -> np.ndarray:
    """The array ``x`` in host memory, as a NumPy array: an explicit device -> host
    copy, or ``x`` itself (no copy) when it already is a NumPy array."""
    xp = array_module(x)
    return np.asarray(x) if xp is np else xp.asnumpy(x)


to_numpy = to_host  # the name the rest of the package has always used


def to_device(x, device: str):
    """The array ``x`` on ``device`` (``'cpu'``, ``'cuda'``): an explicit transfer, or
    ``x`` itself when it is already there."""
    xp = device_module(device)
    if xp is np:
        return to_host(x)
    return x if array_module(x) is xp else xp.asarray(to_host(x))


def to_scalar(x):
    """A one-element array (or a number) as a Python number: the explicit transfer a
    loss value or a finiteness test needs (one device synchronisation on a GPU)."""
    return to_host(x).item()


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
