"""A strict stand-in for CuPy, for tests only: NumPy underneath, but its arrays are
not NumPy arrays, so device discipline is checked on a machine without a GPU.

What it enforces, as CuPy does (or more strictly):

* ``numpy.*`` on a device array fails: ``np.asarray(a)`` raises "Implicit conversion
  to a NumPy array is not allowed" (``__array__``), NumPy ufuncs refuse it
  (``__array_ufunc__ = None``), other NumPy functions raise (``__array_function__``);
* a host (NumPy) array mixed into a device computation fails: as an operand, an
  index or an argument of an ``xp.*`` function; only ``xp.asarray`` / ``xp.array``
  take host data (the explicit host -> device transfer);
* a device array never becomes a Python number or truth value implicitly:
  ``float(a)``, ``int(a)``, ``bool(a)``, ``if a:`` raise; explicit transfers are
  ``a.get()``, ``xp.asnumpy(a)``, ``a.item()`` (and so ``backend.to_host`` /
  ``backend.to_scalar``);
* reductions return 0-d device arrays, not NumPy scalars (``a.sum()``, ``xp.max(a)``);
* there is no ``xp.random``: handgrad draws random numbers on the host and moves them;
* where CuPy's signature is narrower than NumPy's, so is this one's:
  ``xp.lib.stride_tricks.as_strided(x, shape, strides)`` (no ``writeable``, no ``subok``).

``register()`` makes it the device ``"strict"``: ``Module.to("strict")``,
``backend.device_module("strict")`` and ``backend.array_module(a)`` then work.
"""
from __future__ import annotations

import types

import numpy as np

from handgrad import backend

NAME = "strict"


class StrictArray:
    """A device array: an ndarray kept inside, reachable only through ``xp`` and the
    array's own methods (whose ndarray results come back wrapped)."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # np.exp(a), host_array + a: NumPy refuses with a TypeError

    def __init__(self, a: np.ndarray):
        self._a = a

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed (a strict device array): "
                        "use backend.to_host")

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} called on a strict device array: use xp = array_module(x)")

    def _no_scalar(self, *args):
        raise TypeError("a strict device array used as a Python number or truth value: "
                        "transfer it explicitly (backend.to_scalar)")

    __float__ = __int__ = __index__ = __bool__ = __complex__ = _no_scalar

    def get(self) -> np.ndarray:
        """The explicit device -> host copy (CuPy's ``ndarray.get``)."""
        return self._a.copy()

    def __getattr__(self, name):
        if name == "_a" or name.startswith("__"):  # no __array_interface__, __dlpack__: no way around
            raise AttributeError(name)
        return _wrap(getattr(self._a, name))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap(index)] = _unwrap(value)

    def __repr__(self):
        return f"strict({self._a!r})"


def _binary(name):
    return lambda self, other: _wrap(getattr(self._a, name)(_unwrap(other)))


def _inplace(name):
    def op(self, other):
        getattr(self._a, name)(_unwrap(other))
        return self
    return op


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    setattr(StrictArray, f"__{_op}__", _binary(f"__{_op}__"))
    setattr(StrictArray, f"__r{_op}__", _binary(f"__r{_op}__"))
    setattr(StrictArray, f"__i{_op}__", _inplace(f"__i{_op}__"))
for _op in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(StrictArray, f"__{_op}__", _binary(f"__{_op}__"))
for _op in ("neg", "pos", "abs", "invert"):
    setattr(StrictArray, f"__{_op}__", (lambda name: lambda self: _wrap(getattr(self._a, name)()))(f"__{_op}__"))
StrictArray.__hash__ = None


def _unwrap(value):
    """The ndarray inside a device value; a host ndarray here is a mixing error."""
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, np.ndarray):
        raise TypeError(f"a host NumPy array {value.shape} mixed with strict device arrays: "
                        "move it explicitly (xp.asarray / backend.to_device)")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value):
    """Results as the device returns them: arrays and NumPy scalars as device arrays,
    functions and sub-modules as wrappers that do the same to their results."""
    if isinstance(value, np.ndarray):
        return StrictArray(value)
    if isinstance(value, np.generic):
        return StrictArray(np.asarray(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v) for v in value)
    if isinstance(value, type):
        return value  # dtypes and classes: np.float32, np.finfo
    if isinstance(value, types.ModuleType):
        return _Namespace(value)
    if callable(value):
        return _Function(value)
    return value


class _Function:
    """A NumPy function or ufunc (or an ndarray method) taking and giving device arrays."""

    def __init__(self, fn):
        self._fn = fn

    def __call__(self, *args, **kwargs):
        return _wrap(self._fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    def __getattr__(self, name):  # ufunc methods: xp.add.at, xp.maximum.reduce
        return _wrap(getattr(self._fn, name))


class _Namespace:
    """A NumPy (sub)module whose functions work on device arrays."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        if name == "random":
            raise AttributeError("strict device: no xp.random (handgrad draws on the host and moves the draws)")
        return _wrap(getattr(self._module, name))


class StrictModule(_Namespace):
    """What ``backend.array_module`` returns for a :class:`StrictArray` (the ``cupy`` of this device)."""

    ndarray = StrictArray

    def __init__(self):
        super().__init__(np)

    @staticmethod
    def asarray(a, dtype=None, **kwargs):
        """Host data -> device (a copy, as a transfer is); a device array is cast only."""
        if isinstance(a, StrictArray):
            return StrictArray(np.asarray(a._a, dtype=dtype, **kwargs))
        return StrictArray(np.array(a, dtype=dtype, copy=True, **kwargs))

    @staticmethod
    def array(a, dtype=None, copy=True, **kwargs):
        """Like :meth:`asarray`, copying a device array too unless ``copy=False``."""
        if isinstance(a, StrictArray):
            return StrictArray(np.array(a._a, dtype=dtype, copy=copy, **kwargs))
        return StrictArray(np.array(a, dtype=dtype, copy=True, **kwargs))

    class lib:  # noqa: N801 (a sub-module)
        class stride_tricks:  # noqa: N801
            @staticmethod
            def as_strided(x, shape=None, strides=None):
                """CuPy's signature: ``writeable`` and ``subok`` are NumPy's only."""
                return StrictArray(np.lib.stride_tricks.as_strided(_unwrap(x), shape, strides))

    @staticmethod
    def asnumpy(a) -> np.ndarray:
        """The explicit device -> host copy (``cupy.asnumpy``)."""
        return a.get() if isinstance(a, StrictArray) else np.asarray(a)


xp = StrictModule()


def is_strict(a) -> bool:
    return isinstance(a, StrictArray)


def register() -> None:
    """Make ``"strict"`` a device name handgrad knows (idempotent)."""
    backend.register_device(NAME, xp, is_strict)
