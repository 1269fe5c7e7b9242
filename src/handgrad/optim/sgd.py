"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

from .optimizer import Optimizer, check_hyper


class SGD(Optimizer):
    r"""Stochastic gradient descent, PyTorch's definition.

    For each parameter p with gradient g, at step t (mu = momentum, tau = dampening,
    lambda = weight_decay, eta = lr)::

        g   <- g + lambda p                              (L2 weight decay)
        b_t  = g                          if t = 1       (momentum buffer)
        b_t  = mu b_{t-1} + (1 - tau) g   otherwise
        g   <- g + mu b_t                 if nesterov
        g   <- b_t                        otherwise      (only when mu != 0)
        p   <- p - eta g

    With ``momentum=0`` this is plain ``p -= lr * grad``. Nesterov momentum needs
    ``momentum > 0`` and ``dampening = 0``. State buffer: ``momentum_buffer``.
    """

    hyper_names = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = check_hyper("momentum", momentum)
        self.dampening = check_hyper("dampening", dampening)
        self.weight_decay = check_hyper("weight_decay", weight_decay)
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"SGD: nesterov momentum requires momentum > 0 and dampening = 0, "
                f"got momentum={momentum}, dampening={dampening}"
            )
        self.nesterov = bool(nesterov)

    def update(self, p, state):
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            if "momentum_buffer" not in state:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf = state["momentum_buffer"]
                buf *= self.momentum
                buf += (1.0 - self.dampening) * g if self.dampening else g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g
