"""``handgrad sweep``: train every setting x seed of a sweep and write its report.

    handgrad sweep experiments/classic.toml --out runs/classic --jobs 2
    handgrad sweep lr='[1e-4, 5e-3, 0.1]' epochs='[5, 15]' 'model_kwargs.hidden=[[100], [200]]' --out runs/grid
    handgrad sweep experiments/classic.toml --out runs/smoke --set data_fraction=0.01 --set epochs=1
    handgrad sweep experiments/classic.toml --out runs/classic --scheduler tcp://host:8786
"""
from __future__ import annotations

import importlib
import sys

from . import UsageError, parse_setting


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="grid / random search over settings and seeds (joblib or Dask)",
        description="Train every setting x seed of a sweep spec (TOML or JSON, see handgrad.sweep.space) "
                    "and/or KEY=[VALUES] grid axes given here, in parallel, into a sweep directory with "
                    "a results table, learning curves and index.html. Finished runs are skipped when the "
                    "same directory is used again.",
    )
    p.add_argument("items", nargs="*", metavar="SPEC | KEY=VALUES",
                   help="a spec file (.toml/.json) and/or grid axes KEY=[v1, v2, ...] (JSON values; "
                        "dotted keys reach into nested config tables)")
    p.add_argument("--out", metavar="DIR", help="the sweep directory (created; reused to resume); required unless --list")
    p.add_argument("--list", action="store_true", help="print the settings and the number of runs, run nothing")
    p.add_argument("--seeds", type=int, metavar="N", help="train every setting from seeds 0..N-1 (overrides the spec)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="forced",
                   help="write VALUE (JSON, or a bare string) into every run's config, after the settings")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="parallel local processes (joblib; -1: all cores; default 1; not used with --scheduler)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on this Dask scheduler, e.g. tcp://host:8786 (needs handgrad[dask])")
    p.add_argument("--run", dest="run_fn", metavar="MODULE:FUNCTION",
                   help="the function training one run, called as f(config, out_dir=...) "
                        "(default handgrad.sweep:train_or_resume: train_from_config, continuing "
                        "a run an interrupted sweep left unfinished)")
    p.add_argument("--quiet", action="store_true", help="no progress output (runs done, running, failed, time left)")
    p.set_defaults(run=run)


def _import(name: str):
    module, sep, attr = name.partition(":")
    if not sep:
        raise UsageError(f"--run: expected MODULE:FUNCTION, got '{name}'")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--run: cannot import {name}: {exc}") from None


def _spec(items: list, seeds) -> dict:
    from ..sweep import load_spec

    files = [item for item in items if "=" not in item]
    if len(files) > 1:
        raise UsageError(f"expected at most one spec file, got {', '.join(files)}")
    spec = load_spec(files[0]) if files else {}
    sweep = spec.setdefault("sweep", {})
    for item in items:
        if "=" in item:
            key, values = parse_setting(item, "a grid axis")
            sweep.setdefault("grid", {})[key] = values if isinstance(values, list) else [values]
    if seeds is not None:
        sweep["seeds"] = seeds
    return spec


def _merged(spec: dict, forced: dict) -> None:
    """Say which settings --set made identical to an earlier one (they run once)."""
    from ..sweep.space import merged_settings

    merged = merged_settings(spec, forced)
    if merged:
        print(f"{len(merged)} setting(s) identical to an earlier one under --set, run once: "
              + ", ".join(f"{k} as {v}" for k, v in merged.items()))


def _list(spec: dict, forced: dict) -> None:
    from ..sweep import expand
    from ..sweep.report import label

    runs = expand(spec, forced)
    settings = {run.setting_index: run.overrides for run in runs}
    print(f"{len(settings)} settings x {len(runs) // len(settings)} seeds = {len(runs)} runs")
    for index, overrides in settings.items():
        print(f"{index:3d}  {label(overrides)}")
    _merged(spec, forced)


def _check_runs(spec: dict, forced: dict) -> None:
    """Refuse, before the sweep directory is made, a sweep whose runs ``handgrad train``
    could not start: an unknown key, a bad value, an unknown model or data set."""
    from ..sweep import expand
    from ..train.build import check_names
    from ..train.config import RunConfig

    for run in expand(spec, forced):
        try:
            check_names(RunConfig.resolve(run.config))
        except ValueError as exc:
            raise UsageError(f"sweep run {run.run_id}: {exc}") from None


def run(args) -> int:
    from ..sweep import run_sweep

    spec = _spec(args.items, args.seeds)
    forced = dict(parse_setting(item, "--set") for item in args.forced)
    if args.list:
        _list(spec, forced)
        return 0
    if not args.out:
        raise UsageError("--out DIR is required (the sweep directory)")
    run_fn = _import(args.run_fn) if args.run_fn else None
    if run_fn is None:
        _check_runs(spec, forced)
    _merged(spec, forced)
    summary = run_sweep(spec, args.out, run_fn, n_jobs=args.jobs, scheduler=args.scheduler,
                        forced=forced, progress="none" if args.quiet else "auto")
    diverged = sum(f["kind"] == "diverged" for f in summary["failures"])
    print(f"{summary['runs']} runs: {summary['executed']} executed, {summary['skipped']} already finished, "
          f"{len(summary['failures']) - diverged} failed" + (f", {diverged} diverged" if diverged else ""))
    if summary["left_out"]:
        print(f"{len(summary['left_out'])} runs of this directory's previous spec are not in this one: "
              f"left in {args.out}/runs, out of the report")
    best = summary["best"]
    if best:
        print(f"best: {best['label']}: {best['metric']} {best['mean']:.4f} ± {best['std']:.4f}")
    print(f"report: {args.out}/index.html")
    for failure in summary["failures"]:
        print(f"{'diverged' if failure['kind'] == 'diverged' else 'failed'}: {failure['run_id']} (seed {failure['seed']}): {failure['error']}", file=sys.stderr)
    return 1 if summary["failures"] else 0
