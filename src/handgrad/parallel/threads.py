"""BLAS threads for training steps in one process.

A model whose every layer is ``blas_bound`` (an MLP) trains in one process:
its matrix products are what BLAS spreads over the cores by itself (see
:func:`~handgrad.parallel.check.splitting_pays`). OpenBLAS splits a product
between its threads from 2^18 multiply-adds on, but waking the other threads
costs more than the split saves until a product is some millions of
multiply-adds large. So a step of small products runs faster on one thread.
Measured on a 2-core Intel Xeon (OpenBLAS 0.3.31, SGD with momentum, medians of
8 alternating rounds), one thread's step against two threads':

    784-200-10 MLP:      batch 8: 360 against 460 us, 16: 413 / 517, 32: 542 / 587,
                         64: 716 / 659, 128: 1071 / 901
    784-256-256-10 MLP:  batch 8: 599 / 653, 32: 893 / 879, 64: 1222 / 1144

The largest product of a step is about rows x the largest weight matrix, and
below :data:`SMALL_PRODUCT` multiply-adds one thread won. :class:`StepThreads`
holds BLAS at one thread while the training steps run; the Trainer lifts the
hold while it evaluates, whose batches are larger. OpenBLAS's threaded products
round differently from its one-thread products, so with the hold the training
steps compute the same bits on machines with any number of cores (the same
BLAS kernels given); evaluation, on all threads, may still round differently.

BLAS's thread count belongs to the process, so the holds of runs that share a
process (a sweep's trials in threads of one Dask worker) are counted: BLAS
runs on one thread while any run holds it, and gets its threads back when the
last hold ends.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from .check import splitting_pays

# rows x weight entries under which a product runs faster on one BLAS thread (see above)
SMALL_PRODUCT = 6_000_000

_lock = threading.Lock()
_holds = 0  # holds under way in this process
_limiter = None  # threadpoolctl's record of the threads BLAS had before the first of them
_controller = None  # threadpoolctl's view of the loaded BLAS libraries, made once


def steps_on_one_thread(model, rows, workers: int = 1, device: str = "cpu") -> bool:
    """Whether training steps of ``rows`` rows (None: unknown) should run on one BLAS
    thread: in one CPU process, every layer ``blas_bound`` (nothing to split between
    processes) and rows x the largest parameter under SMALL_PRODUCT."""
    if workers != 1 or device != "cpu" or rows is None or splitting_pays(model):
        return False
    largest = max((p.data.size for p in model.parameters()), default=0)
    return rows * largest < SMALL_PRODUCT


def _acquire() -> None:
    global _holds, _limiter, _controller
    with _lock:
        if _holds == 0:
            if _controller is None:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
            _limiter = _controller.limit(limits=1, user_api="blas")
        _holds += 1


def _release() -> None:
    global _holds, _limiter
    with _lock:
        _holds -= 1
        if _holds == 0:
            _limiter.restore_original_limits()
            _limiter = None


class StepThreads:
    """While entered, BLAS runs on one thread if ``one`` (and threadpoolctl is
    installed; without it BLAS keeps its threads); :meth:`lifted` ends this hold
    for a block::

        with StepThreads(steps_on_one_thread(model, batch_size)) as threads:
            ...training steps...
            with threads.lifted():
                ...evaluation...

    Entering it again inside its block holds nothing more.
    """

    def __init__(self, one: bool):
        try:
            import threadpoolctl  # noqa: F401
        except ImportError:
            one = False
        self.one = one
        self._depth = 0  # how deep inside its own with-blocks
        self._held = False

    def __enter__(self):
        self._depth += 1
        if self.one and not self._held:
            _acquire()
            self._held = True
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0 and self._held:
            self._held = False
            _release()

    @contextmanager
    def lifted(self):
        """This hold ended for the block, and taken again afterwards (BLAS gets its
        threads back unless another run in the process holds them too)."""
        held = self._held
        if held:
            self._held = False
            _release()
        try:
            yield
        finally:
            if held:
                _acquire()
                self._held = True
