"""Module, Parameter and Sequential: the object API over the ``ops`` kernels.

The contract every layer follows:

* ``forward(x)`` returns the output and keeps (in ``self._cache``) what the
  backward pass needs;
* ``backward(dout)`` takes dL/d(output), returns dL/d(input) and ADDS the
  parameter gradients into ``p.grad`` (``p.add_grad(g)``, which may keep g as the
  gradient itself, so the layer does not reuse g); it never updates weights;
* parameters, buffers and sub-modules are registered by assigning them as
  attributes, so ``named_parameters()`` and ``state_dict()`` produce PyTorch's
  dotted names (``0.weight``, ``conv1.bias``, ``bn.running_mean``).

A layer also declares what training code needs to know about it, as class
attributes read by :mod:`handgrad.parallel` (never a list of classes):

* ``draws_random``: its training-mode forward draws from the global generator
  (dropout, random augmentation);
* ``batch_statistics``: in training mode one sample's output depends on the
  other samples of the batch (batch norm);
* ``carries_state``: it keeps a recurrent state from one batch to the next
  (truncated BPTT); such a model follows the :class:`Stateful` protocol;
* ``blas_bound``: its work is a matrix product, which BLAS already spreads
  over every core, or an element-wise pass that costs little next to one. A
  model made only of such layers (an MLP) gains nothing from sharing its
  batches between processes, so ``workers="auto"`` trains it in one.

A loss declares ``classifies``: True when its targets are class labels (or
distributions over the classes), so evaluation reports accuracy and the Trainer
keeps the weights of the best validation accuracy; False when they are not (MSE),
and the Trainer keeps those of the lowest validation loss; None (a loss of your
own that does not say): integer targets are labels.
"""
from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from ..backend import array_module, device_module, to_device


class Parameter:
    """A trainable array ``data`` with its gradient ``grad`` (same shape, starts at zero).

    ``zero_grad()`` only marks the gradient as zero; the zeros are written when
    ``grad`` is next read. The next :meth:`add_grad` then takes the layer's
    gradient as it is when it is a fresh array of the gradient's kind (it
    owns its memory, same shape, dtype and device), and copies it otherwise.
    So a training step spends no pass over the gradients writing zeros, nor
    one copying the new ones in: ``grad`` becomes the array backward made, as
    PyTorch's ``zero_grad(set_to_none=True)`` leaves backward a fresh tensor to
    make (here ``grad`` stays an array). So an array read from ``grad`` before
    ``zero_grad`` may keep the old gradient (when the new one is taken) or be
    overwritten (when it is copied in): copy it to keep it.
    """

    __slots__ = ("data", "_grad", "_zeroed")

    def __init__(self, data):
        self.data = data
        self._grad = array_module(data).zeros_like(data)
        self._zeroed = False

    @property
    def grad(self):
        if self._zeroed:
            self._grad.fill(0)
            self._zeroed = False
        return self._grad

    @grad.setter
    def grad(self, value):
        self._grad, self._zeroed = value, False

    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self):
        return self.data.size

    def zero_grad(self):
        self._zeroed = True

    def add_grad(self, g):
        """grad += g, the way layers' backward passes add their parameter gradients.

        After ``zero_grad`` this is grad = g: a fresh array (no base, C order,
        grad's type, shape and dtype) becomes the gradient itself, so the layer
        must not keep it; anything else is copied.
        """
        grad = self._grad
        if not self._zeroed:
            grad += g
            return
        if type(g) is type(grad) and g.base is None and g.flags.c_contiguous and g.shape == grad.shape \
                and g.dtype == grad.dtype:
            self._grad = g
        else:
            # a copy that accepts what += would (copyto and [...] = also take a (1, n) g for an (n,) grad)
            array_module(grad).positive(g, out=grad)
        self._zeroed = False

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


_keep_for_backward = True  # False inside no_grad()


@contextmanager
def set_grad_enabled(mode: bool):
    """A context manager (``with set_grad_enabled(False): ...``; called on its own
    it changes nothing): inside, forward passes keep what backward needs
    (``mode`` True) or not (False, see :func:`no_grad`); the previous mode comes
    back afterwards."""
    global _keep_for_backward
    before, _keep_for_backward = _keep_for_backward, bool(mode)
    try:
        yield
    finally:
        _keep_for_backward = before


def no_grad():
    """Forward passes inside keep nothing for a backward pass, as ``torch.no_grad()``:
    every module drops the cache its backward would need as soon as its forward
    returns. For inference (evaluation and prediction use it): a layer's cache
    (a convolution's im2col columns, say) would otherwise stay alive until the
    layer's next forward, so that each large batch had to be given fresh memory."""
    return set_grad_enabled(False)


def is_grad_enabled() -> bool:
    """False inside :func:`no_grad`."""
    return _keep_for_backward


