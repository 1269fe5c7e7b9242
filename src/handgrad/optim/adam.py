"""Adam and AdamW: momentum plus per-coordinate scaling, with bias correction."""
from __future__ import annotations

import math

from ..backend import array_module
from .optimizer import Optimizer, check_hyper


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), PyTorch's definition.

    For each parameter p with gradient g, at step t = 1, 2, ... (eta = lr,
    lambda = weight_decay)::

        g    <- g + lambda p                          (L2 penalty, added to the gradient)
        m_t   = beta1 m_{t-1} + (1 - beta1) g         (first moment, m_0 = 0)
        v_t   = beta2 v_{t-1} + (1 - beta2) g^2       (second moment, v_0 = 0)
        m^    = m_t / (1 - beta1^t)                   (bias corrections: m_0 = v_0 = 0
        v^    = v_t / (1 - beta2^t)                    pull early averages towards 0)
        if amsgrad: vmax_t = max(vmax_{t-1}, v_t);  v^ = vmax_t / (1 - beta2^t)
        p    <- p - eta m^ / (sqrt(v^) + eps)

    State buffers: ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).
    """

    hyper_names = ("lr", "betas", "eps", "weight_decay", "amsgrad")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, lr)
        if len(betas) != 2:
            raise ValueError(f"{type(self).__name__}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (check_hyper("beta1", betas[0], high=1.0, high_open=True),
                      check_hyper("beta2", betas[1], high=1.0, high_open=True))
        self.eps = check_hyper("eps", eps)
        self.weight_decay = check_hyper("weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)

    def gradient(self, p):
        """The gradient the moments are built from: with Adam's L2 penalty added."""
        return p.grad + self.weight_decay * p.data if self.weight_decay else p.grad

    def update(self, p, state):
        xp = array_module(p.data)
        beta1, beta2 = self.betas
        t = self.step_count
        g = self.gradient(p)
        m = self.buffer(state, "exp_avg", p.data)
        v = self.buffer(state, "exp_avg_sq", p.data)
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * g * g
        if self.amsgrad:
            vmax = self.buffer(state, "max_exp_avg_sq", p.data)
            xp.maximum(vmax, v, out=vmax)
            v = vmax
        # eta m^ / (sqrt(v^) + eps), arranged as PyTorch does so results agree to rounding
        denom = xp.sqrt(v) / math.sqrt(1.0 - beta2**t)
        denom += self.eps
        p.data -= (self.lr / (1.0 - beta1**t)) * m / denom


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's definition.

    The decay shrinks the weights directly instead of entering the moments::

        p <- p (1 - eta lambda)
        then the Adam update above with g unchanged (no L2 term).

    ``weight_decay`` defaults to 0.01.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)

    def gradient(self, p):
        return p.grad

    def update(self, p, state):
        if self.weight_decay:
            p.data *= 1.0 - self.lr * self.weight_decay
        super().update(p, state)
