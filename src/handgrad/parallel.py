"""Data parallelism over processes: each training batch split between ``workers``
copies of the model, one per core.

A NumPy library uses one core for most of a training step: BLAS spreads only
large matrix products over threads, and Python threads cannot share the
element-wise work because of the GIL (measured here: two threads running the
two halves of a LeNet-5 batch were only 1.3x as fast as one). Processes have no
GIL. With ``workers = k``, the batch is cut into k consecutive slices of rows;
the caller's process runs the last slice and k - 1 forked worker processes the
others, each with a one-threaded BLAS. Since the loss is a mean over samples,

    L = sum_j (n_j / N) L_j      and so      dL/dW = sum_j (n_j / N) dL_j/dW,

each process back-propagates ``(n_j / N) dL_j/dout`` through its copy, and the
caller adds the workers' gradients into ``p.grad`` (for ``reduction='sum'`` the
weights are 1). The result equals one pass over the whole batch, up to the
order of floating-point additions.

Weights and gradients travel through shared memory: before every step the
caller copies its parameters into a shared block from which the workers' copies
read, and after it adds the workers' gradient blocks. A worker's rows of each
batch are copied into a third block, its inbox; only short messages, the loss
values and carried states go through pipes.

A stateful model (truncated BPTT, :class:`handgrad.models.char_lstm.CharLSTM`)
keeps the whole carried state in the caller's copy, ``model.carried_state``: a
tuple of arrays with the rows of the batch on axis 1. Each worker is sent the
rows of its slice before a step and returns its final state after it, so
checkpoints, resets and evaluation see the same state as with one process.

Exact only where samples do not interact and the model keeps no random or
running state of its own, so models with batch norm (batch statistics) or
dropout (random masks drawn in another process) are refused. Needs
``os.fork`` (Linux, macOS) and threadpoolctl.
"""
from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from multiprocessing import shared_memory

import numpy as np

from .backend import array_module

SPIN = 0.005  # seconds a process polls for its next message before it sleeps


class ParallelError(RuntimeError):
    """A worker process failed or disappeared; the message says which and why."""


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
    from .nn.batchnorm import _BatchNorm
    from .nn.dropout import Dropout

    for name, module in model.named_modules():
        what = f"layer {name} ({type(module).__name__})" if name else type(model).__name__
        if isinstance(module, _BatchNorm):
            raise ValueError(f"workers > 1: {what} is batch norm, whose batch statistics would be "
                             f"computed per worker; train this model with workers=1")
        if isinstance(module, Dropout):
            raise ValueError(f"workers > 1: {what} is dropout, whose random masks would be drawn in "
                             f"other processes; train this model with workers=1")
        if getattr(module, "stateful", False) and not (module is model and hasattr(model, "carried_state")):
            raise ValueError(f"workers > 1: {what} carries its state from batch to batch; "
                             f"train this model with workers=1")
    for name, p in model.named_parameters():
        if array_module(p.data) is not np:
            raise ValueError(f"workers > 1 runs on the CPU; parameter {name} is on another device")


