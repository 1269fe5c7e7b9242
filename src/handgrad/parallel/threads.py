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
holds BLAS at one thread while the training steps run and gives it its threads
back for evaluation, whose batches are larger. OpenBLAS's threaded products
round differently from its one-thread products, so such a run is bitwise the
same on machines with any number of cores.
"""
from __future__ import annotations

from contextlib import contextmanager

# rows x weight entries under which a product runs faster on one BLAS thread (see above)
SMALL_PRODUCT = 6_000_000


def small_products(model, rows: int) -> bool:
    """Whether ``model``'s training steps of ``rows`` rows are all small matrix products:
    every layer ``blas_bound`` and rows x its largest parameter under SMALL_PRODUCT."""
    layers = [m for _, m in model.named_modules() if not any(True for _ in m.children())]
    largest = max((p.data.size for p in model.parameters()), default=0)
    return all(m.blas_bound for m in layers) and rows * largest < SMALL_PRODUCT


class StepThreads:
    """While entered, BLAS runs on one thread if ``one`` (and threadpoolctl is
    installed; without it BLAS keeps its threads); :meth:`lifted` gives BLAS its
    threads back for a block::

        with StepThreads(small_products(model, batch_size)) as threads:
            ...training steps...
            with threads.lifted():
                ...evaluation...
    """

    def __init__(self, one: bool):
        try:
            import threadpoolctl  # noqa: F401
        except ImportError:
            one = False
        self.one = one
        self._limiter = None

    def __enter__(self):
        if self.one:
            self._hold()
        return self

    def __exit__(self, *exc):
        self._release()

    def _hold(self) -> None:
        from threadpoolctl import threadpool_limits

        self._limiter = threadpool_limits(1, user_api="blas")

    def _release(self) -> None:
        if self._limiter is not None:
            self._limiter.restore_original_limits()
            self._limiter = None

    @contextmanager
    def lifted(self):
        """BLAS with its own threads for the block, held at one again afterwards."""
        held = self._limiter is not None
        self._release()
        try:
            yield
        finally:
            if held:
                self._hold()
