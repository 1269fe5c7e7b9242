"""Where a training run's time goes: one run with ``handgrad train``'s defaults, by phase.

    python benchmarks/epoch.py [--model cnn] [--data fashion-mnist] [--epochs 1] [--set KEY=VALUE ...]

Runs :func:`handgrad.train.run.train_from_config` into a temporary run
directory (``--out`` keeps it) and prints the wall time of each phase the Trainer records
(``results.json``'s ``seconds``: training steps, evaluations, checkpoints, the
final test-set pass) and of everything else (loading the data, building the
model, writing the report and its plots), each as a share of the whole run.
Everything but the training steps is overhead; the target is at most 10%.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from handgrad.cli import parse_setting
from handgrad.sweep.space import set_path
from handgrad.train.run import train_from_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other setting")
    parser.add_argument("--out", help="keep the run directory here (default: a temporary one)")
    args = parser.parse_args(argv)
    config = {"model": args.model, "data": args.data, "epochs": args.epochs}
    for item in args.set:
        set_path(config, *parse_setting(item))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train_from_config(config, out_dir=args.out or Path(tmp) / "run")
        total = time.perf_counter() - start
    phases = dict(result["seconds"])
    phases["everything else (data, model, report, plots)"] = total - sum(phases.values())
    cfg, accuracy = result["config"], result["test_accuracy"]
    print(f"{cfg['model']} on {cfg['data']}, {cfg['epochs']} epoch(s) of batch {cfg['batch_size']}, "
          f"workers {cfg['workers']}: {total:.1f} s, test accuracy "
          f"{'(no test set)' if accuracy is None else f'{accuracy:.4f}'}")
    width = max(map(len, phases))
    for phase, seconds in phases.items():
        print(f"  {phase:<{width}}  {seconds:8.1f} s  {100 * seconds / total:5.1f}%")
    overhead = total - phases.get("training steps", 0.0)
    print(f"  {'overhead (all but the steps)':<{width}}  {overhead:8.1f} s  {100 * overhead / total:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
