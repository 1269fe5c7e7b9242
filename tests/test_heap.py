"""keep_freed_memory: the memory a step frees serves the next step without page
faults (glibc), and it is a no-op elsewhere."""
import platform
import subprocess
import sys

import pytest

from handgrad import heap

FAULTS_PER_STEP = """
import resource, sys
import numpy as np
from handgrad.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step():  # a training step's worth of arrays: 8 MiB in 1 MiB blocks, all freed at its end
    arrays = [np.ones(1 << 18, np.float32) for _ in range(8)]
    del arrays
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_step(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, mode], capture_output=True, text=True,
                          check=True)
    return float(done.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_steps_freed_arrays_serve_the_next_step_without_page_faults():
    fresh, kept = faults_per_step("default"), faults_per_step("keep")
    assert fresh >= 100  # glibc gives the 8 MiB back at every step's end: a fault per page touched again
    assert kept <= 1


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert heap.keep_freed_memory() is False
