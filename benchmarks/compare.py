"""Train the same model in handgrad and in PyTorch, side by side, and compare throughput.

    python benchmarks/compare.py mlp [lenet5 small_cnn cnn char_lstm ...] [--steps 50] [--repeats 5]

For each model both libraries get the same architecture, the same random batch,
the same batch size, the same optimizer and all CPU cores. After a warm-up, the
two libraries take turns: ``--repeats`` timed rounds of ``--steps`` training
steps each, so that both see the same machine noise. Printed: samples/s of each
library per round, the median ratio handgrad / PyTorch and its spread (min-max
over rounds). PyTorch is only an oracle here; handgrad never imports it.

Both libraries share the process, and each keeps its own worker threads:
OpenBLAS's (NumPy) spin for about 0.1 s after a call and PyTorch's OpenMP
threads likewise, stealing the cores from whoever runs next. Every timed run is
therefore preceded by a pause of ``SETTLE`` seconds; without it PyTorch measured
less than half its own speed here.

By default handgrad trains as ``Trainer()`` / ``handgrad train`` do,
``workers="auto"``: each batch shared by one process per usable core
(:mod:`handgrad.parallel`), except for an MLP, which BLAS's threads run faster
in one process, while PyTorch uses as many threads. ``--workers 1
--threads 1`` compares one core with one core; ``--batch-size N`` overrides the
models' batch sizes (``mlp200``, the 784-200-10 MLP, at batch 2, 8, 32 measures
the per-step overhead).

``--eval`` times inference instead: predictions of a batch (``--batch-size 1000``
for the evaluation target) in eval mode, as ``handgrad evaluate`` and ``predict``
make them, against PyTorch's eval mode under ``torch.no_grad()``. ``--memory``
then runs each library alone in a fresh process (PyTorch's side imports
handgrad too, handgrad's never imports PyTorch) for
the same steps and prints both peak resident set sizes; handgrad's workers are
forked processes, and the total counts the pages they share with the main
process once per process, so it overstates handgrad's use.
"""
from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import numpy as np

import handgrad
from handgrad import nn, optim
from handgrad.backend import to_device
from handgrad.heap import keep_freed_memory
from handgrad.parallel import DataParallel, StepThreads, resolve_workers, steps_on_one_thread, usable_cores
from handgrad.train.evaluate import predict_logits


@dataclass
class Bench:
    """One benchmarked model: its builder, its PyTorch twin (a function name in
    torch_twins.py) and a batch maker."""

    batch_size: int
    build_handgrad: Callable[[], nn.Module]
    torch_twin: str
    make_batch: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
    lr: float = 0.01
    unit: str = "samples"
    build_loss: Callable[[], nn.Module] = nn.CrossEntropyLoss

    def build_torch(self):
        return getattr(importlib.import_module("torch_twins"), self.torch_twin)()


SETTLE = 0.5


def image_batch(rng, n):
    return rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, size=n)


def char_batch(rng, n, vocab=65, steps=50):
    return rng.integers(0, vocab, size=(n, steps)), rng.integers(0, vocab, size=(n, steps))


BENCHMARKS = {
    "mlp": Bench(128, partial(handgrad.models.mlp, 784, [256, 256], 10), "mlp", image_batch),
    "mlp200": Bench(32, partial(handgrad.models.mlp, 784, [200], 10), "mlp200", image_batch),
    "lenet5": Bench(64, handgrad.models.lenet5, "lenet5", image_batch),
    "small_cnn": Bench(100, handgrad.models.small_cnn, "small_cnn", image_batch),
    "cnn": Bench(64, handgrad.models.cnn, "cnn", image_batch),
    "char_lstm": Bench(32, partial(handgrad.models.char_lstm, vocab_size=65, hidden_size=128, num_layers=1,
                                   embedding_dim=64), "char_lstm", char_batch, unit="sequences",
                       build_loss=nn.TemporalCrossEntropyLoss),
}


def batch(bench: Bench):
    return bench.make_batch(np.random.default_rng(0), bench.batch_size)


