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
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import torch

import handgrad
from handgrad import nn, optim
from handgrad.parallel import DataParallel, resolve_workers, usable_cores


@dataclass
class Bench:
    """One benchmarked model: builders for both libraries and a batch maker."""

    batch_size: int
    build_handgrad: Callable[[], nn.Module]
    build_torch: Callable[[], torch.nn.Module]
    make_batch: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
    lr: float = 0.01
    unit: str = "samples"
    build_loss: Callable[[], nn.Module] = nn.CrossEntropyLoss


BENCHMARKS: dict[str, Bench] = {}
SETTLE = 0.5


def register(name: str, bench: Bench) -> None:
    BENCHMARKS[name] = bench


def image_batch(shape, classes=10):
    def make(rng, n):
        x = rng.random((n, *shape), dtype=np.float32)
        return x, rng.integers(0, classes, size=n)

    return make


def _mlp_torch():
    t = torch.nn
    return t.Sequential(t.Flatten(), t.Linear(784, 256), t.ReLU(), t.Linear(256, 256), t.ReLU(), t.Linear(256, 10))


register("mlp", Bench(128, partial(handgrad.models.mlp, 784, [256, 256], 10), _mlp_torch, image_batch((1, 28, 28))))


def _mlp200_torch():
    t = torch.nn
    return t.Sequential(t.Flatten(), t.Linear(784, 200), t.ReLU(), t.Linear(200, 10))


register("mlp200", Bench(32, partial(handgrad.models.mlp, 784, [200], 10), _mlp200_torch, image_batch((1, 28, 28))))


class _CharLSTMTorch(torch.nn.Module):
    """The twin of handgrad.models.char_lstm: Embedding -> 1-layer LSTM -> Linear, same names."""

    def __init__(self, vocab=65, embedding_dim=64, hidden=128):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, embedding_dim)
        self.lstm = torch.nn.LSTM(embedding_dim, hidden, batch_first=True)
        self.decoder = torch.nn.Linear(hidden, vocab)

    def forward(self, x):
        return self.decoder(self.lstm(self.embedding(x))[0])


def _char_batch(rng, n, vocab=65, steps=50):
    return rng.integers(0, vocab, size=(n, steps)), rng.integers(0, vocab, size=(n, steps))


def _char_lstm_handgrad():
    return handgrad.models.char_lstm(vocab_size=65, hidden_size=128, num_layers=1, embedding_dim=64)


register("char_lstm", Bench(32, _char_lstm_handgrad, _CharLSTMTorch, _char_batch, unit="sequences",
                            build_loss=nn.TemporalCrossEntropyLoss))


def _lenet5_torch():
    t = torch.nn
    return t.Sequential(
        t.Conv2d(1, 6, 5), t.ReLU(), t.MaxPool2d(2), t.Conv2d(6, 16, 5), t.ReLU(), t.MaxPool2d(2),
        t.Flatten(), t.Linear(256, 120), t.ReLU(), t.Linear(120, 84), t.ReLU(), t.Linear(84, 10),
    )


def _small_cnn_torch():
    t = torch.nn
    return t.Sequential(
        t.Conv2d(1, 8, 3, padding="same"), t.ReLU(), t.MaxPool2d(2),
        t.Conv2d(8, 8, 3, padding="same"), t.ReLU(), t.MaxPool2d(2),
        t.Flatten(), t.Linear(392, 32), t.ReLU(), t.Linear(32, 10),
    )


class _RandomFlipTorch(torch.nn.Module):
    """handgrad's RandomShiftFlip(shift=0): each image flipped left-right with probability 1/2."""

    def forward(self, x):
        if not self.training:
            return x
        flips = torch.rand(len(x)) < 0.5
        return torch.where(flips[:, None, None, None], x.flip(-1), x)


def _cnn_torch():
    """The twin of handgrad.models.cnn(): flips, three conv/BN/ReLU/pool blocks, dropout."""
    t, layers, channels = torch.nn, [_RandomFlipTorch()], 1
    for w in (16, 32, 64):
        layers += [t.Conv2d(channels, w, 3, padding="same", bias=False), t.BatchNorm2d(w), t.ReLU(), t.MaxPool2d(2)]
        channels = w
    return t.Sequential(*layers, t.Flatten(), t.Linear(576, 96), t.ReLU(), t.Dropout(0.3), t.Linear(96, 10))


