"""Learning-rate schedules: change ``optimizer.lr`` once per ``step()`` (usually once per epoch).

Each schedule is a closed-form function of the epoch counter e (the number of
``step()`` calls) and the optimizer's learning rate when the schedule was made,
eta_0 (``base_lr``)::

    scheduler = StepLR(optimizer, step_size=10, gamma=0.1)
    for epoch in range(epochs):
        train_one_epoch(...)
        scheduler.step()

The values equal PyTorch's schedules of the same names.
"""
from __future__ import annotations

import math

from ..validate import positive_int
from .optimizer import Optimizer, check_hyper


class LRScheduler:
    """Base class: subclasses give ``lr_at(epoch)``; ``hyper_names`` lists what ``state_dict`` saves."""

    hyper_names: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected a handgrad Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} does not implement lr_at")

    def step(self) -> None:
        """Advance one epoch and set the optimizer's learning rate for it."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> float:
        """The learning rate set by the last ``step()`` (``base_lr`` before any)."""
        return self.optimizer.lr

    def state_dict(self) -> dict:
        """JSON-able: ``{"type", "base_lr", "last_epoch", <hyper-parameters>}``."""
        state = {"type": type(self).__name__, "base_lr": self.base_lr, "last_epoch": self.last_epoch}
        state.update({k: getattr(self, k) for k in self.hyper_names})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a saved schedule and set the optimizer's lr to its current value."""
        name = type(self).__name__
        expected = {"type", "base_lr", "last_epoch", *self.hyper_names}
        if set(state) != expected:
            raise KeyError(
                f"{name}.load_state_dict: missing keys {sorted(expected - set(state))}, "
                f"unexpected keys {sorted(set(state) - expected)}"
            )
        if state["type"] != name:
            raise ValueError(f"{name}.load_state_dict: state was saved from {state['type']}, not {name}")
        for k in ("base_lr", *self.hyper_names):
            setattr(self, k, state[k])
        self.last_epoch = int(state["last_epoch"])
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def __repr__(self):
        hyper = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyper_names)
        return f"{type(self).__name__}({hyper}, base_lr={self.base_lr}, last_epoch={self.last_epoch})"


class StepLR(LRScheduler):
    """eta_e = eta_0 * gamma^floor(e / step_size): decay by ``gamma`` every ``step_size`` epochs."""

    hyper_names = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = positive_int(step_size, "StepLR: step_size")
        self.gamma = check_hyper("gamma", gamma)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """eta_e = eta_0 * gamma^e: the classic per-epoch ``lr_decay``."""

    hyper_names = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float):
        super().__init__(optimizer)
        self.gamma = check_hyper("gamma", gamma)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """eta_e = eta_min + (eta_0 - eta_min) (1 + cos(pi e / T_max)) / 2.

    Falls from eta_0 to eta_min over ``T_max`` epochs along half a cosine (and,
    like PyTorch, rises again if stepped past ``T_max``).
    """

    hyper_names = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        self.T_max = positive_int(T_max, "CosineAnnealingLR: T_max")
        self.eta_min = check_hyper("eta_min", eta_min)

    def lr_at(self, epoch):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
