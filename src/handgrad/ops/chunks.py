"""Cache blocking over the batch: kernels whose samples are independent (a
convolution's columns, max pooling's passes) take a few samples at a time, so
that the temporaries one step writes are still in the core's cache when the
next step reads them, instead of going out to memory and back.

On the CPU a chunk's temporaries take about ``CHUNK_BYTES``, well inside the
1-2 MiB of level-2 cache a core of a current x86 server has (512 KiB measured
best of 256 KiB to 2 MiB for the zoo's conv nets on this project's machine);
on a GPU the whole batch is one chunk, in as few launches as possible.
"""
from __future__ import annotations

import numpy as np

CHUNK_BYTES = 1 << 19


def sample_chunks(xp, n: int, bytes_per_sample: int) -> list[slice]:
    """The batch's ``n`` samples as consecutive slices of equal length (the last
    may be shorter), each taking about CHUNK_BYTES at ``bytes_per_sample``; one
    slice off the CPU (``xp`` not NumPy itself: CuPy, or another device's module)."""
    if xp is not np or n == 0:
        return [slice(0, n)]
    count = -(-n // max(1, CHUNK_BYTES // max(1, bytes_per_sample)))
    size = -(-n // count)
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]
