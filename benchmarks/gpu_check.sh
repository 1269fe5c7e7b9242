#!/usr/bin/env bash
# The GPU check: on a machine with a CUDA GPU, CuPy and a CUDA build of PyTorch,
#   (a) every test of tests/test_strict_backend.py and tests/test_device.py also runs on
#       real CuPy arrays (HANDGRAD_TEST_DEVICE=cuda), the PyTorch oracle on CUDA;
#   (b) each zoo model trains for --train-steps steps on CuPy (the loss must fall);
#   (c) handgrad-on-CuPy throughput is printed beside PyTorch-on-CUDA, with the ratio;
#   (d) the command line with --device cuda: train, resume on the CPU, evaluate and
#       predict on the GPU, and a char-LSTM trained and sampled on the GPU.
# Every part runs even when an earlier one fails; the check then exits 1 naming the
# parts that failed. It fails (exit 1, one line saying what is missing) without CuPy,
# a GPU or PyTorch CUDA; it never passes on a machine that cannot run it.
#
#   benchmarks/gpu_check.sh                 # everything, a few minutes on a GPU
#   PYTHON=/path/to/python benchmarks/gpu_check.sh mlp char_lstm   # (b), (c) for some models only
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python}
failed=()

"$PYTHON" - <<'PY' || { echo "gpu_check: FAILED: no usable GPU stack (see the line above)" >&2; exit 1; }
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
      f"PyTorch {torch.__version__}, NumPy {__import__('numpy').__version__}")
PY

echo "== (a) tests on CuPy arrays, PyTorch oracle on CUDA"
HANDGRAD_TEST_DEVICE=cuda "$PYTHON" -m pytest -q -p no:xdist -p no:cacheprovider --durations=5 \
    tests/test_strict_backend.py tests/test_device.py || failed+=("(a) tests on CuPy")

echo "== (b) training on CuPy, (c) throughput beside PyTorch CUDA"
"$PYTHON" benchmarks/gpu_compare.py "$@" || failed+=("(b)/(c) benchmarks/gpu_compare.py")

echo "== (d) the command line on the GPU"
cli() { echo "\$ handgrad $*"; "$PYTHON" -m handgrad "$@"; }
run=$(mktemp -d)
{ cli train --model mlp --data digits --epochs 2 --device cuda --out "$run/mlp" --quiet &&
  cli train --out "$run/mlp" --resume --epochs 3 --device cpu --quiet &&
  cli evaluate --checkpoint "$run/mlp" --device cuda --out "$run/mlp/eval" &&
  cli predict --checkpoint "$run/mlp" --data digits --device cuda --out "$run/mlp/preds.csv" &&
  cli train --model char_lstm --data text --text-file README.md --epochs 1 --device cuda \
      --out "$run/lstm" --quiet &&
  cli generate --checkpoint "$run/lstm" --device cuda --length 200 --seed 1; } || failed+=("(d) the command line")
rm -rf "$run"

if ((${#failed[@]})); then
    echo "gpu_check: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "gpu_check: OK"
