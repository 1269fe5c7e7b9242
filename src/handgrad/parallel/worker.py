"""One worker process: the caller's handle on it (:class:`Worker`) and the loop it
runs (:func:`serve`).

Messages through the pipe (arrays through the worker's two boxes, see
:mod:`handgrad.parallel.shared`):

    caller -> worker                                    worker -> caller
    ("forward", x message, state, training, errstate,   ("out", out message, final state)
     rows, seeds)
    ("backward", dout message, errstate)                ("grads",)   gradients in the shared block
    SUMS + total's bytes                                SUMS + partial sums' bytes   within a pass
    None: stop                                          ("error", traceback text, out of memory?)

Messages are pickled, except the exchanges' sums: both sides know their shape
and dtype (those of their own partial sums), so they travel as raw bytes behind
a one-byte tag (which no pickle of protocol 2 or later, as ``Connection.send``
writes, starts with). Pickling and unpickling a small
array costs ~10 us each on a 2-core VM, and a batch-norm network exchanges
three times per layer and step.

``rows = (start, stop, total)`` and ``seeds`` (one per layer of
:func:`~handgrad.parallel.shard.split_layers`) become the layers' shards; a
batch-norm layer's ``allreduce`` sends its partial sums and waits for the
caller's total, in the middle of a forward or backward pass.
"""
from __future__ import annotations

import os
import pickle
import select
import signal
import time
import traceback

import numpy as np

from ..heap import keep_freed_memory
from ..nn import is_grad_enabled, set_grad_enabled
from .lifetime import WATCH_EVERY, die_with_parent, parent_gone
from .shard import set_shards, split_layers
from .shared import Box, SharedArrays

SPIN = 0.005  # seconds a process polls for its next message before it sleeps
SUMS = b"S"  # the tag of an exchange's raw sums (Connection.send's pickles start with b"\x80")


class ParallelError(RuntimeError):
    """A worker process failed or disappeared; the message says which and why."""


def wait(conn, parent_pid: int | None = None, spin: float = SPIN) -> bool:
    """Wait until ``conn`` has a message (or is closed); False if the parent
    ``parent_pid`` died first.

    It polls for up to ``spin`` seconds before sleeping: a process that sleeps
    in ``recv`` on an idle core takes ~0.1 ms to wake (measured on a 2-core VM),
    a noticeable part of a 3-9 ms training step, and a step has two round trips
    (more with batch norm's exchanges). The poll is a ``select.poll`` object made
    once per wait: ``conn.poll()`` builds a selector every call, and a round trip
    that spun on it took ~60 us against ~5 us here. Between polls it yields its
    core: when the process it waits for shares that core (other programs busy on
    the others), that one runs at once instead of after the spin; on an idle
    core the yield returns at once. Asleep, it looks at its parent every
    WATCH_EVERY seconds (in case nothing else ends an orphan, see
    :mod:`handgrad.parallel.lifetime`).
    """
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    deadline = time.perf_counter() + spin
    while not poller.poll(0):
        if time.perf_counter() > deadline:
            break
        os.sched_yield()
    while not poller.poll(WATCH_EVERY * 1000):
        if parent_pid is not None and parent_gone(parent_pid):
            return False
    return True


def send_sums(conn, sums) -> None:
    """Send an exchange's sums as raw bytes behind the SUMS tag."""
    conn.send_bytes(SUMS + sums.tobytes())


def read_sums(data: bytes, like):
    """The sums in ``data`` (from :func:`send_sums`), shaped and typed as ``like``;
    None when ``data`` is not sums (a pickled message)."""
    if data[:1] != SUMS:
        return None
    if len(data) != 1 + like.nbytes:
        raise ParallelError(f"an exchange's sums came as {len(data) - 1} bytes, expected {like.nbytes} "
                            f"(shape {like.shape}, {like.dtype}): the processes are not in the same layer")
    return np.frombuffer(data, dtype=like.dtype, offset=1).reshape(like.shape).copy()


def _allreduce(conn, parent_pid: int):
    """A worker's side of the exchange: send the partial sums, wait for the total."""
    def allreduce(partial):
        send_sums(conn, partial)
        total = read_sums(conn.recv_bytes(), partial) if wait(conn, parent_pid) else None
        if total is None:
            raise ParallelError("the caller stopped in the middle of a pass")
        return total
    return allreduce


def _forward(model, job, inbox: Box, iobox: Box, buffers, allreduce):
    _, x_message, state, training, keep_for_backward, errstate, rows, seeds = job
    if model.training != training:
        model.train(training)
    for (_, b), shared in zip(model.named_buffers(), buffers.arrays):
        b[...] = shared  # the caller's running statistics: workers' own updates are not kept
    set_shards(split_layers(model), rows, seeds, allreduce)
    carry = model.carries_state and training
    if carry:
        model.set_state(state)
    # the caller's mode, not the one this process was forked in
    with np.errstate(**errstate), set_grad_enabled(keep_for_backward):
        out = model(inbox.take(x_message))
    return ("out", iobox.put(out), model.get_state() if carry else None)


