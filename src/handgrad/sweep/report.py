"""The report of a sweep directory: what each setting achieved across its seeds.

Files written into the sweep directory:

- ``results.csv`` / ``results.md``: one row per setting, its overrides, the
  number of seeds that finished and failed, and for every final metric of the
  run results (the numbers at the top level of each result, e.g.
  ``test_accuracy``, ``best_val_accuracy``, ``wall_time``) the mean and the
  standard deviation across seeds (population std, ``ddof=0``; 0 for one seed).
- ``runs.csv``: one row per finished run (setting, seed, its metrics).
- ``facets.md``: when ``[sweep] facet`` names config keys (e.g. ``["model"]``),
  the settings arranged as a table with one row per value of those keys, so
  "models x settings" reads at a glance.
- ``best.json``: the setting with the best mean ``[sweep] metric`` (``goal`` max or
  min); by default ``best_val_accuracy`` when the runs report it, so the test
  set is not used to choose.
- ``curves/``: one figure per metric (``compare-<metric>.png``: train, validation
  and test accuracy, or the losses) with every setting's mean +- std band on the
  same axes, the faceted grid, and the figures of any further metric
  ``[sweep] compare`` names (plots metric names, e.g. ``["iteration_loss"]``);
  see figures.py.
- ``best_run/``: a copy of the files the best run's run function wrote (its
  ``out_dir``: for ``train_from_config`` the model, checkpoint and report), when
  they are on this file system; e.g. ``handgrad predict --checkpoint DIR/best_run``.
- ``index.html``: all of the above on one page, failures with their tracebacks.

Values forced into every run (``--set``) are columns of the tables; settings
they made identical ran once (``sweep.json``'s ``merged``) and are named on the
page. A run stopped by NaN/inf (TrainingDiverged) is counted as *diverged*, not
failed; times are written with their units.
"""
from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from ..atomic import write_json, write_text
from ..htmlpage import write_page
from .. import plots
from ..train.progress import format_duration
from . import figures
from .runner import load_runs


