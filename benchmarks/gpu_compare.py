"""On a CUDA machine: train each zoo model on CuPy, then time handgrad on CuPy
against PyTorch on CUDA (same model, batch, optimizer: benchmarks/compare.py's
twins in torch_twins.py, the ``cnn`` without its flips), side by side with the ratio.

    python benchmarks/gpu_compare.py [mlp lenet5 small_cnn cnn char_lstm] [--train-steps 300]
                                     [--steps 100] [--repeats 3] [--batch-scale 1]

For each model: ``--train-steps`` SGD steps on one fixed batch on the GPU (the loss
must stay finite and fall: it is printed at the start and the end; 0 skips this),
then ``--repeats`` rounds of ``--steps`` timed steps of each library in turns, at
the model's benchmark batch size times ``--batch-scale`` (a step whose time hardly
grows with the batch is bound by kernel launches, not by arithmetic). GPU work
is asynchronous, so every timed run starts and ends with a device synchronisation.
TF32 is off in PyTorch (CuPy does not use it by default), so both do float32
arithmetic. Exits 1 with one line naming what is missing (CuPy, a GPU, PyTorch's
CUDA), never measures on the CPU instead.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import replace
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402  (benchmarks/compare.py: the zoo's benchmarks, their twins in torch_twins.py)
import handgrad  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from handgrad import optim  # noqa: E402
from handgrad.backend import device_module, to_device  # noqa: E402


# without the random flips and shifts, which the twin has on the CPU only
BENCHMARKS = {**compare.BENCHMARKS, "cnn": replace(compare.BENCHMARKS["cnn"], torch_twin="cnn_no_flip",
                                                    build_handgrad=partial(handgrad.models.cnn, flip=False, shift=0))}
MODELS = ["mlp", "lenet5", "small_cnn", "cnn", "char_lstm"]


def require_gpu():
    """CuPy with a usable GPU, and PyTorch with CUDA; else SystemExit with what is missing."""
    try:
        cp = device_module("cuda")
    except (ImportError, RuntimeError) as exc:
        raise SystemExit(f"gpu_compare: {exc}") from None
    if not torch.cuda.is_available():
        raise SystemExit("gpu_compare: this PyTorch has no CUDA (install a CUDA build of torch)")
    return cp


def train(name: str, steps: int, cp) -> None:
    """``steps`` handgrad SGD steps of ``name`` on the GPU; fails unless the loss stays finite and falls."""
    bench = BENCHMARKS[name]
    x, y = bench.make_batch(np.random.default_rng(1), bench.batch_size)
    handgrad.manual_seed(1)
    model = bench.build_handgrad().to("cuda")
    x, y = to_device(x, "cuda"), to_device(y, "cuda")
    criterion = bench.build_loss()
    opt = optim.SGD(model.parameters(), lr=bench.lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        losses.append(criterion(model(x), y))
        opt.zero_grad()
        model.backward(criterion.backward())
        opt.step()
    print(f"{name}: {steps} steps on CuPy, loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    if not all(math.isfinite(v) for v in losses) or not losses[-1] < losses[0]:
        raise SystemExit(f"gpu_compare: {name} did not train on the GPU (loss {losses[0]} -> {losses[-1]})")


def throughput(name: str, steps: int, warmup: int, repeats: int, cp, batch_scale: int = 1) -> float:
    """Rounds of timed steps of handgrad (CuPy) and PyTorch (CUDA); returns the median ratio."""
    bench = BENCHMARKS[name]
    bench = replace(bench, batch_size=bench.batch_size * batch_scale)

    def seconds(run, sync, n):
        sync()
        start = time.perf_counter()
        run(n)
        sync()
        return time.perf_counter() - start

    with ExitStack() as stack:
        run_hg, _ = compare.handgrad_side(bench, 1, False, stack, device="cuda")
        run_pt = compare.torch_side(bench, False, device="cuda")
        sync_hg, sync_pt = cp.cuda.Device().synchronize, torch.cuda.synchronize
        seconds(run_hg, sync_hg, warmup)
        seconds(run_pt, sync_pt, warmup)
        ratios = []
        print(f"{name}: batch {bench.batch_size}, {steps} steps x {repeats} rounds, float32")
        for r in range(repeats):
            hg = steps * bench.batch_size / seconds(run_hg, sync_hg, steps)
            pt = steps * bench.batch_size / seconds(run_pt, sync_pt, steps)
            ratios.append(hg / pt)
            print(f"  round {r + 1}: handgrad/CuPy {hg:12,.0f} {bench.unit}/s   PyTorch/CUDA {pt:12,.0f} "
                  f"{bench.unit}/s   ratio {hg / pt:.3f}")
    median = statistics.median(ratios)
    print(f"  {name}: median ratio handgrad/pytorch on the GPU = {median:.3f}")
    return median


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS, help=f"any of: {', '.join(MODELS)}")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-scale", type=int, default=1, help="multiply each model's batch size")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    cp = require_gpu()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    for name in args.models:
        if args.train_steps:
            train(name, args.train_steps, cp)
    summary = {name: throughput(name, args.steps, args.warmup, args.repeats, cp, args.batch_scale)
               for name in args.models}
    print("median throughput ratio handgrad(CuPy) / PyTorch(CUDA): "
          + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
