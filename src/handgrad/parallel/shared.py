"""Shared memory between the caller and its forked workers, with no name to leak.

Every block is an anonymous shared mapping, ``mmap(-1, size)`` (MAP_SHARED |
MAP_ANONYMOUS), made in the caller before the fork: the worker inherits the
mapping, so both processes see the same pages, and nothing is ever created in
``/dev/shm``. Named segments (``multiprocessing.shared_memory``) would have to
be unlinked by someone, which a SIGKILLed caller cannot do, and they register
with multiprocessing's resource_tracker process, which warns about "leaked"
segments at exit. Anonymous pages simply go back to the system when the last
process mapping them ends, however it ends. The price: a block cannot be
handed to a running worker, so the blocks are sized when the workers start,
and an array that does not fit travels through the pipe instead.
"""
from __future__ import annotations

import mmap

import numpy as np

ALIGN = 64  # bytes; each array starts on a cache line


def _aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGN) * ALIGN


class SharedArrays:
    """Arrays shaped like the arrays ``like``, end to end in one shared block
    (the weights, or a worker's gradients)."""

    def __init__(self, like):
        sizes = [_aligned(a.nbytes) for a in like]
        self._memory = mmap.mmap(-1, max(1, sum(sizes)))
        self.arrays, offset = [], 0
        for a, size in zip(like, sizes):
            self.arrays.append(np.ndarray(a.shape, a.dtype, buffer=self._memory, offset=offset))
            offset += size


class Box:
    """A shared block through which one array at a time goes to or from a worker.

    ``put(a)`` copies ``a`` in and returns the short message that describes it;
    ``take(message)`` is the array, a view of the block. An array larger than the
    block rides in the message itself (through the pipe).
    """

    def __init__(self, capacity: int):
        self.capacity = max(1, capacity)
        self._memory = mmap.mmap(-1, self.capacity)

    def put(self, a):
        a = np.asarray(a)
        if a.nbytes > self.capacity:
            return ("pipe", a)
        np.ndarray(a.shape, a.dtype, buffer=self._memory)[...] = a
        return ("box", a.shape, a.dtype.str)

    def take(self, message):
        if message[0] == "pipe":
            return message[1]
        _, shape, dtype = message
        return np.ndarray(shape, dtype, buffer=self._memory)