def fmt(value) -> str:
    """A config value as a short label: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def label(overrides: dict, skip=()) -> str:
    return ", ".join(f"{k}={fmt(v)}" for k, v in overrides.items() if k not in skip) or "(base config)"


def final_metrics(record: dict) -> dict:
    """The numbers at the top level of a run's result (its final metrics)."""
    result = record["result"] if isinstance(record["result"], dict) else {}
    metrics = {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    metrics.setdefault("wall_time", float(record["wall_time"]))
    return metrics


def summarize(sweep: dict, results: list, errors: list) -> list:
    """One dict per setting of the sweep, in order: index, overrides, seeds finished
    and failed, and ``metrics[name] = (mean, std)`` over the finished seeds."""
    rows = {}
    for run in sweep["runs"]:
        rows.setdefault(run["setting_index"], {
            "setting": run["setting_index"], "overrides": run["overrides"], "seeds": [], "failed": [], "diverged": [],
            "values": {},
        })
    for record in results:
        row = rows[record["setting_index"]]
        row["seeds"].append(record["seed"])
        for name, value in final_metrics(record).items():
            row["values"].setdefault(name, []).append(value)
    for record in errors:
        row = rows[record["setting_index"]]
        row["diverged" if record.get("kind") == "diverged" else "failed"].append(record["seed"])
    for row in rows.values():
        values = row.pop("values")
        row["metrics"] = {name: (float(np.mean(v)), float(np.std(v))) for name, v in values.items()}
    return [rows[i] for i in sorted(rows)]


def metric_names(rows: list) -> list:
    names = []
    for row in rows:
        names += [n for n in row["metrics"] if n not in names]
    return names


def best_setting(sweep: dict, rows: list, results: list) -> dict | None:
    """The setting with the best mean metric and, within it, the seed with the best
    value (``run_id``), or None when no run finished."""
    spec = sweep["spec"].get("sweep", {})
    names = metric_names(rows)
    default = next((n for n in ("best_val_accuracy", "test_accuracy") if n in names), names[0] if names else None)
    metric, goal = spec.get("metric", default), spec.get("goal", "max")
    scored = [row for row in rows if metric in row["metrics"] and not math.isnan(row["metrics"][metric][0])]
    if not scored:
        return None
    pick = max if goal == "max" else min
    best = pick(scored, key=lambda row: row["metrics"][metric][0])
    mean, std = best["metrics"][metric]
    seeds = [(final_metrics(r).get(metric, math.nan), r) for r in results if r["setting_index"] == best["setting"]]
    value, run = pick(((v, r) for v, r in seeds if not math.isnan(v)), key=lambda pair: pair[0])
    return {"metric": metric, "goal": goal, "mean": mean, "std": std, "setting": best["setting"],
            "overrides": best["overrides"], "seeds": best["seeds"], "label": label(best["overrides"]),
            "run_id": run["run_id"], "run_seed": run["seed"], "run_value": value}


def _override_keys(rows: list) -> list:
    keys = []
    for row in rows:
        keys += [k for k in row["overrides"] if k not in keys]
    return keys


def results_csv(rows: list) -> str:
    keys, names = _override_keys(rows), metric_names(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["setting", *keys, "seeds_finished", "seeds_failed", "seeds_diverged",
                     *(f"{n}_{s}" for n in names for s in ("mean", "std"))])
    for row in rows:
        cells = [fmt(row["overrides"][k]) if k in row["overrides"] else "" for k in keys]
        stats = [f"{v:.6g}" for n in names for v in row["metrics"].get(n, (math.nan, math.nan))]
        writer.writerow([row["setting"], *cells, len(row["seeds"]), len(row["failed"]), len(row["diverged"]), *stats])
    return out.getvalue()


def runs_csv(results: list) -> str:
    names = []
    for record in results:
        names += [n for n in final_metrics(record) if n not in names]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", "setting", "seed", *names])
    for record in sorted(results, key=lambda r: r["run_id"]):
        metrics = final_metrics(record)
        writer.writerow([record["run_id"], record["setting_index"], record["seed"],
                         *(f"{metrics[n]:.6g}" if n in metrics else "" for n in names)])
    return out.getvalue()


def _cell(row: dict, metric: str) -> str:
    stats = row["metrics"].get(metric)
    if stats is None:
        if row["seeds"] or not (row["failed"] or row["diverged"]):
            return "-"
        return "failed" if row["failed"] else "diverged"
    # times with their units, accuracies and losses to 1e-4
    mean, std = (format_duration(v) if metric.endswith("time") else f"{v:.4f}" for v in stats)
    return mean if len(row["seeds"]) == 1 else f"{mean} ± {std}"


def _seeds_cell(row: dict) -> str:
    lost = [f"{len(row[k])} {k}" for k in ("failed", "diverged") if row[k]]
    return f"{len(row['seeds'])}" + (f" ({', '.join(lost)})" if lost else "")


def table(rows: list, forced: dict | None = None) -> tuple:
    """``(header, body)`` of the settings x metrics table, as strings; the values
    ``forced`` into every run are columns marked ``(--set)``: where a setting's own
    value of that key differs, the forced one is what ran."""
    keys, names = _override_keys(rows), metric_names(rows)
    forced = forced or {}
    header = ["setting", *keys, *(f"{k} (--set)" for k in forced), "seeds", *names]
    body = [[str(row["setting"]), *(fmt(row["overrides"].get(k, "")) for k in keys),
             *(fmt(v) for v in forced.values()), _seeds_cell(row),
             *(_cell(row, n) for n in names)] for row in rows]
    return header, body


def merged_note(sweep: dict) -> str:
    """Which settings ran as another because ``--set`` made them identical ('' if none)."""
    merged = sweep.get("merged") or {}
    if not merged:
        return ""
    pairs = ", ".join(f"setting {k} as setting {v}" for k, v in merged.items())
    return f"Identical once the forced values are written in, so run once: {pairs}."


def facet_groups(sweep: dict, rows: list) -> tuple | None:
    """``(keys, {name: [rows]})``: the settings grouped by the values of the ``[sweep] facet``
    keys (one group per distinct value, in order of appearance), or None without a facet."""
    facet = sweep["spec"].get("sweep", {}).get("facet")
    if not facet:
        return None
    keys = [facet] if isinstance(facet, str) else list(facet)
    groups = {}
    for row in rows:
        name = ", ".join(fmt(row["overrides"].get(k, "–")) for k in keys)
        groups.setdefault(name, []).append(row)
    return keys, groups


def _beside(row: dict, metric: str) -> str:
    """Beside the final test accuracy (the course's figure: the last evaluation's),
    the test accuracy of the best-validation weights, labelled."""
    if metric != "final_test_accuracy" or "test_accuracy" not in row["metrics"]:
        return ""
    return f" (best-val weights: {_cell(row, 'test_accuracy')})"


def facet_table(keys: list, groups: dict, metric: str) -> tuple:
    """``(header, body)`` with one row per facet group and one column per setting in it
    (cell: the setting's other overrides and its metric)."""
    width = max(len(g) for g in groups.values())
    header = [" / ".join(keys), *(f"setting {i + 1}" for i in range(width))]
    body = [[name, *(f"{label(r['overrides'], keys)}: {_cell(r, metric)}{_beside(r, metric)}" for r in group),
             *([""] * (width - len(group)))] for name, group in groups.items()]
    return header, body


def markdown(header: list, body: list) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in body)]) + "\n"


