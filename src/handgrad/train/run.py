"""One training run from a configuration: what ``handgrad train`` and sweeps call.

The data flow goes one way::

    config (defaults < recipe < file < flags)      RunConfig.resolve, checked
      -> data set loaded -> completed config        build.complete
      -> model, loss, optimizer, splits             build.build (model tried on the data)
      -> run directory: lock, manifest              rundir.RunDir
      -> Trainer.fit                                checkpoints embed the manifest
      -> model.npz, metrics, report                 report.write_run
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from .. import backend
from ..parallel import resolve_workers, usable_cores
from .build import build, check_names, complete, data_identity, load_data, recorded_data
from .checkpoint import load_checkpoint
from .config import RESUMABLE, ConfigError, RunConfig, plain
from .report import write_metrics, write_run
from .rundir import CHECKPOINT, RunDir, RunDirError
from .trainer import Trainer


def train_from_config(config: dict, out_dir=None, quiet: bool = True, resume: bool = False) -> dict:
    """Train one model as ``config`` says (keys: :data:`handgrad.train.config.DEFAULTS`).

    The run is deterministic given ``config["seed"]``: the same config gives the
    same history and weights. With ``out_dir`` the run directory is written (see
    :mod:`handgrad.train.rundir` and :mod:`handgrad.train.report`); it must not
    hold another run, and no other process may be using it. With ``resume=True``
    the run saved in ``out_dir`` continues from its checkpoint with the
    configuration saved there (only :data:`~handgrad.train.config.RESUMABLE`
    settings may be changed).

    The data is split as :func:`handgrad.train.build.split_data` says: on a
    sequential data set (text) a stateful model (char_lstm) trains on streams
    with truncated BPTT, and its losses are per character of contiguous text.

    Returns a JSON-able dict ``{"config", "history", "test_accuracy",
    "test_loss", "best_val_accuracy", "wall_time", "seconds", "resumed"}`` (wall time
    of this call, and the training's by phase: steps, evaluations, checkpoints, test
    set, over every session of a resumed run up to its last checkpoint),
    and with ``eval_test`` ``"final_test_accuracy"``: the last evaluation's, of the
    final weights (``test_accuracy`` is of the best-validation weights).
    """
    start = time.perf_counter()
    if resume and out_dir is None:
        raise ConfigError("resume: give the run directory to resume (--out RUN_DIR)")
    if not resume:
        cfg = _fresh_config(config)
        check_names(cfg)
    run_dir = RunDir(out_dir, resume=resume) if out_dir is not None else None
    try:
        if resume:
            cfg = _resumed_config(run_dir.read_manifest(), config, run_dir.path)
            _check_checkpoint(run_dir.path / CHECKPOINT, cfg)
        backend.device_module(cfg["device"])  # CuPy or a GPU missing: say what to install, write nothing
        backend.manual_seed(cfg["seed"])
        dataset = load_data(cfg)
        cfg = complete(cfg, dataset)
        run = build(cfg, dataset)
        cfg = _usable_workers(cfg, run.model)
        identity = data_identity(cfg, dataset)
        if not quiet:
            print(f"data: {_describe(cfg, dataset, run)}", file=sys.stderr)
        manifest = None
        if run_dir is not None:
            manifest = run_dir.write_manifest(cfg, identity)
        trainer = Trainer(
            run.model, run.loss, run.optimizer, run.train, run.val, epochs=cfg["epochs"],
            batch_size=cfg["batch_size"], lr_decay=cfg["lr_decay"], eval_every=cfg["eval_every"],
            eval_at_start=cfg["eval_at_start"], eval_train_fraction=cfg["eval_train_fraction"],
            test_data=run.test, eval_test=cfg["eval_test"], print_every=cfg["print_every"],
            clip_grad_norm=cfg["clip_grad_norm"], patience=cfg["patience"],
            checkpoint_dir=None if run_dir is None else run_dir.path, seed=cfg["seed"],
            progress="none" if quiet else "auto", config=manifest, workers=cfg["workers"], device=cfg["device"],
            train_eval_data=run.train_eval,
            on_eval=None if run_dir is None else (
                lambda trainer, record: write_metrics(run_dir.path / "metrics.jsonl", trainer.history)),
        )
        history = trainer.fit(resume_from=run_dir.path / CHECKPOINT if resume else None)
        result = {
            "config": cfg.to_dict(),
            "history": history,
            "test_accuracy": trainer.test_accuracy,
            "test_loss": trainer.test_loss,
            "best_val_accuracy": trainer.best_val_acc if math.isfinite(trainer.best_val_acc) else None,
            "wall_time": time.perf_counter() - start,
            # where the run's time went, a resumed run's earlier sessions included
            "seconds": {phase: round(t, 3) for phase, t in trainer.seconds.items()},
            "resumed": resume,
        }
        if cfg["eval_test"] and history["eval"]:
            # the last evaluation's test accuracy (the final weights), as the course reports it;
            # test_accuracy is that of the best-validation weights, restored at the end
            result["final_test_accuracy"] = history["eval"][-1]["test_acc"]
        if run_dir is not None:
            write_run(run_dir.path, cfg, dataset, run.model, run.test, result, trainer.test_predictions, identity)
    except BaseException:
        if run_dir is not None:
            run_dir.close(failed=True)  # a fresh run that saved nothing leaves nothing
        raise
    if run_dir is not None:
        run_dir.close()
    return result


def _describe(cfg, dataset, run) -> str:
    """Which data set a run loaded, how much of it the run trains and validates on,
    and how to get Fashion-MNIST when the default fell back."""
    from ..data import describe
    from ..data.mnist import fashion_mnist_installed

    line = describe(dataset)
    if isinstance(run.train, tuple):  # arrays (text streams are described by their loader)
        line += f"; this run trains on {len(run.train[1])}"
        line += f", validates on {len(run.val[1])}" if isinstance(run.val, tuple) else ""
        line += f" (--data-fraction {cfg['data_fraction']})" if cfg["data_fraction"] < 1 else ""
    if dataset.name == "digits" and not fashion_mnist_installed():
        line += ("; the default when Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, "
                 "or --data fashion-mnist to download it)")
    return line


def _usable_workers(cfg: RunConfig, model) -> RunConfig:
    """The number of processes: "auto" is the usable cores when ``model`` gains from
    them (1 off the CPU, see :func:`~handgrad.parallel.resolve_workers`); more
    workers than cores only slow a run down: say so and use the cores. The
    manifest records the number."""
    if cfg["workers"] == "auto":
        return cfg.replace(workers=resolve_workers(model, "auto") if cfg["device"] == "cpu" else 1)
    cores = usable_cores()
    if cfg["workers"] <= cores:
        return cfg
    print(f"handgrad: workers {cfg['workers']} is more than the {cores} usable cores; using {cores}",
          file=sys.stderr)
    return cfg.replace(workers=cores)


def _fresh_config(config: dict) -> RunConfig:
    """The resolved configuration of a new run; the default data set is chosen
    first, so that its recipe applies."""
    if config.get("data") is None:
        from ..data import default_dataset

        config = {**config, "data": default_dataset()}
    return RunConfig.resolve(config)


def _resumed_config(saved: RunConfig, overrides: dict, path: Path) -> RunConfig:
    """The saved configuration with the resumable settings of ``overrides``; any other
    setting given must agree with the saved one."""
    changed = [k for k, v in overrides.items()
               if k not in RESUMABLE and k in saved and _differs(saved[k], _as_saved(k, v))]
    if changed:
        raise ConfigError(f"resume: {changed[0]!r} differs from the saved run's config.json "
                          f"({saved.to_dict()[changed[0]]!r}); only {', '.join(RESUMABLE)} can change on "
                          f"resume: start a new run (another --out) to change it")
    return saved.replace(**{k: v for k, v in overrides.items() if k in RESUMABLE})


def _as_saved(key, value):
    """A setting given on resume as the manifest records it (a data file's path made absolute)."""
    return recorded_data(value) if key == "data" and isinstance(value, str) else value


def _differs(saved, given) -> bool:
    """Whether a resumed run's setting contradicts the saved one. The saved
    ``model_kwargs`` also hold what the data set filled in (input size, classes),
    so a dict given again only has to agree on the keys it names; tuples and
    lists are the same (JSON has only lists)."""
    saved = plain(saved)
    if isinstance(given, dict) and isinstance(saved, dict):
        return any(k not in saved or _differs(saved[k], v) for k, v in given.items())
    return saved != json.loads(json.dumps(given))


def _check_checkpoint(path: Path, cfg: RunConfig) -> None:
    """Refuse a checkpoint written by another run than the one config.json records."""
    manifest = load_checkpoint(path).get("config")
    if not isinstance(manifest, dict) or "handgrad" not in manifest:
        raise RunDirError(f"resume: {path} does not say which run wrote it; start a new run (another --out)")
    from ..models import check_revision
    from .rundir import manifest_config, manifest_revision

    try:
        check_revision(f"resume: {path}", manifest.get("model"), manifest_revision(manifest))
    except ValueError as exc:
        raise RunDirError(str(exc)) from None
    theirs = manifest_config(manifest, str(path))
    differ = theirs.differences(cfg)
    if differ:
        values = ", ".join(f"{k} {theirs.to_dict()[k]!r} there, {cfg.to_dict()[k]!r} in config.json" for k in differ)
        raise RunDirError(f"resume: {path} was written by another run than {path.parent / 'config.json'} "
                          f"({values}); start a new run (another --out)")
