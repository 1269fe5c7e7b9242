"""Freed memory kept in the process for the next training step (glibc's malloc).

A training step allocates the same arrays every time: activations, caches,
gradients, some of them megabytes. glibc's malloc serves a block over its mmap
threshold with a fresh mapping, unmapped again when freed, and gives the free
memory at the top of its heap back to the system once it exceeds its trim
threshold. Either way the next step touches pages the process no longer has:
every first touch of a 4 KiB page is a page fault, and the kernel zeroes the
page before handing it over. Both thresholds adapt: they start at 128 KiB and
rise when a mapped block is freed, up to 32 and 64 MiB. So whether a step
faults depends on what the process happened to free before. Loading
Fashion-MNIST frees blocks of tens of megabytes, and the Trainer's steps then
hardly fault (9 faults a step, lenet5); a loop without such a block does: lenet5
at batch 64 in two processes, 542 faults a step in the main process and 2.47 ms
a step, against 2 faults and 1.49 ms with the thresholds raised from the start
(a 2-core EPYC, best of five rounds).

:func:`keep_freed_memory` sets both thresholds to those largest values at once,
the state glibc reaches by itself after freeing a 32 MiB block. It changes no
result, only where the bytes come from; the process keeps no more memory than
that adaptation would let it keep (the cnn's Fashion-MNIST run peaked at the
same 524 MB). ``Trainer.fit``, every data-parallel worker, the CLI and
``benchmarks/compare.py`` call it. (PyTorch users get the same effect from
jemalloc or tcmalloc, which PyTorch's performance guide recommends preloading.)
"""
from __future__ import annotations

import ctypes
import platform

MMAP_THRESHOLD = 32 << 20  # bytes: blocks up to this size come from the heap (glibc's largest dynamic value)
TRIM_THRESHOLD = 64 << 20  # bytes: free memory at the heap's top kept for reuse (likewise)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds for this process (see the module
    docstring); True if set, False where the C library is not glibc (macOS,
    musl), which then allocates as it always does."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
