"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""
from __future__ import annotations

from ..backend import array_module
from .optimizer import Optimizer, check_hyper


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), PyTorch's definition.

    For each parameter p with gradient g, at step t (eta = lr, lambda = weight_decay)::

        g      <- g + lambda p
        eta_t   = eta / (1 + (t - 1) lr_decay)
        s_t     = s_{t-1} + g^2                   (s_0 = initial_accumulator_value)
        p      <- p - eta_t g / (sqrt(s_t) + eps)

    Coordinates with large past gradients take smaller steps. State buffer: ``sum``.
    """

    hyper_names = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params, lr: float = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, lr)
        self.lr_decay = check_hyper("lr_decay", lr_decay)
        self.weight_decay = check_hyper("weight_decay", weight_decay)
        self.initial_accumulator_value = check_hyper("initial_accumulator_value", initial_accumulator_value)
        self.eps = check_hyper("eps", eps)

    def update(self, p, state):
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        s = self.buffer(state, "sum", p.data, self.initial_accumulator_value)
        s += g * g
        clr = self.lr / (1.0 + (self.step_count - 1) * self.lr_decay)
        p.data -= clr * g / (array_module(s).sqrt(s) + self.eps)
