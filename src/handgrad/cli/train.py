"""``handgrad train``: train a zoo model on a registered data set and write a run directory."""
from __future__ import annotations

import sys
import time
from pathlib import Path

# config key -> (type, metavar, help); every flag defaults to None, meaning "not given"
FLAGS = {
    "model": (str, "NAME", "zoo model name (handgrad.models), default mlp"),
    "data": (str, "NAME", "data set name (handgrad.data); default fashion-mnist if installed, else digits"),
    "text_file": (str, "PATH", "text corpus for --data text"),
    "epochs": (int, "N", "passes over the training set"),
    "batch_size": (int, "N", "samples per training batch"),
    "lr": (float, "X", "learning rate"),
    "optimizer": (str, "NAME", "sgd, adam, adamw, rmsprop or adagrad"),
    "momentum": (float, "X", "SGD momentum"),
    "weight_decay": (float, "X", "L2 weight decay"),
    "lr_decay": (float, "X", "multiply the learning rate by this after every epoch"),
    "eval_every": (int, "N", "evaluate every N training samples (default: every epoch)"),
    "patience": (int, "N", "stop after N evaluations without a better validation accuracy"),
    "data_fraction": (float, "X", "train on this random fraction of the training set (a prefix of a text)"),
    "seed": (int, "N", "random seed (initialisation, shuffling, dropout)"),
    "workers": (int, "N", "processes sharing each batch, one per core (models without batch norm or "
                          "dropout); default 1"),
}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model and write a run directory with checkpoint, plots and report.html",
        description="Train a zoo model. Settings come from the defaults, the data set's and the "
                    "model's own defaults, --config FILE (TOML, the keys of "
                    "handgrad.train.config.DEFAULTS: the flags' names with underscores, plus "
                    "model_kwargs, data_kwargs, init, loss_reduction, ...) and the flags, later "
                    "winning. Prints 'test loss: X' and 'test accuracy: X' at the end (for "
                    "--model char_lstm --data text: nats per character of the held-out text).",
    )
    p.add_argument("--config", metavar="FILE", help="TOML file of settings (flags override it)")
    for key, (kind, metavar, text) in FLAGS.items():
        p.add_argument("--" + key.replace("_", "-"), dest=key, type=kind, default=None, metavar=metavar, help=text)
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..train import TrainingDiverged, train_from_config
    from ..train.config import read_config_file
    from ..plots import NO_MATPLOTLIB, can_plot

    config = read_config_file(args.config) if args.config else {}
    config.update({k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None})
    if args.resume and not args.out:
        from . import UsageError

        raise UsageError("--resume needs --out RUN_DIR, the run to continue")
    if args.out:
        out = Path(args.out)
    else:
        from ..data import default_dataset

        name = [config.get("model", "mlp"), config.get("data") or default_dataset(), time.strftime("%Y%m%d-%H%M%S")]
        out = Path("runs") / "-".join(name)
    try:
        result = train_from_config(config, out_dir=out, quiet=args.quiet, resume=args.resume)
    except TrainingDiverged as exc:
        print(f"handgrad train: {exc}", file=sys.stderr)
        return 1
    print(f"run directory: {out}")
    if not can_plot():
        print(NO_MATPLOTLIB, file=sys.stderr)
    print(f"wall time: {result['wall_time']:.1f} s")
    print(f"test loss: {result['test_loss']:.4f}")
    print(f"test accuracy: {result['test_accuracy']:.4f}")
    return 0