def html_table(header: list, body: list) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def index_body(sweep: dict, rows: list, best: dict | None, facets, images: list, notes: list, errors: list) -> str:
    """The body of ``index.html`` (its title is the sweep's name)."""
    spec = sweep["spec"].get("sweep", {})
    finished = sum(len(r["seeds"]) for r in rows)
    diverged = sum(len(r["diverged"]) for r in rows)
    parts = []
    if spec.get("description"):
        parts.append(f"<p>{html.escape(spec['description'])}</p>")
    parts.append(f"<p>{len(sweep['runs'])} runs ({len(rows)} settings); {finished} finished, "
                 f"{len(errors) - diverged} failed, {diverged} diverged. "
                 "Files: <a href='results.csv'>results.csv</a>, <a href='results.md'>results.md</a>, "
                 "<a href='runs.csv'>runs.csv</a>, <a href='best.json'>best.json</a>, <a href='sweep.json'>sweep.json</a>.</p>")
    if sweep.get("forced"):
        parts.append(f"<p>Forced in every run: <code>{html.escape(label(sweep['forced']))}</code></p>")
    if merged_note(sweep):
        parts.append(f"<p>{html.escape(merged_note(sweep))}</p>")
    if best:
        parts.append(f"<div class='best'><b>Best setting</b> ({best['goal']} {html.escape(best['metric'])}): "
                     f"setting {best['setting']}, <code>{html.escape(best['label'])}</code>: "
                     f"{best['mean']:.4f} ± {best['std']:.4f} over {len(best['seeds'])} seed(s)"
                     + (f"; the files of its best seed ({best['run_seed']}) are in <a href='best_run/'>best_run/</a>"
                        if best.get("best_run_dir") else "") + "</div>")
    if facets:
        parts += [f"<h2>{html.escape(best['metric'] if best else '')} by {html.escape(facets[0][0])}</h2>",
                  html_table(*facets)]
    parts += ["<h2>Settings (mean ± std across seeds)</h2>", html_table(*table(rows, sweep.get("forced")))]
    if images or notes:
        parts.append("<h2>Learning curves</h2>")
        parts += [f"<p>{html.escape(note)}</p>" for note in notes]
        parts += [f"<figure><img src='{html.escape(path)}' alt='{html.escape(caption)}'>"
                  f"<figcaption>{html.escape(caption)}</figcaption></figure>" for path, caption in images]
    if errors:
        parts.append("<h2>Failed runs</h2>")
        parts += [f"<details><summary>{html.escape(e['run_id'])} ({html.escape(label(e['overrides']))}, seed {e['seed']}): "
                  + ("<b>diverged</b>: " if e.get("kind") == "diverged" else "") +
                  f"{html.escape(e['error'])}</summary><pre>{html.escape(e['traceback'])}</pre></details>" for e in errors]
    return "\n".join(parts)


def _figures(out_dir: Path, sweep: dict, rows: list, results: list, grouped) -> tuple:
    """``(figures, notes)``: the learning-curve images written and what could not be drawn."""
    if not any(isinstance(r["result"], dict) and "history" in r["result"] for r in results):
        return [], []
    if not plots.can_plot():
        return [], ['The learning curves need matplotlib: pip install "handgrad[plots]", then run handgrad sweep again.']
    forced = sweep.get("forced") or {}
    # in legends, a setting's own value of a forced key is not what ran: leave it out
    rows = [{**row, "overrides": {k: v for k, v in row["overrides"].items() if k not in forced}} for row in rows]
    found, notes = [], []
    if grouped:
        facet = figures.facet_figure(out_dir, grouped[1], results, grouped[0], label)
        found = [facet] if facet else []
    compare = sweep["spec"].get("sweep", {}).get("compare", [])
    metrics = figures.metric_names(results)
    metrics += [m for m in ([compare] if isinstance(compare, str) else compare) if m not in metrics]
    compared = []
    for metric in metrics:
        try:
            compared.append(figures.compare_figure(out_dir, rows, results, metric, label))
        except ValueError as exc:
            notes.append(f"No comparison of {metric}: {exc}")
    return compared + found, notes


def copy_best_run(out_dir: Path, run_id: str) -> bool:
    """Replace ``best_run/`` by a copy of the run's ``train/`` files; False when there are none."""
    source = out_dir / "runs" / run_id / "train"
    if not source.is_dir():
        return False
    target, tmp = out_dir / "best_run", out_dir / ".best_run.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return True


def write_report(out_dir) -> dict | None:
    """Write the report files of the sweep directory ``out_dir``; return the best setting."""
    out_dir = Path(out_dir)
    sweep, results, errors = load_runs(out_dir)
    rows = summarize(sweep, results, errors)
    best = best_setting(sweep, rows, results)
    grouped = facet_groups(sweep, rows)
    facets = facet_table(*grouped, best["metric"]) if grouped and best else None
    write_text(out_dir / "results.csv", results_csv(rows))
    write_text(out_dir / "runs.csv", runs_csv(results))
    forced = f"\nForced in every run: {label(sweep['forced'])}\n" if sweep.get("forced") else ""
    merged = f"\n{merged_note(sweep)}\n" if merged_note(sweep) else ""
    write_text(out_dir / "results.md", markdown(*table(rows, sweep.get("forced"))) + forced + merged)
    if facets:
        write_text(out_dir / "facets.md", markdown(*facets) + forced)
    if best:
        best["best_run_dir"] = "best_run" if copy_best_run(out_dir, best["run_id"]) else None
    write_json(out_dir / "best.json", best)
    images, notes = _figures(out_dir, sweep, rows, results, grouped)
    write_page(out_dir / "index.html", sweep["spec"].get("sweep", {}).get("name", "handgrad sweep"),
               index_body(sweep, rows, best, facets, images, notes, errors))
    return best