class Module:
    """Base class of every layer and model. Subclasses implement ``forward`` and ``backward``."""

    draws_random = False
    batch_statistics = False
    carries_state = False
    blas_bound = False
    classifies = None  # (a loss) whether its targets are classes; None: when they are integers

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        params, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        else:  # a plain attribute, or a new array for a registered buffer
            params.pop(name, None)
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array) -> None:
        """Register a non-trainable array (e.g. batch-norm running statistics) saved in ``state_dict``."""
        setattr(self, name, array)
        self._buffers[name] = True

    # -- computation -------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dout):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        if not _keep_for_backward:
            self.__dict__.pop("_cache", None)  # what backward would need (see no_grad)
        return out

    def __getattr__(self, name):
        # only reached when ``name`` is not there (an AttributeError, so hasattr stays
        # False): say why a backward has nothing to go back through
        if name == "_cache":
            raise AttributeError(f"{type(self).__name__}.backward: no forward pass to go back through (none ran, "
                                 f"or it ran under handgrad.no_grad(), which keeps nothing for backward)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- traversal ---------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        """Yield ``(name, module)`` for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = ""):
        """Yield ``(dotted_name, Parameter)`` for every parameter, in registration order."""
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = ""):
        for mod_name, module in self.named_modules(prefix):
            for name in module._buffers:
                yield (f"{mod_name}.{name}" if mod_name else name), getattr(module, name)

    def array_module(self):
        """The array module its parameters live in: ``numpy`` on the CPU, ``cupy`` on a
        GPU (``numpy`` for a module without parameters). An input made for the module
        is made with it: ``model.array_module().zeros(...)``."""
        params = self.parameters()
        return array_module(params[0].data) if params else np

    def num_parameters(self) -> int:
        """Total number of trainable scalars."""
        return int(sum(p.size for p in self.parameters()))

    # -- state -------------------------------------------------------------
    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def reset_state(self) -> None:
        """Forget any state carried between batches (the Trainer calls it at the start
        of every epoch); a no-op for modules that carry none."""
        for child in self.children():
            child.reset_state()

    def train(self, mode: bool = True):
        """Switch this module and its descendants to training (or, with ``mode=False``, eval) behaviour."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and buffer, keyed by PyTorch-style dotted names."""
        state = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = p.data.copy()
        for name, buf in self.named_buffers():
            state[name] = buf.copy()
        return state

    def _state_slots(self):
        """Map dotted name -> (owning module, attribute, is_parameter)."""
        slots = {}
        for mod_name, module in self.named_modules():
            dot = f"{mod_name}." if mod_name else ""
            for name in module._parameters:
                slots[dot + name] = (module, name, True)
            for name in module._buffers:
                slots[dot + name] = (module, name, False)
        return slots

    def load_state_dict(self, state, strict: bool = True) -> None:
        """Copy arrays from ``state`` into this module's parameters and buffers.

        Raises ``KeyError`` naming missing or unexpected keys (when ``strict``) and
        ``ValueError`` naming the key whose shape does not match; on error nothing is changed.
        """
        slots = self._state_slots()
        missing = [k for k in slots if k not in state]
        unexpected = [k for k in state if k not in slots]
        if strict and (missing or unexpected):
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        updates = []
        for key, (module, name, is_param) in slots.items():
            if key not in state:
                continue
            current = module._parameters[name].data if is_param else getattr(module, name)
            value = array_module(current).asarray(state[key], dtype=current.dtype)
            if value.shape != current.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: shape mismatch for '{key}': "
                    f"expected {tuple(current.shape)}, got {tuple(value.shape)}"
                )
            updates.append((current, value))
        # copy only once every shape is known to fit, so a bad state leaves the module unchanged
        for current, value in updates:
            current[...] = value

    def _replace_arrays(self, fn, floating_buffers_only: bool = False):
        """Replace every parameter, gradient and buffer array ``a`` by ``fn(a)``; returns self."""
        for _, module in self.named_modules():
            for p in module._parameters.values():
                p.data, p.grad = fn(p.data), fn(p.grad)
            for name in module._buffers:
                buf = getattr(module, name)
                if not floating_buffers_only or buf.dtype.kind == "f":
                    object.__setattr__(module, name, fn(buf))
        return self

    def to(self, device: str):
        """Move every parameter, gradient and buffer to ``'cpu'`` (NumPy) or ``'cuda'`` (CuPy); returns self.
        Inputs must then live on the same device: kernels follow the array module of their input.
        Move the model before building its optimizer, whose buffers follow the parameters then."""
        device_module(device)  # an unknown or unavailable device fails before any array moves
        return self._replace_arrays(lambda a: to_device(a, device))

    def astype(self, dtype):
        """Cast every parameter, gradient and floating buffer to ``dtype``; returns self."""
        return self._replace_arrays(lambda a: a.astype(dtype), floating_buffers_only=True)

    # -- display -----------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)


class Stateful(Module):
    """A model that carries a recurrent state from one training batch to the next
    (truncated back-propagation through time over streams that continue each other).

    The protocol the Trainer, evaluation, checkpoints and :mod:`handgrad.parallel` use:

    * ``forward(x, state=None)``: ``state`` (or, in training mode, the carried state)
      is the initial state; the final state is kept in ``final_state``;
    * ``reset_state()``: forget the carried state (the streams start again);
    * ``get_state()`` / ``set_state(state)``: the carried state, a tuple of arrays
      with the rows of the batch on axis 1, or None.

    ``carries_state`` is True when the instance carries state (a model may be built
    stateless too).
    """

    carries_state = True
    final_state = None

    def get_state(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_state")

    def set_state(self, state) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement set_state")


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse.

    Children are named ``"0"``, ``"1"``, ... so state dicts match ``torch.nn.Sequential``.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, dout):
        modules = list(self._modules.values())
        for i in range(len(modules) - 1, -1, -1):
            dout = modules[i].backward(dout)
            if dout is None:  # a layer built with input_grad=False: nothing flows further down
                below = [type(m).__name__ for m in modules[:i] if m.parameters()] if i else []
                if below:
                    raise RuntimeError(
                        f"Sequential: layer {i} ({type(modules[i]).__name__}) has input_grad=False, "
                        f"so the layers below it with parameters ({', '.join(below)}) would get no gradient"
                    )
                return None
        return dout
