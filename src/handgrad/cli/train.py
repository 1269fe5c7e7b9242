"""``handgrad train``: train a zoo model on a registered data set and write a run directory."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import UsageError, parse_setting

STARTED = time.perf_counter()  # imported as the command starts: its wall time counts loading data too

def _count(text: str) -> int:
    """--workers N: a number (the config check says whether it is positive)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected "auto" or a positive integer, got {text!r}') from None


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
    "device": (str, "NAME", "cpu (default) or cuda (needs CuPy and a GPU); may change on --resume"),
    "workers": (lambda text: text if text == "auto" else _count(text), "N",
                "processes sharing each batch, one per core; default auto: the usable cores (1 on cuda); "
                "the run's config.json records the number; may change on --resume"),
}


def add_parser(subparsers) -> None:
    from ..train.config import RECIPES

    recipes = "; ".join(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items())
                        for name, values in RECIPES.items())
    p = subparsers.add_parser(
        "train", help="train a model and write a run directory with checkpoint, plots and report.html",
        description="Train a zoo model. Settings come from the defaults, the recipe (the data set's "
                    "and the model's own settings, unless --set recipe=none), --config FILE (TOML, "
                    "the keys of handgrad.train.config.DEFAULTS: the flags' names with underscores, "
                    "plus model_kwargs, data_kwargs, init, loss_reduction, ...; or a run's own "
                    "config.toml / config.json), --set KEY=VALUE and the flags, later winning. "
                    "Prints 'test loss: X' and 'test accuracy: X' at the end (for --model char_lstm "
                    "--data text: nats per character of the held-out text). The run directory's "
                    "config.toml holds every value used.",
        epilog=f"recipes: {recipes}",
    )
    p.add_argument("--config", metavar="FILE", help="TOML file of settings, or a run's config.toml/config.json")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="any setting, dotted keys and JSON values, e.g. --set model_kwargs.hidden=[300,100] "
                        "(repeatable)")
    from ..train.config import DEFAULTS

    for key, (kind, metavar, text) in FLAGS.items():
        if "default" not in text:
            text += " (default none)" if DEFAULTS[key] is None else f" (default {DEFAULTS[key]})"
        p.add_argument("--" + key.replace("_", "-"), dest=key, type=kind, default=None, metavar=metavar, help=text)
    p.add_argument("--out", metavar="RUN_DIR", help="run directory, new or empty (default: a new runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)


def read_settings(args) -> dict:
    """The settings given on the command line: --config, then --set, then the flags."""
    from ..sweep.space import set_path
    from ..train.config import check_config, read_config_file

    config = read_config_file(args.config) if args.config else {}
    given: dict = {}
    for item in args.settings:
        key, value = parse_setting(item)
        set_path(given, key, value)
    check_config(given, "--set")
    for key, value in given.items():
        set_path(config, key, value)
    flags = {k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None}
    config.update(check_config(flags, "flags"))
    return config


def run(args) -> int:
    from ..train.rundir import auto_name

    config = read_settings(args)
    if args.resume and not args.out:
        raise UsageError("--resume needs --out RUN_DIR, the run to continue")
    if args.out:
        return _train(config, Path(args.out), args)
    from ..data import default_dataset
    from ..train.config import RunConfig

    RunConfig.resolve(config)  # a bad setting is reported before a directory is made
    data = config.get("data") or default_dataset()
    runs = Path("runs")
    had_runs = runs.exists()
    out = auto_name(runs, f"{config.get('model', 'mlp')}-{Path(data).stem if '/' in data else data}")
    try:
        return _train(config, out, args)
    finally:
        for folder in (out, None if had_runs else runs):  # nothing of the run was written: leave nothing
            if folder is not None and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _train(config, out: Path, args) -> int:
    from ..train import TrainingDiverged, train_from_config
    from ..plots import NO_MATPLOTLIB, can_plot

    try:
        result = train_from_config(config, out_dir=out, quiet=args.quiet, resume=args.resume)
    except TrainingDiverged as exc:
        print(f"handgrad train: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"handgrad train: interrupted; continue with: handgrad train --out {out} --resume", file=sys.stderr)
        return 130
    print(f"run directory: {out}")
    if not can_plot():
        print(NO_MATPLOTLIB, file=sys.stderr)
    print(f"wall time: {time.perf_counter() - STARTED:.1f} s")
    print(f"test loss: {result['test_loss']:.4f}")
    print(f"test accuracy: {result['test_accuracy']:.4f}")
    return 0
