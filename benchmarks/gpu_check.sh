#!/usr/bin/env bash
# The GPU check: on a machine with a CUDA GPU, CuPy and a CUDA build of PyTorch,
#   (a) every test of tests/test_strict_backend.py and tests/test_device.py also runs on
#       real CuPy arrays (HANDGRAD_TEST_DEVICE=cuda), the PyTorch oracle on CUDA;
#   (b) each zoo model trains for --train-steps steps on CuPy (the loss must fall);
#   (c) handgrad-on-CuPy throughput is printed beside PyTorch-on-CUDA, with the ratio.
# It fails (exit 1, one line saying what is missing) without CuPy, a GPU or PyTorch CUDA;
# it never passes on a machine that cannot run it.
#
#   benchmarks/gpu_check.sh                 # everything, a few minutes on a GPU
#   PYTHON=/path/to/python benchmarks/gpu_check.sh mlp char_lstm   # (b), (c) for some models only
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python}

fail() { echo "gpu_check: FAILED: $*" >&2; exit 1; }

"$PYTHON" - <<'PY' || fail "no usable GPU stack (see the line above)"
import sys
from handgrad.backend import device_module
try:
    cp = device_module("cuda")
except (ImportError, RuntimeError) as exc:
    sys.exit(f"gpu_check: {exc}")
try:
    import torch
except ImportError:
    sys.exit("gpu_check: PyTorch is missing (the oracle): pip install torch")
if not torch.cuda.is_available():
    sys.exit("gpu_check: this PyTorch has no CUDA: install a CUDA build of torch")
print(f"gpu_check: CuPy {cp.__version__} on {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, "
      f"PyTorch {torch.__version__}")
PY

echo "== (a) tests on CuPy arrays, PyTorch oracle on CUDA"
HANDGRAD_TEST_DEVICE=cuda "$PYTHON" -m pytest -q -p no:xdist -p no:cacheprovider \
    tests/test_strict_backend.py tests/test_device.py || fail "tests on CuPy"

echo "== (b) training on CuPy, (c) throughput beside PyTorch CUDA"
"$PYTHON" benchmarks/gpu_compare.py "$@" || fail "benchmarks/gpu_compare.py"
echo "gpu_check: OK"
