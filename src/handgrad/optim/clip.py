"""Gradient clipping, applied between ``backward`` and ``optimizer.step()``."""
from __future__ import annotations

import math

from ..backend import array_module, to_scalar
from ..nn.module import Parameter


def _param_list(params, where):
    params = [params] if isinstance(params, Parameter) else list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"{where}: item {i} is a {type(p).__name__}, not a handgrad Parameter")
    return params


def clip_grad_norm_(params, max_norm: float, norm_type: float = 2.0) -> float:
    r"""Rescale all gradients together so that their joint norm is at most ``max_norm``.

    The norm is taken over every gradient element of every parameter as one vector::

        ||g|| = (sum_p sum_i |g_{p,i}|^q)^(1/q)        (q = norm_type; max |g| for inf)
        g    <- g * min(1, max_norm / (||g|| + 1e-6))

    Returns the total norm before clipping, a float (inf or nan if a gradient is).
    The direction of the update is kept; only its length changes.
    """
    params = _param_list(params, "clip_grad_norm_")
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm!r}")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type!r}")
    if not params:
        return 0.0
    if norm_type == math.inf:
        total = max(to_scalar(array_module(p.grad).abs(p.grad).max()) if p.grad.size else 0.0 for p in params)
    else:
        total = sum(to_scalar((array_module(p.grad).abs(p.grad) ** norm_type).sum()) for p in params) ** (1.0 / norm_type)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in params:
            p.grad *= coef
    return total


def clip_grad_value_(params, clip_value: float) -> None:
    """Clamp every gradient element to [-clip_value, clip_value], in place."""
    params = _param_list(params, "clip_grad_value_")
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value!r}")
    for p in params:
        array_module(p.grad).clip(p.grad, -clip_value, clip_value, out=p.grad)
