"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""
from __future__ import annotations

from ..backend import array_module
from .optimizer import Optimizer, check_hyper


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), PyTorch's definition.

    For each parameter p with gradient g (eta = lr, alpha = smoothing constant,
    lambda = weight_decay, mu = momentum)::

        g    <- g + lambda p
        v_t   = alpha v_{t-1} + (1 - alpha) g^2                 (v_0 = 0)
        if centered:                                            (subtract the mean's square)
            m_t = alpha m_{t-1} + (1 - alpha) g
            v~  = v_t - m_t^2
        else:
            v~  = v_t
        if mu > 0:
            b_t = mu b_{t-1} + g / (sqrt(v~) + eps);   p <- p - eta b_t
        else:
            p  <- p - eta g / (sqrt(v~) + eps)

    State buffers: ``square_avg``, ``grad_avg`` (centered), ``momentum_buffer`` (momentum).
    """

    hyper_names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, lr)
        self.alpha = check_hyper("alpha", alpha, high=1.0)
        self.eps = check_hyper("eps", eps)
        self.weight_decay = check_hyper("weight_decay", weight_decay)
        self.momentum = check_hyper("momentum", momentum)
        self.centered = bool(centered)

    def update(self, p, state):
        xp = array_module(p.data)
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        a = self.alpha
        v = self.buffer(state, "square_avg", p.data)
        v *= a
        v += (1.0 - a) * g * g
        if self.centered:
            m = self.buffer(state, "grad_avg", p.data)
            m *= a
            m += (1.0 - a) * g
            denom = xp.sqrt(v - m * m)
        else:
            denom = xp.sqrt(v)
        denom += self.eps
        if self.momentum > 0:
            b = self.buffer(state, "momentum_buffer", p.data)
            b *= self.momentum
            b += g / denom
            p.data -= self.lr * b
        else:
            p.data -= self.lr * g / denom
