"""handgrad.shapes: O = floor((I + 2P - D(K - 1) - 1) / S) + 1 and its inverse, and ``handgrad shape``."""
import itertools
import subprocess
import sys

import pytest

from handgrad.shapes import conv_output_size, kernel_sizes


def test_lenet5_kernel_from_the_course_formula():
    # K = I + 2P - S(O - 1): C1 takes 32x32 to 28x28, S2 halves with a 2x2 window at stride 2
    assert kernel_sizes(32, 28) == [5]
    assert kernel_sizes(28, 14, stride=2) == [1, 2]  # floor division: K = 1 at stride 2 also gives 14
    assert kernel_sizes(28, 28, padding=2) == [5]


def test_kernel_sizes_are_exactly_the_kernels_that_give_the_output():
    for size, stride, padding, dilation in itertools.product(range(1, 16), range(1, 5), range(3), range(1, 4)):
        by_output = {}
        for k in range(1, 2 * size + 8):
            if dilation * (k - 1) + 1 <= size + 2 * padding:
                by_output.setdefault(conv_output_size(size, k, stride, padding, dilation), []).append(k)
        for output in range(-1, size + 2 * padding + 3):
            assert kernel_sizes(size, output, stride, padding, dilation) == by_output.get(output, []), \
                (size, output, stride, padding, dilation)


def test_no_integer_kernel():
    assert kernel_sizes(32, 33) == []  # K = 1 gives 32 at most
    assert kernel_sizes(10, 5, dilation=2) == []  # K = 3 gives 6, K = 4 gives 4


def handgrad(*args):
    return subprocess.run([sys.executable, "-m", "handgrad", "shape", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args,line", [
    (["--input", "32", "--output", "28", "--stride", "1", "--padding", "0"], "kernel size 5"),
    (["--input", "32", "--kernel", "5"], "output size 28"),
    (["--input", "7", "--kernel", "3", "--stride", "2", "--padding", "1"], "output size 4"),
    (["--input", "32", "--output", "14", "--stride", "2"], "kernel sizes 5, 6 (the floor division gives output 14 for each)"),
])
def test_cli_shape(args, line):
    done = handgrad(*args)
    assert done.returncode == 0 and done.stdout == line + "\n", done.stderr


@pytest.mark.parametrize("args,message", [
    (["--input", "32", "--output", "33"], "no integer kernel size K >= 1 gives output 33 from input 32"),
    (["--input", "10", "--output", "5", "--dilation", "2"], "no integer kernel size K >= 1 gives output 5"),
    (["--input", "4", "--kernel", "7"], "kernel larger than the padded input"),
    (["--input", "0", "--kernel", "3"], "--input must be a positive integer, got 0"),
])
def test_cli_shape_errors_in_one_line(args, message):
    done = handgrad(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("handgrad shape: error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1