register("lenet5", Bench(64, handgrad.models.lenet5, _lenet5_torch, image_batch((1, 28, 28))))
register("cnn", Bench(64, handgrad.models.cnn, _cnn_torch, image_batch((1, 28, 28))))
register("small_cnn", Bench(100, handgrad.models.small_cnn, _small_cnn_torch, image_batch((1, 28, 28))))


def handgrad_steps(net, criterion, opt, x, y, steps: int) -> float:
    """Seconds for ``steps`` handgrad training steps (forward, loss, backward, SGD update);
    ``net`` is the model, or a DataParallel sharing its passes between processes."""
    start = time.perf_counter()
    for _ in range(steps):
        logits = net(x)
        criterion(logits, y)
        opt.zero_grad()
        net.backward(criterion.backward())
        opt.step()
    return time.perf_counter() - start


def torch_steps(model, opt, x, y, steps: int) -> float:
    criterion = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(steps):
        logits = model(x)
        loss = criterion(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def timed(run, steps: int) -> float:
    """Seconds for ``run(steps)`` after letting the other library's threads go idle."""
    time.sleep(SETTLE)
    return run(steps)


def compare(name: str, steps: int, warmup: int, repeats: int, workers="auto", batch_size=None) -> float:
    bench = BENCHMARKS[name]
    if batch_size is not None:
        bench = Bench(**{**bench.__dict__, "batch_size": batch_size})
    rng = np.random.default_rng(0)
    x, y = bench.make_batch(rng, bench.batch_size)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    handgrad.manual_seed(0)
    model_hg, model_pt = bench.build_handgrad(), bench.build_torch()
    opt_hg = optim.SGD(model_hg.parameters(), lr=bench.lr, momentum=0.9)
    opt_pt = torch.optim.SGD(model_pt.parameters(), lr=bench.lr, momentum=0.9)
    criterion = bench.build_loss()
    workers = resolve_workers(model_hg, workers)  # as the Trainer resolves it
    with DataParallel(model_hg, workers) as parallel:
        run_hg = partial(handgrad_steps, parallel if workers > 1 else model_hg, criterion, opt_hg, x, y)
        run_pt = partial(torch_steps, model_pt, opt_pt, xt, yt)
        return _rounds(name, bench, run_hg, run_pt, steps, warmup, repeats, workers)


def _rounds(name, bench, run_hg, run_pt, steps, warmup, repeats, workers) -> float:
    run_hg(warmup)
    run_pt(warmup)
    ratios = []
    print(f"{name}: batch {bench.batch_size}, {steps} steps x {repeats} rounds, PyTorch {torch.get_num_threads()} "
          f"threads, handgrad {workers} process{'es' if workers > 1 else ''}")
    for r in range(repeats):
        hg = steps * bench.batch_size / timed(run_hg, steps)
        pt = steps * bench.batch_size / timed(run_pt, steps)
        ratios.append(hg / pt)
        print(f"  round {r + 1}: handgrad {hg:10,.0f} {bench.unit}/s   pytorch {pt:10,.0f} {bench.unit}/s   ratio {hg / pt:.2f}")
    median = statistics.median(ratios)
    print(f"  {name}: median ratio handgrad/pytorch = {median:.2f} (spread {min(ratios):.2f}-{max(ratios):.2f})")
    return median


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["mlp"], help=f"any of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", default="auto",
                        help="handgrad processes sharing each batch (default auto: one per usable core)")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: the usable cores)")
    parser.add_argument("--batch-size", type=int, default=None, help="instead of each model's own")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    workers = "auto" if args.workers == "auto" else int(args.workers)
    torch.set_num_threads(args.threads or usable_cores())
    if args.threads == 1:  # one core each: handgrad's BLAS too
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    for name in args.models:
        compare(name, args.steps, args.warmup, args.repeats, workers, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