def _backward(model, job, iobox: Box):
    _, dout_message, errstate = job
    for p in model.parameters():
        # now, not lazily (zero_grad): the caller reads the shared block's arrays directly, and a
        # read of p.grad leaves no zero_grad mark, so add_grad adds into them instead of taking new ones
        p.grad.fill(0)
    with np.errstate(**errstate):
        model.backward(iobox.take(dout_message))
    return ("grads",)


def serve(conn, callers_end, model, weights: SharedArrays, buffers: SharedArrays, grads: SharedArrays,
          inbox: Box, iobox: Box, parent_pid: int):
    """A worker's loop: answer forward and backward jobs until told to stop, the
    pipe closes or the parent dies."""
    die_with_parent(parent_pid)
    callers_end.close()  # the fork copied it; kept open here, it would hide the caller's end-of-file
    # Ctrl-C reaches the whole process group; the caller handles it and stops the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # one core per process
    keep_freed_memory()  # every step allocates the same arrays: no page faults for them
    params = model.parameters()
    for p, w, g in zip(params, weights.arrays, grads.arrays):
        p.data = w  # the caller writes the current weights here before every forward pass
        p.grad = g  # layers add into p.grad in place: the caller reads them here, no copy
    allreduce = _allreduce(conn, parent_pid)
    while True:
        try:
            if not wait(conn, parent_pid):
                return
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            if job[0] == "forward":
                answer = _forward(model, job, inbox, iobox, buffers, allreduce)
            else:
                answer = _backward(model, job, iobox)
        except BaseException as exc:
            answer = ("error", traceback.format_exc(), isinstance(exc, MemoryError))
        try:
            conn.send(answer)
        except OSError:  # the caller is gone
            return


class Worker:
    """The caller's side of worker process ``index`` (1, 2, ...): its pipe, its
    boxes (``inbox`` for inputs; ``iobox`` for its outputs, then their gradients)
    and the block its parameter gradients come back in."""

    def __init__(self, context, index: int, model, weights: SharedArrays, buffers: SharedArrays,
                 in_capacity: int, io_capacity: int):
        self.index = index
        self.grads = SharedArrays(weights.arrays)
        self.inbox, self.iobox = Box(in_capacity), Box(io_capacity)
        self.conn, theirs = context.Pipe()
        self.process = context.Process(
            target=serve, args=(theirs, self.conn, model, weights, buffers, self.grads, self.inbox, self.iobox,
                  os.getpid()),
            daemon=True, name=f"handgrad-worker-{index}")
        self.process.start()
        theirs.close()

    def forward(self, x, state, training: bool, rows, seeds) -> None:
        self._send(("forward", self.inbox.put(x), state, training, is_grad_enabled(), np.geterr(), rows, seeds))

    def backward(self, dout) -> None:
        self._send(("backward", self.iobox.put(dout), np.geterr()))

    def output(self):
        """(this worker's outputs, its final state) of the forward job sent."""
        _, message, state = self._receive()
        return self.iobox.take(message), state

    def partial(self, like):
        """This worker's partial sums in the exchange under way (shaped as ``like``,
        the caller's own)."""
        return self._receive(like)

    def total(self, sums) -> None:
        """Send the exchange's total back."""
        try:
            send_sums(self.conn, sums)
        except OSError:
            self._died()

    def gradients(self):
        """The parameter gradients of the backward job sent (views of the shared block)."""
        self._receive()
        return self.grads.arrays

    def _send(self, job) -> None:
        try:
            self.conn.send(job)
        except OSError:  # a broken pipe: the worker is gone
            self._died()

    def _receive(self, sums_like=None):
        """The worker's next answer; with ``sums_like``, the exchange's sums it must be."""
        try:
            wait(self.conn)
            data = self.conn.recv_bytes()
        except (EOFError, OSError):
            self._died()
        if data[:1] == SUMS:
            if sums_like is None:
                raise ParallelError(f"data-parallel worker {self.index} sent sums for an exchange when none "
                                    f"was under way")
            return read_sums(data, sums_like)
        answer = pickle.loads(data)
        if answer[0] == "error":
            if answer[2]:  # a MemoryError, as the caller's own share would raise it
                raise MemoryError(f"in data-parallel worker {self.index}: {answer[1].strip().splitlines()[-1]}")
            raise ParallelError(f"data-parallel worker {self.index} failed:\n{answer[1]}")
        if sums_like is not None:
            raise ParallelError(f"data-parallel worker {self.index} answered {answer[0]!r} instead of its sums")
        return answer

    def _died(self):
        self.process.join(timeout=5)
        raise ParallelError(f"data-parallel worker {self.index} died (exit code {self.process.exitcode}) "
                            f"during a forward or backward pass (killed for memory? try a smaller batch)")

    def stop(self) -> None:
        """Ask the process to end, wait for it (killing it after 5 s), close the pipe."""
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
