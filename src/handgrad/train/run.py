"""One training run from a configuration dict: what ``handgrad train`` and sweeps call."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from .. import backend
from ..io import save_model
from ..data.text import StreamLoader
from .build import (build_loss, build_model, build_optimizer, check_names, data_options, load_data, model_kwargs,
                    split_data)
from .checkpoint import FILENAME
from .config import ConfigError, resolve_config
from .evaluate import predict
from ..atomic import write_json
from .report import images_html, pre, write_curves, write_evaluation, write_html, write_metrics
from .trainer import Trainer

RESUMABLE = ("epochs", "print_every", "workers")


def train_from_config(config: dict, out_dir=None, quiet: bool = True, resume: bool = False) -> dict:
    """Train one model as ``config`` says (keys: :data:`handgrad.train.config.DEFAULTS`).

    The run is deterministic given ``config["seed"]``: the same config gives the
    same history and weights. With ``out_dir`` the run directory is written (see
    :mod:`handgrad.train.report`); with ``resume=True`` the run saved in
    ``out_dir`` continues from its checkpoint, with the configuration saved
    there (only ``epochs`` and ``print_every`` may be changed).

    The data is split as :func:`handgrad.train.build.split_data` says: on a
    sequential data set (text) a stateful model (char_lstm) trains on streams
    with truncated BPTT, and its losses are per character of contiguous text.

    Returns a JSON-able dict ``{"config", "history", "test_accuracy",
    "test_loss", "best_val_accuracy", "wall_time"}`` (seconds, this call only).
    """
    start = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    if resume:
        config = _resume_config(out, config)
    if config.get("data") is None:
        from ..data import default_dataset

        config = {**config, "data": default_dataset()}
    cfg = resolve_config(config)
    check_names(cfg)

    backend.manual_seed(cfg["seed"])
    dataset = load_data(cfg)
    cfg["data"] = dataset.name
    kwargs = model_kwargs(cfg, dataset)
    cfg["model_kwargs"] = kwargs
    model = build_model(cfg, kwargs)
    train, val, test, train_eval = split_data(cfg, dataset, stateful=bool(getattr(model, "stateful", False)))
    loss = build_loss(cfg)
    optimizer = build_optimizer(cfg, model.parameters())

    on_eval = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", cfg)

        def on_eval(trainer, record):
            write_metrics(out / "metrics.jsonl", trainer.history)

    trainer = Trainer(
        model, loss, optimizer, train, val, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
        lr_decay=cfg["lr_decay"], eval_every=cfg["eval_every"],
        eval_train_fraction=cfg["eval_train_fraction"], test_data=test, eval_test=cfg["eval_test"],
        print_every=cfg["print_every"],
        clip_grad_norm=cfg["clip_grad_norm"], patience=cfg["patience"], checkpoint_dir=out,
        seed=cfg["seed"], progress="none" if quiet else "auto", on_eval=on_eval, config=cfg,
        workers=cfg["workers"],
        train_eval_data=train_eval,
    )
    history = trainer.fit(resume_from=out / FILENAME if resume else None)
    result = {
        "config": cfg,
        "history": history,
        "test_accuracy": trainer.test_accuracy,
        "test_loss": trainer.test_loss,
        "best_val_accuracy": trainer.best_val_acc if math.isfinite(trainer.best_val_acc) else None,
        "wall_time": time.perf_counter() - start,
    }
    if out is not None:
        _write_run(out, cfg, dataset, model, test, result)
    return result


def _resume_config(out, overrides: dict) -> dict:
    if out is None:
        raise ConfigError("resume: give the run directory to resume (--out RUN_DIR)")
    saved_path = out / "config.json"
    if not (out / FILENAME).is_file() or not saved_path.is_file():
        raise FileNotFoundError(f"resume: {out} has no {FILENAME} and config.json to resume from")
    saved = json.loads(saved_path.read_text())
    changed = sorted(k for k, v in overrides.items() if k not in RESUMABLE and _differs(saved.get(k), v))
    if changed:
        raise ConfigError(f"resume: {changed[0]!r} differs from the saved run's config.json "
                          f"({saved.get(changed[0])!r}); only {', '.join(RESUMABLE)} can change")
    return {**saved, **{k: v for k, v in overrides.items() if not isinstance(v, dict)}}


def _differs(saved, given) -> bool:
    """Whether a resumed run's setting contradicts the saved one. The saved
    ``model_kwargs`` also hold what the data set filled in (input size, classes),
    so a dict given again only has to agree on the keys it names; tuples and
    lists are the same (JSON has only lists)."""
    if isinstance(given, dict) and isinstance(saved, dict):
        return any(k not in saved or _differs(saved[k], v) for k, v in given.items())
    return json.loads(json.dumps(saved)) != json.loads(json.dumps(given))


def _write_run(out: Path, cfg: dict, dataset, model, test, result: dict) -> None:
    from ..summary import summary

    save_model(out / "model.npz", model, {
        "model": cfg["model"], "model_kwargs": cfg["model_kwargs"], "data": dataset.name,
        "classes": list(dataset.classes), "input_shape": list(dataset.input_shape),
        "seed": cfg["seed"], "data_kwargs": data_options(cfg), "test_accuracy": result["test_accuracy"],
        # a stateful model's held-out text is read as this many streams (handgrad evaluate does the same)
        "streams": test.batch_size if isinstance(test, StreamLoader) else None,
    })
    write_metrics(out / "metrics.jsonl", result["history"])
    write_json(out / "results.json",
               {k: result[k] for k in ("test_accuracy", "test_loss", "best_val_accuracy", "wall_time")})
    if isinstance(test, StreamLoader):  # the next-character prediction at every position of the test text
        X, y, pred = test.inputs, test.targets, predict(model, test)
    else:
        X, y = test
        pred = predict(model, X)
    evaluation = write_evaluation(out, X, y, pred, list(dataset.classes), f"{dataset.name} test set")
    curves = write_curves(out, result["history"])
    table = str(summary(model, dataset.input_shape, print_table=False))
    write_html(out / "report.html", f"handgrad run: {cfg['model']} on {dataset.name}", {
        "test accuracy": f"{result['test_accuracy']:.4f}",
        "test loss": f"{result['test_loss']:.4f}",
        "best validation accuracy": "n/a" if result["best_val_accuracy"] is None
        else f"{result['best_val_accuracy']:.4f}",
        "wall time": f"{result['wall_time']:.1f} s",
        "epochs": cfg["epochs"], "optimizer": f"{cfg['optimizer']} (lr {cfg['lr']:g})",
        "batch size": cfg["batch_size"], "seed": cfg["seed"],
    }, [
        ("Learning curves", images_html(curves)),
        ("Test set", evaluation["report"].to_html() + images_html(evaluation["plots"])),
        ("Model", pre(table)),
        ("Configuration", pre(_toml_like(cfg))),
    ])


def _toml_like(cfg: dict) -> str:
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in cfg.items())
