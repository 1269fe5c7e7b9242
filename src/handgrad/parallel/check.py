"""Which models can share their batches between processes: each module says so
itself, through the properties it declares (see :mod:`handgrad.nn.module`).
Layers that draw random numbers or use whole-batch statistics can, when they
take a :class:`~handgrad.parallel.shard.Shard` (see :mod:`.shard`)."""
from __future__ import annotations

import os

import numpy as np

from ..backend import array_module
from ..nn import Stateful


def _obstacle(module, top) -> str | None:
    """Why ``module`` (inside the model ``top``) would train differently on several processes."""
    takes_shard = hasattr(type(module), "shard")  # it can be told its rows of a split batch
    if module.draws_random and not (takes_shard and hasattr(module, "draw_seed")):
        return ("draws random numbers in training but has no shard and draw_seed (as Dropout has), "
                "so its numbers would be drawn in other processes")
    if module.batch_statistics and not takes_shard:
        return ("uses statistics of the whole batch in training but has no shard (as BatchNorm has), "
                "so each process would compute them over its own rows only")
    if module.carries_state and module is not top:
        return ("carries its state from batch to batch, which only the model itself may do here "
                "(an nn.Stateful, whose state is split by rows)")
    if module.carries_state and not isinstance(module, Stateful):
        return "carries its state from batch to batch but is no nn.Stateful (get_state, set_state)"
    return None


def check_parallel(model, workers: int) -> None:
    """Raise ValueError naming the obstacle if ``model`` cannot train on ``workers`` processes."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if workers == 1:
        return
    if not hasattr(os, "fork"):
        raise ValueError("workers > 1 needs os.fork (Linux or macOS)")
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        raise ValueError('workers > 1 needs threadpoolctl: pip install "handgrad[parallel]"') from None
    obstacles = {}  # each kind of obstacle once, at the first layer that has it
    for name, module in model.named_modules():
        why = _obstacle(module, model)
        if why is not None and why not in obstacles:
            obstacles[why] = f"layer {name} ({type(module).__name__})" if name else f"the model ({type(module).__name__})"
    if obstacles:
        reasons = "; ".join(f"{what} {why}" for why, what in obstacles.items())
        raise ValueError(f"workers > 1: {reasons}; train this model with workers=1")
    for name, p in model.named_parameters():
        if array_module(p.data) is not np:
            raise ValueError(f"workers > 1 runs on the CPU; parameter {name} is on another device")


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


AUTO_ONE = "HANDGRAD_AUTO_WORKERS_ONE"  # set in a process whose siblings already use the cores


def auto_workers() -> int:
    """What ``workers="auto"`` means here: the usable cores, or 1 inside a daemonic
    process (a pool's worker, which may not fork its own) and in a sweep's parallel
    jobs (``AUTO_ONE`` set: the other jobs use the other cores)."""
    import multiprocessing
    import os

    if multiprocessing.current_process().daemon or os.environ.get(AUTO_ONE):
        return 1
    return usable_cores()


def splitting_pays(model) -> bool:
    """Whether sharing ``model``'s batches between processes can beat one process.
    Not when every layer is ``blas_bound`` (an MLP): BLAS spreads its matrix
    products over the cores already, and a split adds only the round trips and
    the gradient sums (784-256-256-10 MLP at batch 128 on 2 cores: one process
    ran 1.3x as fast as two)."""
    layers = [m for _, m in model.named_modules() if not any(True for _ in m.children())]
    return not all(m.blas_bound for m in layers)


def resolve_workers(model, workers) -> int:
    """``workers`` as a number of processes: ``"auto"`` is :func:`auto_workers` when
    ``model`` can be split between them (on the CPU, every zoo model) and
    :func:`splitting_pays`, else 1; a number is checked by :func:`check_parallel`."""
    if workers == "auto":
        if not splitting_pays(model):
            return 1
        cores = auto_workers()
        try:
            check_parallel(model, cores)
        except ValueError:
            return 1
        return cores
    check_parallel(model, workers)
    return workers
