"""The fully-connected search's table (search.toml) from its longest runs only.

    handgrad sweep experiments/search.toml --out runs/search80 --set epochs=80 --set eval_test=true
    python experiments/search_table.py runs/search80

A run of E epochs is exactly the first E epochs of a longer run with the same
settings: the same seed, the same shuffles, the same learning rate at every
epoch (lr * lr_decay^epoch), so the same weights after each epoch
(tests/test_train_config.py checks this). So the 9 runs of 80 epochs hold the
27 settings of the grid's 30 / 50 / 80 epochs: for each E, the best
validation accuracy over epochs 1..E, the test accuracy of those best
weights (what the E-epoch run reports as ``test_accuracy``; ``eval_test``
measured the test set after every epoch) and the test accuracy after epoch E
(``final_test_accuracy``). The --set forcing epochs=80 makes the 30- and
50-epoch settings identical to the 80-epoch one, so the sweep runs 9, not 27.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from handgrad.train.config import read_toml


def rows(sweep_dir: Path, epochs: list[int]):
    """(hidden, batch, E, best val, test acc of the best-val weights, test acc after E) per run and E."""
    for path in sorted((sweep_dir / "runs").glob("*/result.json")):
        record = json.loads(path.read_text())
        if record.get("status") != "ok":
            continue
        result = record["result"]
        config, evals = result["config"], result["history"]["eval"]
        if not config["eval_test"]:
            raise SystemExit(f"{path}: trained without eval_test = true: no test accuracy after each epoch")
        for e in epochs:
            seen = [r for r in evals if 0 < r["epoch"] <= e]
            if not seen or seen[-1]["epoch"] != e:
                continue  # the run stopped before epoch e
            best = max(seen, key=lambda r: r["val_acc"])  # the first of equal maxima, as the Trainer keeps
            yield config["model_kwargs"]["hidden"], config["batch_size"], e, best["val_acc"], best["test_acc"], \
                seen[-1]["test_acc"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--spec", type=Path, default=Path(__file__).with_name("search.toml"),
                        help="the spec whose epochs axis to read (default: search.toml)")
    args = parser.parse_args(argv)
    epochs = sorted(read_toml(args.spec)["sweep"]["grid"]["epochs"])
    table = sorted(rows(args.sweep_dir, epochs), key=lambda r: (r[0], r[1], r[2]))
    if not table:
        raise SystemExit(f"{args.sweep_dir}: no finished runs")
    best = max(table, key=lambda r: r[3])
    print("| hidden | batch | epochs | best validation accuracy | test accuracy (best-val weights) | "
          "test accuracy after the last epoch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in table:
        mark = "**" if r is best else ""
        print(f"| {mark}{r[0]}{mark} | {mark}{r[1]}{mark} | {mark}{r[2]}{mark} | {mark}{r[3]:.4f}{mark} | "
              f"{r[4]:.4f} | {r[5]:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
