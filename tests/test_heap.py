"""keep_freed_memory: a freed array's memory serves the next allocation of the
same size without page faults (glibc), and it is a no-op elsewhere."""
import platform
import subprocess
import sys

import pytest

from handgrad import heap

FAULTS_PER_ALLOCATION = """
import resource, sys
import numpy as np
from handgrad.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
np.ones(5 << 20)  # 40 MiB: over glibc's largest dynamic mmap threshold (32 MiB)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    np.ones(5 << 20)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_allocation(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", FAULTS_PER_ALLOCATION, mode], capture_output=True, text=True,
                          check=True)
    return float(done.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_freed_array_is_reused_without_page_faults():
    fresh, kept = faults_per_allocation("default"), faults_per_allocation("keep")
    assert fresh >= 10  # glibc maps the block afresh every time: at least one fault per (huge) page
    assert kept <= 1


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert heap.keep_freed_memory() is False
