"""``run_sweep``: expand a spec into runs, skip the finished ones, execute the rest and
write the report.

Layout of a sweep directory::

    sweep.json              the spec, the forced values and the list of runs
    runs/<run_id>/
        result.json         a finished run: its setting, seed, config, result, wall time
        error.json          a failed run: its setting, seed, config, error, traceback
        train/              whatever the run function wrote (its ``out_dir``)
    results.csv, results.md, runs.csv, best.json, curves/, index.html   (see report.py)

A run counts as finished when its ``result.json`` exists; calling ``run_sweep``
again on the same directory executes only the other runs (resume), and with
the local backends (serial, joblib) the default run function continues an
interrupted run from its checkpoint (:func:`train_or_resume`); a Dask run
works in a scratch directory whose files come back only when it finishes, so
an interrupted one starts again. A run that failed is tried again on the next
call. The run id holds a hash of the run's whole config, so after the spec changes only the runs whose config changed are
executed; runs no longer in the spec stay in ``runs/`` but leave the report.
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from ..atomic import write_json
from ..train.progress import Meter, format_duration
from .execute import execute, read_json
from .space import expand, merged_settings


def load_spec(path) -> dict:
    """Read a sweep spec from a ``.toml`` or ``.json`` file."""
    path = Path(path)
    if path.suffix == ".json":
        with open(path) as f:
            try:
                return json.load(f)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON: {exc}") from None
    if path.suffix != ".toml":
        raise ValueError(f"{path}: expected a sweep spec ending in .toml or .json, got '{path.suffix}'")
    from ..train.config import read_toml

    return read_toml(path)


# what a run of the default run function reports, for [sweep] metric
RUN_METRICS = ("test_accuracy", "test_loss", "best_val_accuracy", "final_test_accuracy", "wall_time")


def default_run_fn():
    return train_or_resume


def train_or_resume(config: dict, out_dir=None) -> dict:
    """The default run function: :func:`handgrad.train.train_from_config`, except that
    a run an interrupted sweep left in ``out_dir`` (a kill, a lost worker, Ctrl-C)
    continues: from its checkpoint, bitwise as if it had never stopped; or, when it
    was stopped before its first checkpoint and so saved nothing but its manifest,
    from the start.

    A run trains in one process (``workers = 1``) unless its config says otherwise:
    a sweep spreads its runs over the cores instead (``--jobs``), and the results
    then do not depend on how many run at once (with 2 processes a run's weights
    would differ from 1 process's by float rounding, which 3 epochs can grow into
    a different test accuracy)."""
    from ..train import train_from_config
    from ..train.rundir import CHECKPOINT, clear_unsaved_run

    config = {"workers": 1, **config}
    if out_dir is None:
        return train_from_config(config)
    if (Path(out_dir) / CHECKPOINT).is_file():
        return train_from_config(config, out_dir=out_dir, resume=True)
    clear_unsaved_run(out_dir)
    return train_from_config(config, out_dir=out_dir)


def _run_dir(out_dir: Path, run) -> Path:
    return out_dir / "runs" / run.run_id


def _describe(run) -> dict:
    return {
        "run_id": run.run_id,
        "setting_index": run.setting_index,
        "seed": run.seed,
        "overrides": run.overrides,
        "config": run.config,
    }


def _check_jobs(n_jobs) -> None:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"run_sweep: n_jobs must be a positive int or -1 (all cores), got {n_jobs!r}")


def _diverged(record: dict) -> dict:
    """A run stopped by :class:`handgrad.train.TrainingDiverged` (NaN/inf) is "diverged",
    not a generic failure: its settings are the finding, not a bug."""
    if record["status"] == "error" and record["error"].startswith("TrainingDiverged:"):
        record["kind"] = "diverged"
    return record


def _slots(n_jobs: int, scheduler, client) -> int | None:
    """How many runs execute at once, where this process knows it."""
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    if scheduler is not None:
        return None
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def run_sweep(spec: dict, out_dir, run_fn=None, n_jobs: int = 1, scheduler: str | None = None, client=None,
              forced: dict | None = None, on_record=None, report: bool = True, progress: str = "none") -> dict:
    """Run every setting x seed of ``spec`` (see :mod:`handgrad.sweep.space`) into ``out_dir``.

    ``run_fn(config, out_dir=...)`` trains one run and returns a JSON-able dict
    (default: :func:`train_or_resume`, :func:`handgrad.train.train_from_config`
    continuing a run an interrupted sweep left unfinished). It must be importable by
    name (a module-level function) when the runs execute in other processes.
    ``n_jobs``, ``scheduler`` and ``client`` choose the backend (see
    :mod:`handgrad.sweep.execute`). ``on_record(run, record, done, total)`` is
    called as each run finishes. ``progress`` (``'auto'``, ``'bar'``, ``'log'`` or
    ``'none'``) shows each finished run and the runs done, running and failed, with
    the time left. Returns a summary: how many runs there are, how many were
    skipped as already finished, the failures, the settings merged into another
    (``{index: first index}``, see :func:`~handgrad.sweep.space.merged_settings`),
    the runs of the directory's previous spec that this one leaves out
    (``left_out``: they stay in ``runs/`` but leave the report) and the best setting.
    The directory is locked while the sweep runs; a training run's directory is refused.
    """
    _check_jobs(n_jobs)
    out_dir = Path(out_dir).resolve()  # workers (Dask) resolve relative paths against their own cwd
    runs = expand(spec, forced)
    merged = merged_settings(spec, forced)
    run_fn = run_fn or default_run_fn()
    if run_fn is train_or_resume:
        _check_metric(spec)
    with _sweep_lock(out_dir):
        return _run_sweep(spec, out_dir, runs, merged, run_fn, n_jobs, scheduler, client, forced, on_record,
                          report, progress)


def _check_metric(spec: dict) -> None:
    metric = spec.get("sweep", {}).get("metric")
    if metric is not None and metric not in RUN_METRICS:
        raise ValueError(f"[sweep] metric {metric!r} is not what a training run reports; "
                         f"choose from {', '.join(RUN_METRICS)}")


@contextmanager
def _sweep_lock(out_dir: Path):
    """The sweep directory, locked for this process: a second sweep on it (or a
    training run's directory as --out) fails at once, before anything is written."""
    from ..train.rundir import LOCK, MANIFEST, RunDirError, _locked

    if (out_dir / MANIFEST).exists() and not (out_dir / "sweep.json").exists():
        raise RunDirError(f"{out_dir} holds a training run ({MANIFEST}), not a sweep; choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = _locked(out_dir / LOCK)
    if fd is None:
        raise RunDirError(f"sweep directory {out_dir} is in use by another handgrad sweep; wait for it to "
                          f"finish or choose another --out")
    try:
        yield
    finally:
        os.close(fd)


def _run_sweep(spec, out_dir, runs, merged, run_fn, n_jobs, scheduler, client, forced, on_record, report,
               progress) -> dict:
    previous = read_json(out_dir / "sweep.json") if (out_dir / "sweep.json").exists() else None
    ids = {run.run_id for run in runs}
    left_out = [r["run_id"] for r in (previous or {}).get("runs", []) if r.get("run_id") not in ids]
    write_json(out_dir / "sweep.json", {
        "spec": spec,
        "forced": forced or {},
        "merged": {str(k): v for k, v in merged.items()},
        "runs": [{k: v for k, v in _describe(run).items() if k != "config"} for run in runs],
    })
    todo = [run for run in runs if not (_run_dir(out_dir, run) / "result.json").exists()]
    failures = []
    out_dirs = [str(_run_dir(out_dir, run) / "train") for run in todo]
    slots = _slots(n_jobs, scheduler, client)
    with Meter(len(todo), "sweep", "run", progress, interval=0.0) as meter:
        for done, (run, record) in enumerate(execute(run_fn, todo, out_dirs, n_jobs, scheduler, client), start=1):
            record = _diverged(record)
            run_dir = _run_dir(out_dir, run)
            entry = {**_describe(run), **record}
            if record["status"] == "ok":
                write_json(run_dir / "result.json", entry)
                (run_dir / "error.json").unlink(missing_ok=True)
            else:
                write_json(run_dir / "error.json", entry)
                failures.append({k: entry[k] for k in ("run_id", "overrides", "seed", "kind", "error")})
            if on_record is not None:
                on_record(run, record, done, len(todo))
            _show(meter, run_line(run, record, done, len(todo)), len(todo) - done, slots, failures)
    summary = {"runs": len(runs), "executed": len(todo), "skipped": len(runs) - len(todo), "failures": failures,
               "merged": merged, "left_out": left_out}
    if report:
        from .report import write_report

        summary["best"] = write_report(out_dir)
    return summary


def _show(meter, line: str, left: int, slots, failures: list) -> None:
    """A finished run on the sweep's meter: its line, then how many runs are running
    (where ``slots``, the runs executing at once, is known), failed and diverged."""
    meter.write(line)
    running = "" if slots is None else f"{min(slots, left)} running, "
    diverged = sum(f["kind"] == "diverged" for f in failures)
    meter.set_postfix(f"{running}{len(failures) - diverged} failed" + (f", {diverged} diverged" if diverged else ""))
    meter.update(1)


def run_line(run, record, done: int, total: int) -> str:
    """``[3/8] 001-seed0-1a2b3c4d ok test_accuracy=0.91 (12.3 s)``, or FAILED / DIVERGED and the error."""
    if record["status"] == "ok":
        result = record["result"]
        metrics = ", ".join(
            f"{k}={v:.4g}" for k, v in result.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "wall_time"
        ) if isinstance(result, dict) else ""
        return f"[{done}/{total}] {run.run_id} ok {metrics} ({format_duration(record['wall_time'])})"
    word = "DIVERGED" if record.get("kind") == "diverged" else "FAILED"
    return f"[{done}/{total}] {run.run_id} {word} {record['error']}"


def print_progress(run, record, done: int, total: int, file=sys.stderr) -> None:
    """An ``on_record`` callback printing one line per finished run."""
    print(run_line(run, _diverged(record), done, total), file=file, flush=True)


def load_runs(out_dir) -> tuple:
    """``(sweep, results, errors)`` of a sweep directory: its sweep.json and the records
    of its runs that finished and that failed (runs not yet executed are in neither)."""
    out_dir = Path(out_dir)
    if not (out_dir / "sweep.json").exists():
        raise FileNotFoundError(f"{out_dir}: not a sweep directory (no sweep.json)")
    sweep = read_json(out_dir / "sweep.json")
    results, errors = [], []
    for run in sweep["runs"]:
        run_dir = out_dir / "runs" / run["run_id"]
        if (run_dir / "result.json").exists():
            results.append(read_json(run_dir / "result.json"))
        elif (run_dir / "error.json").exists():
            errors.append(read_json(run_dir / "error.json"))
    return sweep, results, errors