def start_model(bench: Bench) -> nn.Module:
    """The handgrad model both libraries start from: PyTorch's twin is loaded with its
    weights, so the two follow the same trajectory (to rounding). Starting elsewhere
    would let them meet different numbers: ReLU units that die leave SGD momentum
    buffers that decay into denormal floats, which cost 50 times as much arithmetic
    (on a fixed batch of 2, a sixth of mlp200's hidden units by step 800)."""
    handgrad.manual_seed(0)
    return bench.build_handgrad()


def handgrad_side(bench: Bench, workers, evaluating: bool, stack, device="cpu"):
    """(run, workers, one_thread): ``run(steps)`` times ``steps`` handgrad training steps (forward,
    loss, backward, SGD update) or, ``evaluating``, predictions of the batch in eval
    mode; the model's batches are shared by ``workers`` processes as the Trainer
    resolves that number. ``stack`` (an ExitStack) stops the workers. On ``device``
    "cuda" the model and the batch live on the GPU (CuPy), in one process."""
    keep_freed_memory()  # as Trainer.fit and the CLI do (PyTorch's side, in the same process, gains too)
    x, y = (to_device(a, device) for a in batch(bench))
    model, criterion = start_model(bench).to(device), bench.build_loss()
    opt = optim.SGD(model.parameters(), lr=bench.lr, momentum=0.9)
    workers = resolve_workers(model, workers)  # "auto" is 1 off the CPU
    net = stack.enter_context(DataParallel(model, workers)) if workers > 1 else model
    # as the Trainer: in one process, training steps of small matrix products on one BLAS thread
    threads = StepThreads(not evaluating and steps_on_one_thread(model, bench.batch_size, workers, device))

    def train(steps: int) -> float:
        with threads:  # held for handgrad's steps only, not PyTorch's
            start = time.perf_counter()
            for _ in range(steps):
                logits = net(x)
                criterion(logits, y)
                opt.zero_grad()
                net.backward(criterion.backward())
                opt.step()
            return time.perf_counter() - start

    def infer(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            predict_logits(net, x, batch_size=len(x))
        return time.perf_counter() - start

    return (infer if evaluating else train), workers, threads.one


def torch_side(bench: Bench, evaluating: bool, device="cpu"):
    """``run(steps)`` timing the same steps in PyTorch (``torch.no_grad`` and eval mode
    when ``evaluating``), on ``device`` ("cpu" or "cuda")."""
    import torch

    x, y = (torch.from_numpy(a).to(device) for a in batch(bench))
    y = y.long()
    model, criterion = bench.build_torch(), torch.nn.CrossEntropyLoss()
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in start_model(bench).state_dict().items()})
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=bench.lr, momentum=0.9)

    def train(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            logits = model(x)
            loss = criterion(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return time.perf_counter() - start

    def infer(steps: int) -> float:
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(steps):
                model(x)
        return time.perf_counter() - start

    return infer if evaluating else train


def timed(run, steps: int) -> float:
    """Seconds for ``run(steps)`` after letting the other library's threads go idle."""
    time.sleep(SETTLE)
    return run(steps)


def compare(name: str, args) -> float:
    """Both libraries on model ``name`` in turns; returns the median throughput ratio."""
    import torch

    bench = BENCHMARKS[name]
    if args.batch_size is not None:
        bench = replace(bench, batch_size=args.batch_size)
    with ExitStack() as stack:
        run_hg, workers, one_thread = handgrad_side(bench, args.workers, args.eval, stack)
        run_pt = torch_side(bench, args.eval)
        run_hg(args.warmup)
        run_pt(args.warmup)
        what = "inference (eval mode)" if args.eval else "training"
        print(f"{name} {what}: batch {bench.batch_size}, {args.steps} steps x {args.repeats} rounds, "
              f"PyTorch {torch.get_num_threads()} threads, handgrad {workers} process{'es' if workers > 1 else ''}"
              f"{' (one BLAS thread)' if one_thread else ''}")
        ratios = []
        for r in range(args.repeats):
            hg = args.steps * bench.batch_size / timed(run_hg, args.steps)
            pt = args.steps * bench.batch_size / timed(run_pt, args.steps)
            ratios.append(hg / pt)
            print(f"  round {r + 1}: handgrad {hg:10,.0f} {bench.unit}/s   pytorch {pt:10,.0f} {bench.unit}/s   "
                  f"ratio {hg / pt:.2f}")
    median = statistics.median(ratios)
    print(f"  {name}: median ratio handgrad/pytorch = {median:.2f} (spread {min(ratios):.2f}-{max(ratios):.2f})")
    return median


def peak_memory(name: str, args) -> None:
    """Each library in a fresh process of its own (handgrad's never imports PyTorch),
    running the same steps; prints both peak resident set sizes."""
    common = [name, "--steps", str(args.steps), "--warmup", str(args.warmup), "--workers", str(args.workers)]
    if args.batch_size is not None:
        common += ["--batch-size", str(args.batch_size)]
    if args.threads is not None:
        common += ["--threads", str(args.threads)]
    if args.eval:
        common.append("--eval")
    peaks = {}
    for library in ("handgrad", "pytorch"):
        done = subprocess.run([sys.executable, __file__, *common, "--peak-of", library], check=True,
                              capture_output=True, text=True)
        peaks[library] = json.loads(done.stdout.splitlines()[-1])
    hg, pt = peaks["handgrad"], peaks["pytorch"]
    workers = f" + {hg['workers']} MiB in the largest worker" if hg["workers"] else ""
    total = hg["main"] + hg["workers"] * (hg["processes"] - 1)
    print(f"  {name}: peak resident memory: handgrad {hg['main']} MiB{workers} ({hg['processes']} "
          f"process{'es' if hg['processes'] > 1 else ''}, {total} MiB in all), PyTorch {pt['main']} MiB; "
          f"ratio {total / pt['main']:.2f}")


def _peak_of(library: str, name: str, args) -> None:
    """The child of :func:`peak_memory`: run, then print the peak resident memory of
    this process and of its largest worker (VmHWM: ``ru_maxrss`` would count the
    parent's memory at the fork)."""
    bench = BENCHMARKS[name]
    if args.batch_size is not None:
        bench = replace(bench, batch_size=args.batch_size)
    processes, worker_peaks = 1, [0]
    with ExitStack() as stack:
        if library == "handgrad":
            run, processes, _ = handgrad_side(bench, args.workers, args.eval, stack)
        else:
            import torch

            torch.set_num_threads(args.threads or usable_cores())
            run = torch_side(bench, args.eval)
        run(args.warmup + args.steps)
        worker_peaks += [_peak_mib(p.pid) for p in multiprocessing.active_children()]
    print(json.dumps({"main": _peak_mib("self"), "processes": processes, "workers": max(worker_peaks)}))


def _peak_mib(pid) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024  # kB
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def blas_line() -> str:
    """NumPy's BLAS and the kernels it chose for this CPU, with a warning where the
    environment forces older ones (``OPENBLAS_CORETYPE``: some machines set it
    globally, and on an AVX-512 CPU the Haswell kernels run matrix products at
    about half speed)."""
    from threadpoolctl import threadpool_info

    blas = [f"{i['internal_api']} {i.get('version') or ''} ({i.get('architecture') or 'kernels unknown'}, "
            f"{i['num_threads']} threads)" for i in threadpool_info() if i["user_api"] == "blas"]
    line = f"NumPy {np.__version__}, BLAS: {', '.join(blas) or 'none found'}"
    forced = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    if forced:
        line += f"\n  warning: {forced} set in the environment: OpenBLAS's kernels are not its own choice for this CPU"
    return line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["mlp"], help=f"any of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", default="auto",
                        help="handgrad processes sharing each batch (default auto, as the Trainer: one per usable "
                             "core when the model gains from it)")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: the usable cores)")
    parser.add_argument("--batch-size", type=int, default=None, help="instead of each model's own")
    parser.add_argument("--eval", action="store_true", help="inference in eval mode instead of training")
    parser.add_argument("--memory", action="store_true",
                        help="also each library's peak resident memory, in a process of its own")
    parser.add_argument("--peak-of", choices=("handgrad", "pytorch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    args.workers = "auto" if args.workers == "auto" else int(args.workers)
    if args.threads == 1:  # one core each: handgrad's BLAS too
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    if args.peak_of:
        _peak_of(args.peak_of, args.models[0], args)
        return 0
    import torch

    torch.set_num_threads(args.threads or usable_cores())
    print(blas_line())
    for name in args.models:
        compare(name, args)
        if args.memory:
            peak_memory(name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
