"""DataParallel: a model whose forward and backward passes are shared by processes."""
from __future__ import annotations

import multiprocessing

import numpy as np

from .check import check_parallel
from .shard import draw_seeds, set_shards, split_layers
from .shared import SharedArrays
from .worker import Worker


# Fewer rows than this per process, and the batch runs here: a round trip to the workers
# costs ~0.1-0.3 ms, as much as a small batch's whole step (784-200-10 MLP, batch 8).
MIN_ROWS = 16


def row_bounds(n: int, parts: int):
    """``parts`` consecutive (start, stop) slices of range(n), as equal as possible."""
    edges = [round(j * n / parts) for j in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


class DataParallel:
    """``model`` with the rows of every batch shared by ``workers`` processes.

    It stands in for the model in a training step, and in evaluation
    (``evaluate(net, ...)``, ``predict_logits(net, X)``: eval mode, each process
    its rows of every batch)::

        out = net(x)                          # the model's outputs, rows in the order of x
        value = criterion(out, y)             # the loss of the whole batch, here
        optimizer.zero_grad()
        net.backward(criterion.backward())    # dL/dW of the whole batch ADDED into every p.grad
        optimizer.step()

    ``forward`` and ``backward`` are one round trip to the workers each: the
    batch is cut into ``workers`` consecutive slices of rows, the last computed
    here and the others by forked worker processes (started at the first forward
    pass). With ``workers=1``, and for batches of fewer than ``min_rows`` rows
    per process (default :data:`MIN_ROWS`), everything runs here. ``backward`` returns None: the input gradient is not
    gathered (the input is data). Use as a context manager, or call
    :meth:`close`, to stop the workers. See :mod:`handgrad.parallel`.
    """

    def __init__(self, model, workers: int = 2, min_rows: int | None = None):
        check_parallel(model, workers)
        self.model, self.workers = model, workers
        self.min_rows = MIN_ROWS if min_rows is None else min_rows
        self._team, self._weights, self._buffers, self._blas = [], None, None, None
        self._bounds = None  # the row slices of the last forward pass; None when it ran here
        self._split = split_layers(model)  # layers told about the split (see .shard)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- what a training step sees of a Module ---------------------------------
    def __call__(self, x):
        return self.forward(x)

    def parameters(self):
        return self.model.parameters()

    def named_parameters(self):
        return self.model.named_parameters()

    def array_module(self):
        return self.model.array_module()  # numpy: the workers share host memory

    def zero_grad(self) -> None:
        self.model.zero_grad()

    @property
    def training(self) -> bool:
        return self.model.training

    def train(self, mode: bool = True):
        self.model.train(mode)
        return self

    def eval(self):
        return self.train(False)

    # -- the two passes -------------------------------------------------------
    def forward(self, x):
        """The model's outputs for the batch ``x``; each process computes its rows."""
        n = len(x)
        if self.workers == 1 or n < self.workers * max(1, self.min_rows):
            self._bounds = None
            set_shards(self._split)
            return self.model(x)
        try:
            return self._forward(np.asarray(x), row_bounds(n, self.workers))
        except BaseException:
            self.close()  # answers may still be on their way: start afresh next time
            raise

    def backward(self, dout) -> None:
        """Back-propagate dL/dout (the rows of the last forward pass): each process its
        rows, then the workers' parameter gradients are ADDED into the model's p.grad."""
        bounds = self._bounds
        if bounds is None:
            self.model.backward(dout)
            return
        if len(dout) != bounds[-1][1]:
            raise ValueError(f"DataParallel.backward: dout has {len(dout)} rows but the last forward "
                             f"pass had {bounds[-1][1]}")
        try:
            self._backward(np.asarray(dout), bounds)
        except BaseException:
            self.close()
            raise
        set_shards(self._split)

    def _forward(self, x, bounds):
        model, (start, stop) = self.model, bounds[-1]
        states = self._state_slices(bounds)
        seeds = draw_seeds(self._split, model.training)
        exchanges = model.training and any(m.batch_statistics for m in self._split)
        if not self._team and exchanges:  # the workers must be there for the exchanges
            self._start(x, None, bounds)
        if self._team:
            self._send_forward(x, bounds, states, seeds)
        if states is not None:
            model.set_state(states[-1])
        # (in eval mode no layer looks beyond its rows: no shards, nothing to clear afterwards)
        set_shards(self._split, (start, stop, len(x)) if model.training else None, seeds, self._allreduce)
        with self._one_blas_thread():  # the other cores are the workers'
            mine = model(x[start:stop])
        if not self._team:  # the first pass: its outputs size the workers' boxes
            self._start(x, mine, bounds)
            self._send_forward(x, bounds, states, seeds)
        outs, finals = [], []
        for worker in self._team:
            out, final = worker.output()
            outs.append(out)
            finals.append(final)
        if states is not None:
            # the whole batch's final state, rows in order: the workers' slices, then this one's
            finals.append(model.get_state())
            model.set_state(tuple(np.concatenate(parts, axis=1) for parts in zip(*finals)))
        self._bounds = bounds
        return np.concatenate([*outs, mine])

    def _backward(self, dout, bounds) -> None:
        for worker, (a, b) in zip(self._team, bounds):
            worker.backward(dout[a:b])
        start, stop = bounds[-1]
        with self._one_blas_thread():
            self.model.backward(dout[start:stop])
        params = self.model.parameters()
        for worker in self._team:
            for p, g in zip(params, worker.gradients()):
                p.add_grad(g)

    def _allreduce(self, mine):
        """The caller's side of an exchange: the workers' partial sums and its own,
        added in row order; every worker is sent the total."""
        total = None
        for worker in self._team:
            part = worker.partial(mine)
            total = part.copy() if total is None else total + part
        total = total + mine
        for worker in self._team:
            worker.total(total)
        return total

    def _state_slices(self, bounds):
        """Each process's rows of the carried state (None: start from zeros), or None
        when the model carries no state into this pass."""
        model, n = self.model, bounds[-1][1]
        if not (model.carries_state and model.training):
            return None
        state = model.get_state()
        if state is None or any(part.shape[1] != n for part in state):
            return [None] * len(bounds)  # no state for batches of n rows: the streams start here
        return [tuple(np.ascontiguousarray(part[:, a:b]) for part in state) for a, b in bounds]

    def _send_forward(self, x, bounds, states, seeds) -> None:
        for p, w in zip(self.model.parameters(), self._weights.arrays):
            w[...] = p.data
        for (_, b), shared in zip(self.model.named_buffers(), self._buffers.arrays):
            shared[...] = b
        for k, (worker, (a, b)) in enumerate(zip(self._team, bounds)):
            worker.forward(x[a:b], None if states is None else states[k], self.model.training,
                           (a, b, len(x)), seeds)

    def _one_blas_thread(self):
        if self._blas is None:
            from threadpoolctl import ThreadpoolController

            self._blas = ThreadpoolController().select(user_api="blas")
        return self._blas.limit(limits=1)

    def _start(self, x, mine, bounds) -> None:
        # room for twice the widest slice of this batch: later batches are no larger, or
        # a little (longer sequences); what does not fit goes through the pipe
        # (mine is None when the workers must start first: an output row is guessed as large as
        # an input row)
        rows = 2 * max(b - a for a, b in bounds)
        in_capacity = rows * (x.nbytes // len(x))
        io_capacity = in_capacity if mine is None else rows * (mine.nbytes // max(1, len(mine)))
        self._weights = SharedArrays([p.data for p in self.model.parameters()])
        self._buffers = SharedArrays([b for _, b in self.model.named_buffers()])
        set_shards(self._split)  # the workers start with none
        context = multiprocessing.get_context("fork")
        for k in range(1, self.workers):
            self._team.append(Worker(context, k, self.model, self._weights, self._buffers,
                                     in_capacity, io_capacity))

    def close(self) -> None:
        """Stop the worker processes (safe to call twice); the shared memory goes with them."""
        for worker in self._team:
            worker.stop()
        self._team, self._weights, self._buffers, self._bounds = [], None, None, None
        set_shards(self._split)