def _row_bounds(n: int, parts: int):
    """``parts`` consecutive (start, stop) slices of range(n), as equal as possible."""
    edges = [round(j * n / parts) for j in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


class _SharedArrays:
    """Arrays shaped like ``like``, laid end to end in one shared-memory block."""

    def __init__(self, like):
        sizes = [a.nbytes for a in like]
        self.memory = shared_memory.SharedMemory(create=True, size=max(1, sum(sizes)))
        self.arrays, offset = [], 0
        for a, size in zip(like, sizes):
            self.arrays.append(np.ndarray(a.shape, a.dtype, buffer=self.memory.buf, offset=offset))
            offset += size

    def close(self, unlink: bool) -> None:
        self.arrays = []
        self.memory.close()
        if unlink:
            self.memory.unlink()


class _Inbox:
    """Shared memory, made before the fork, through which the caller hands a worker
    its rows of each batch: copying them in beats pickling them through a pipe
    (0.4 ms per LeNet-5 step). Rows that do not fit go through the pipe."""

    def __init__(self, capacity: int):
        self.memory = shared_memory.SharedMemory(create=True, size=max(1, capacity))

    def put(self, x, y, weight):
        """The message that gives the worker (x, y, weight)."""
        x, y = np.asarray(x), np.asarray(y)
        y_offset = -(-x.nbytes // 64) * 64
        if y_offset + y.nbytes > self.memory.size:
            return ("pipe", x, y, weight)
        np.ndarray(x.shape, x.dtype, buffer=self.memory.buf)[...] = x
        np.ndarray(y.shape, y.dtype, buffer=self.memory.buf, offset=y_offset)[...] = y
        return ("inbox", x.shape, x.dtype.str, y.shape, y.dtype.str, y_offset, weight)

    def take(self, message):
        """(x, y, weight) from a message of :meth:`put` (in the worker)."""
        if message[0] == "pipe":
            return message[1:]
        _, x_shape, x_dtype, y_shape, y_dtype, y_offset, weight = message
        x = np.ndarray(x_shape, x_dtype, buffer=self.memory.buf)
        return x, np.ndarray(y_shape, y_dtype, buffer=self.memory.buf, offset=y_offset), weight

    def close(self, unlink: bool) -> None:
        self.memory.close()
        if unlink:
            self.memory.unlink()


def _rows_of_state(state, n: int):
    """The carried state if it is one for a batch of n rows (rows on axis 1), else None."""
    if state is None or any(part.shape[1] != n for part in state):
        return None
    return state


def _state_slice(state, start: int, stop: int):
    return None if state is None else tuple(np.ascontiguousarray(part[:, start:stop]) for part in state)


def _batch_weight(loss, rows: int, total: int) -> float:
    return 1.0 if getattr(loss, "reduction", "mean") == "sum" else rows / total


def _forward_backward(model, loss, x, y, weight):
    """One process's share: (loss value, outputs finite); gradients ADDED into p.grad.
    Outputs with NaN or inf stop it before the loss, as (nan, False): the caller
    reports the divergence (a loss would reject such outputs with its own error)."""
    out = model(x)
    if not bool(array_module(out).isfinite(out).all()):
        return float("nan"), False
    value = loss.forward(out, y)
    dout = loss.backward()
    model.backward(dout if weight == 1 else dout * weight)
    return value, True


def _wait(conn, spin: float = SPIN) -> None:
    """Poll ``conn`` for up to ``spin`` seconds before a blocking read: a process
    that sleeps in ``recv`` on an idle core takes ~0.1 ms to wake (measured on a
    2-core VM), a noticeable part of a 3-9 ms training step."""
    deadline = time.perf_counter() + spin
    while not conn.poll() and time.perf_counter() < deadline:
        pass


def _serve(conn, model, loss, weights, grads, inbox):
    """A worker's loop: take (x, y, weight), answer (value, finite) or ('error', text)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    params = list(model.parameters())
    for p, w in zip(params, weights.arrays):
        p.data = w  # the caller writes the current weights here before every step
    while True:
        try:
            _wait(conn)
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            message, state = job
            x, y, weight = inbox.take(message)
            if hasattr(model, "carried_state"):
                model.carried_state = state
            model.zero_grad()
            with np.errstate(over="ignore", invalid="ignore"):
                value, finite = _forward_backward(model, loss, x, y, weight)
            for p, g in zip(params, grads.arrays):
                g[...] = p.grad
            conn.send((value, finite, getattr(model, "carried_state", None)))
        except BaseException:
            conn.send(("error", traceback.format_exc()))


class DataParallel:
    """Forward and backward passes of ``model`` and ``loss`` over ``workers`` processes.

    ``forward_backward(x, y)`` returns ``(loss value of the whole batch, whether all
    outputs were finite)`` and leaves the gradient of the whole batch ADDED into
    every ``p.grad`` of ``model``, as ``loss.forward(model(x), y)`` followed by
    ``model.backward(loss.backward())`` would; when some output is NaN or inf, the
    loss and backward pass are skipped and the value is NaN. With ``workers=1``,
    and for batches of fewer rows than workers, it all runs in this process. Use as a context manager, or call :meth:`close`, to
    stop the workers; they are started on the first call.
    """

    def __init__(self, model, loss, workers: int = 2):
        check_parallel(model, workers)
        self.model, self.loss, self.workers = model, loss, workers
        self._procs, self._conns, self._weights, self._grads, self._inboxes = [], [], None, [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self, x, y) -> None:
        from threadpoolctl import ThreadpoolController

        self._blas = ThreadpoolController().select(user_api="blas")
        params = [p.data for p in self.model.parameters()]
        self._weights = _SharedArrays(params)
        context = multiprocessing.get_context("fork")
        try:
            # room for twice the rows of this batch: later batches are the same size or smaller
            capacity = 2 * (x.nbytes + y.nbytes) // self.workers + 128
            for _ in range(self.workers - 1):
                grads, inbox = _SharedArrays(params), _Inbox(capacity)
                self._grads.append(grads)
                self._inboxes.append(inbox)
                mine, theirs = context.Pipe()
                proc = context.Process(target=_serve, args=(theirs, self.model, self.loss, self._weights, grads, inbox),
                                       daemon=True, name="handgrad-worker")
                proc.start()
                theirs.close()
                self._procs.append(proc)
                self._conns.append(mine)
        except BaseException:
            self.close()
            raise

    def forward_backward(self, x, y):
        n = len(x)
        if self.workers == 1 or n < self.workers:
            return _forward_backward(self.model, self.loss, x, y, 1.0)
        x, y = np.asarray(x), np.asarray(y)
        if not self._procs:
            self._start(x, y)
        params = list(self.model.parameters())
        for p, w in zip(params, self._weights.arrays):
            w[...] = p.data
        bounds = _row_bounds(n, self.workers)
        state = _rows_of_state(getattr(self.model, "carried_state", None), n)
        for k, (start, stop) in enumerate(bounds[:-1]):
            message = self._inboxes[k].put(x[start:stop], y[start:stop], _batch_weight(self.loss, stop - start, n))
            self._send(k, (message, _state_slice(state, start, stop)))
        start, stop = bounds[-1]
        if state is not None:
            self.model.carried_state = _state_slice(state, start, stop)
        weight = _batch_weight(self.loss, stop - start, n)
        with self._blas.limit(limits=1):  # the other cores are the workers'
            value, finite = _forward_backward(self.model, self.loss, x[start:stop], y[start:stop], weight)
        value *= weight
        states = []
        for k, conn in enumerate(self._conns):
            part_value, part_finite, part_state = self._receive(k, conn)
            value += part_value * _batch_weight(self.loss, bounds[k][1] - bounds[k][0], n)
            finite = finite and part_finite
            states.append(part_state)
            for p, g in zip(params, self._grads[k].arrays):
                p.grad += g
        mine = getattr(self.model, "carried_state", None)
        if mine is not None and all(part is not None for part in states):
            # the whole batch's final state, rows in order: the workers' slices, then this one's
            self.model.carried_state = tuple(np.concatenate(parts, axis=1) for parts in zip(*states, mine))
        return value, finite

    def _send(self, k: int, job) -> None:
        try:
            self._conns[k].send(job)
        except OSError:  # a broken pipe: the worker is gone
            self._died(k)

    def _receive(self, k: int, conn):
        try:
            _wait(conn)
            answer = conn.recv()
        except (EOFError, OSError):
            self._died(k)
        if isinstance(answer, tuple) and len(answer) == 2 and answer[0] == "error":
            self.close()
            raise ParallelError(f"data-parallel worker {k + 1} failed:\n{answer[1]}")
        return answer

    def _died(self, k: int):
        self._procs[k].join(timeout=5)
        code = self._procs[k].exitcode
        self.close()
        raise ParallelError(f"data-parallel worker {k + 1} died (exit code {code}) during a training step")

    def close(self) -> None:
        """Stop the worker processes and free the shared memory (safe to call twice)."""
        for conn in self._conns:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            conn.close()
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for block in self._grads + self._inboxes + ([self._weights] if self._weights is not None else []):
            block.close(unlink=True)
        self._procs, self._conns, self._grads, self._inboxes, self._weights = [], [], [], [], None

