"""The sweep machinery: expansion, backends (serial, joblib, Dask), failures, resume, report, CLI.

The runs here train a tiny logistic regression written out below (``fit``): it is
deterministic given its config, cheap, and importable by name, so joblib's and
Dask's worker processes can run it.
"""
import html
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from handgrad.sweep import expand, load_runs, load_spec, run_sweep, settings
from handgrad.sweep.space import merged_settings
from lock_helpers import held_by_another_process

HERE = Path(__file__).parent


def fit(config, out_dir=None):
    """Logistic regression on 200 synthetic points (150 to train, 50 to evaluate) by
    full-batch gradient descent; the history is in handgrad.plots' format."""
    if "log" in config:
        with open(config["log"], "a") as f:
            f.write(f"{config['lr']} {config['seed']}\n")
    if config["lr"] > 1:
        raise ValueError(f"lr={config['lr']} diverges")
    rng = np.random.default_rng(config["seed"])
    x = rng.normal(size=(200, 5))
    y = (x @ np.arange(1.0, 6.0) + 3 * rng.normal(size=200) > 0).astype(float)
    w = np.zeros(5)
    history = {"iteration_loss": [], "eval": []}
    for epoch in range(1, config["epochs"] + 1):
        p = 1 / (1 + np.exp(-(x[:150] @ w)))
        history["iteration_loss"].append(float(-np.mean(y[:150] * np.log(p) + (1 - y[:150]) * np.log(1 - p))))
        w -= config["lr"] * x[:150].T @ (p - y[:150]) / 150
        correct = (x @ w > 0) == y
        history["eval"].append({"epoch": epoch, "iteration": epoch, "samples": 150 * epoch,
                                "train_acc": float(np.mean(correct[:150])), "val_acc": float(np.mean(correct[150:]))})
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        np.savetxt(os.path.join(out_dir, "weights.txt"), w)
    val = [e["val_acc"] for e in history["eval"]]
    return {"history": history, "test_accuracy": val[-1], "best_val_accuracy": max(val), "wall_time": 0.0}


def diverge(config, out_dir=None):
    """A run that stops the way the Trainer does at the first NaN/inf, for lr > 0.3."""
    from handgrad.train import TrainingDiverged

    if config["lr"] > 0.3:
        raise TrainingDiverged(f"the loss became nan at iteration 3 (lr={config['lr']})")
    return fit(config, out_dir)


def where(config, out_dir=None):
    """``fit``, writing a nested file too, and saying where it ran."""
    result = fit(config, out_dir)
    os.makedirs(os.path.join(out_dir, "plots"))
    with open(os.path.join(out_dir, "plots", "seed.bin"), "wb") as f:
        f.write(bytes([config["seed"], 0, 255]))
    return {**result, "out_dir": out_dir, "cwd": os.getcwd()}


def float32_result(config, out_dir=None):
    return {"test_accuracy": np.float32(0.5)}


def crash_worker(config, out_dir=None):
    """A run that takes its whole process down for lr=0.2 (as a segfault or OOM kill would)."""
    if config["lr"] == 0.2:
        os._exit(3)
    return fit(config, out_dir)


SPEC = {"config": {"epochs": 3}, "sweep": {"seeds": [0, 1], "grid": {"lr": [0.1, 0.2]}}}


def results_by_run(out_dir):
    _, results, errors = load_runs(out_dir)
    return {r["run_id"]: (r["config"], r["result"]) for r in results}, errors


# --- expansion -------------------------------------------------------------


def test_grid_points_and_random_combine_as_a_product():
    sweep = {
        "points": [{"epochs": 5, "lr": 1e-4}, {"epochs": 15, "lr": 0.1, "model_kwargs": {"hidden": [32]}}],
        "grid": {"batch_size": [50, 100], "model_kwargs": {"scale": [0.1, 1.0]}},
        "random": {"n": 3, "seed": 7, "momentum": {"uniform": [0.0, 0.9]}},
    }
    found = settings(sweep)
    assert len(found) == 2 * 4 * 3
    assert found[0] == {"epochs": 5, "lr": 1e-4, "batch_size": 50, "model_kwargs.scale": 0.1,
                        "momentum": found[0]["momentum"]}
    assert settings(sweep) == found  # random draws are reproducible


def test_runs_merge_settings_into_nested_config_and_get_their_seed():
    spec = {"config": {"model": "mlp", "model_kwargs": {"hidden": [100], "activation": "relu"}, "lr": 1.0},
            "sweep": {"seeds": 2, "grid": {"model_kwargs": {"hidden": [[200], [200, 200]]}}}}
    runs = expand(spec, forced={"epochs": 1})
    assert [(r.setting_index, r.seed) for r in runs] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert runs[3].config == {"model": "mlp", "model_kwargs": {"hidden": [200, 200], "activation": "relu"},
                              "lr": 1.0, "epochs": 1, "seed": 1}
    assert len({r.run_id for r in runs}) == 4
    assert spec["config"]["model_kwargs"]["hidden"] == [100]  # the spec itself is left alone


def test_random_distributions_stay_in_range():
    draws = settings({"random": {"n": 50, "lr": {"log_uniform": [1e-4, 1e-1]}, "hidden": {"int_uniform": [1, 3]},
                                 "act": {"choice": ["relu", "tanh"]}}})
    assert all(1e-4 <= d["lr"] <= 1e-1 and d["hidden"] in (1, 2, 3) and d["act"] in ("relu", "tanh") for d in draws)
    assert {d["hidden"] for d in draws} == {1, 2, 3}


@pytest.mark.parametrize("spec, message", [
    ({"sweep": {"grid": {"lr": 0.1}}}, "'lr' must be a non-empty list"),
    ({"sweep": {"seeds": 0}}, "'seeds' as a count must be >= 1"),
    ({"sweep": {"seeds": [1, 1]}}, "repeated"),
    ({"sweep": {"grids": {}}}, "unknown keys in \\[sweep\\]"),
    ({"sweep": {"random": {"n": 2, "lr": [0.1]}}}, "must be a distribution table"),
    ({"sweep": {"random": {"n": 2, "lr": {"log_uniform": [0, 1]}}}}, "low > 0"),
    ({"sweep": {"goal": "up"}}, "'goal' must be 'max' or 'min'"),
    ({"configs": {}}, "unknown top-level tables"),
])
def test_bad_specs_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        expand(spec)


@pytest.mark.parametrize("name, settings_, seeds", [("classic", 12, 1), ("search", 27, 1), ("sigmoid", 4, 3)])
def test_experiment_specs_load_and_expand(name, settings_, seeds):
    runs = expand(load_spec(HERE.parent / "experiments" / f"{name}.toml"))
    assert len(runs) == settings_ * seeds
    assert len({r.setting_index for r in runs}) == settings_


def test_classic_spec_has_the_four_models_at_their_three_settings():
    runs = expand(load_spec(HERE.parent / "experiments" / "classic.toml"))
    found = [(r.config["model"], r.config.get("model_kwargs", {}).get("hidden"), r.config["epochs"], r.config["lr"])
             for r in runs]
    assert found == [("mlp", [], 5, 1e-4), ("mlp", [], 5, 5e-3), ("mlp", [], 5, 0.1),
                     ("mlp", [32], 15, 1e-4), ("mlp", [32], 15, 5e-3), ("mlp", [32], 15, 0.1),
                     ("mlp", [32, 32], 5, 3e-3), ("mlp", [32, 32], 40, 3e-3), ("mlp", [32, 32], 40, 0.05),
                     ("small_cnn", None, 5, 0.01), ("small_cnn", None, 10, 1e-3), ("small_cnn", None, 20, 1e-3)]
    # as the assignment: Models 1-3 average the gradient over the batch, only the CNN sums it
    assert all(r.config["loss_reduction"] == ("sum" if r.config["model"] == "small_cnn" else "mean") for r in runs)
    assert all(r.config["batch_size"] == 100 and r.config["optimizer"] == "sgd"
               and r.config["momentum"] == 0 and r.config["lr_decay"] == 1 and r.config["init"] == "xavier" and r.config["eval_every"] == 20000
               for r in runs)


# --- backends ---------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_joblib_and_dask_give_the_same_results_as_a_serial_run(tmp_path, dask_client):
    run_sweep(SPEC, tmp_path / "serial", fit)
    run_sweep(SPEC, tmp_path / "joblib", fit, n_jobs=2)
    run_sweep(SPEC, tmp_path / "dask", fit, client=dask_client)
    run_sweep(SPEC, tmp_path / "address", fit, scheduler=dask_client.scheduler.address)
    serial, _ = results_by_run(tmp_path / "serial")
    assert len(serial) == 4
    assert results_by_run(tmp_path / "joblib") == (serial, [])
    assert results_by_run(tmp_path / "dask") == (serial, [])
    assert results_by_run(tmp_path / "address") == (serial, [])
    assert dask_client.status == "running"  # a client given is the caller's: left open
    assert len({json.dumps(r[1]) for r in serial.values()}) == 4  # the seeds and settings differ


def test_a_dead_dask_worker_is_reported_and_the_other_runs_finish(tmp_path, dask_client):
    summary = run_sweep(SPEC, tmp_path, crash_worker, client=dask_client)
    assert {(f["overrides"]["lr"], f["kind"]) for f in summary["failures"]} == {(0.2, "worker-died")}
    assert all("KilledWorker" in f["error"] for f in summary["failures"])
    results, errors = results_by_run(tmp_path)
    assert sorted(c["lr"] for c, _ in results.values()) == [0.1, 0.1]
    assert len(errors) == 2 and all(e["seed"] in (0, 1) for e in errors)


def test_a_dead_joblib_worker_is_reported_finished_runs_are_kept_and_resume_completes(tmp_path):
    summary = run_sweep(SPEC, tmp_path, crash_worker, n_jobs=2)
    lost = {f["run_id"] for f in summary["failures"]}
    assert all(f["kind"] == "worker-died" and "joblib worker pool stopped" in f["error"] for f in summary["failures"])
    results, errors = results_by_run(tmp_path)
    assert {e["run_id"] for e in errors} == lost and len(results) + len(lost) == 4
    assert all(c["lr"] == 0.1 for c, _ in results.values())
    again = run_sweep(SPEC, tmp_path, fit)
    assert (again["executed"], again["failures"]) == (len(lost), [])


def test_a_raising_run_is_reported_with_its_traceback_and_the_others_are_kept(tmp_path):
    spec = {"config": {"epochs": 2}, "sweep": {"seeds": [0, 1], "grid": {"lr": [0.1, 5.0, 0.3]}}}
    summary = run_sweep(spec, tmp_path, fit, n_jobs=2)
    assert [(f["overrides"], f["kind"], f["error"]) for f in summary["failures"]] == \
        [({"lr": 5.0}, "exception", "ValueError: lr=5.0 diverges")] * 2
    results, errors = results_by_run(tmp_path)
    assert sorted(c["lr"] for c, _ in results.values()) == [0.1, 0.1, 0.3, 0.3]
    assert all("in fit" in e["traceback"] and "diverges" in e["traceback"] for e in errors)
    page = (tmp_path / "index.html").read_text()
    assert "Failed runs" in page and "lr=5.0 diverges" in page


def test_a_result_json_cannot_hold_is_reported(tmp_path):
    summary = run_sweep(SPEC, tmp_path, float32_result)
    assert {f["kind"] for f in summary["failures"]} == {"result-not-json"} and len(summary["failures"]) == 4
    assert "JSON cannot hold: TypeError: Object of type float32 is not JSON serializable" in summary["failures"][0]["error"]


def test_resume_skips_finished_runs_and_retries_failed_ones(tmp_path):
    log = tmp_path / "executions.txt"
    spec = {"config": {"epochs": 2, "log": str(log)}, "sweep": {"seeds": [0, 1], "grid": {"lr": [0.1, 5.0]}}}
    first = run_sweep(spec, tmp_path / "sweep", fit, n_jobs=2)
    assert (first["executed"], first["skipped"], len(log.read_text().splitlines())) == (4, 0, 4)
    before = results_by_run(tmp_path / "sweep")[0]

    again = run_sweep(spec, tmp_path / "sweep", fit)
    assert (again["executed"], again["skipped"]) == (2, 2)
    assert sorted(log.read_text().splitlines()[4:]) == ["5.0 0", "5.0 1"]  # only the failed runs again
    assert results_by_run(tmp_path / "sweep")[0] == before

    spec["sweep"]["grid"]["lr"] = [0.1, 0.2]
    changed = run_sweep(spec, tmp_path / "sweep", fit)
    assert (changed["executed"], changed["skipped"], changed["failures"]) == (2, 2, [])


def test_a_training_run_that_a_sweep_left_unfinished_continues_as_if_never_stopped(tmp_path):
    from handgrad.io import read_npz
    from handgrad.sweep.runner import _run_dir
    from handgrad.train import train_from_config

    spec = {"config": {"data": "digits", "data_fraction": 0.4, "epochs": 3, "batch_size": 32},
            "sweep": {"seeds": [0], "grid": {"lr": [3e-3]}}}
    (run,) = expand(spec)
    run_sweep(spec, tmp_path / "whole", report=False)
    whole = _run_dir(tmp_path / "whole", run) / "train"

    # stopped after its first epoch's checkpoint (a run of 1 epoch leaves that same checkpoint)
    killed = _run_dir(tmp_path / "killed", run) / "train"
    train_from_config({**run.config, "epochs": 1}, out_dir=killed)
    # stopped before its first checkpoint: only the manifest was written
    early = _run_dir(tmp_path / "early", run) / "train"
    early.mkdir(parents=True)
    for name in ("config.json", "config.toml"):
        (early / name).write_bytes((whole / name).read_bytes())

    for sweep_dir in ("killed", "early"):
        summary = run_sweep(spec, tmp_path / sweep_dir, report=False)
        assert (summary["executed"], summary["failures"]) == (1, [])
        done = _run_dir(tmp_path / sweep_dir, run) / "train"
        ours, theirs = read_npz(done / "model.npz")[0], read_npz(whole / "model.npz")[0]
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key])
    assert [json.loads(line)["epoch"] for line in (killed / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_missing_extras_give_an_error_naming_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "joblib", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ImportError, match=r'pip install "handgrad\[sweep\]"'):
        run_sweep(SPEC, tmp_path / "a", fit, n_jobs=2)
    with pytest.raises(ImportError, match=r'pip install "handgrad\[dask\]"'):
        run_sweep(SPEC, tmp_path / "b", fit, scheduler="tcp://127.0.0.1:8786")


# --- report -----------------------------------------------------------------


def test_report_tables_show_mean_and_std_across_seeds_and_the_best_setting(tmp_path):
    spec = {"config": {"epochs": 4}, "sweep": {"seeds": 3, "grid": {"lr": [0.01, 1.0]}, "metric": "test_accuracy"}}
    summary = run_sweep(spec, tmp_path, fit)
    _, results, _ = load_runs(tmp_path)
    acc = {lr: [r["result"]["test_accuracy"] for r in results if r["config"]["lr"] == lr] for lr in (0.01, 1.0)}
    best_lr = max(acc, key=lambda lr: np.mean(acc[lr]))
    assert summary["best"]["overrides"] == {"lr": best_lr}
    assert summary["best"]["mean"] == pytest.approx(np.mean(acc[best_lr]))
    assert summary["best"]["std"] == pytest.approx(np.std(acc[best_lr]))
    best_runs = [r for r in results if r["config"]["lr"] == best_lr]
    assert summary["best"]["run_value"] == max(r["result"]["test_accuracy"] for r in best_runs)
    assert summary["best"]["run_id"] in {r["run_id"] for r in best_runs if r["result"]["test_accuracy"] == summary["best"]["run_value"]}
    assert (tmp_path / "best_run" / "weights.txt").read_text() == \
        (tmp_path / "runs" / summary["best"]["run_id"] / "train" / "weights.txt").read_text()
    assert json.loads((tmp_path / "best.json").read_text()) == summary["best"]
    header, first, _ = [line.split(",") for line in (tmp_path / "results.csv").read_text().splitlines()]
    assert header[:4] == ["setting", "lr", "seeds_finished", "seeds_failed"] and first[:4] == ["0", "0.01", "3", "0"]
    assert float(first[header.index("test_accuracy_mean")]) == pytest.approx(np.mean(acc[0.01]), rel=1e-5)
    assert float(first[header.index("test_accuracy_std")]) == pytest.approx(np.std(acc[0.01]), rel=1e-5)
    assert f"{np.mean(acc[1.0]):.4f} ± {np.std(acc[1.0]):.4f}" in (tmp_path / "results.md").read_text()
    assert len((tmp_path / "runs.csv").read_text().splitlines()) == 1 + 6


def test_facet_table_arranges_settings_by_a_key(tmp_path):
    spec = {"config": {}, "sweep": {"facet": "model", "metric": "test_accuracy", "points": [
        {"model": "a", "epochs": 1, "lr": 0.1}, {"model": "a", "epochs": 3, "lr": 0.1},
        {"model": "b", "epochs": 2, "lr": 0.5}]}}
    run_sweep(spec, tmp_path, fit)
    lines = (tmp_path / "facets.md").read_text().splitlines()
    assert lines[0] == "| model | setting 1 | setting 2 |"
    assert lines[2].startswith("| a | epochs=1, lr=0.1: ") and "| epochs=3, lr=0.1: " in lines[2]
    assert lines[3].startswith("| b | epochs=2, lr=0.5: ") and lines[3].endswith("|  |")


def test_report_draws_one_figure_per_metric_with_every_setting_a_facet_grid_and_a_comparison(tmp_path):
    spec = {"config": {"epochs": 3}, "sweep": {"seeds": 2, "grid": {"lr": [0.01, 0.1, 0.5]}, "facet": "lr",
                                               "compare": ["val_acc", "iteration_loss"]}}
    run_sweep(spec, tmp_path, fit)
    drawn = sorted(p.name for p in (tmp_path / "curves").iterdir())
    # every metric the histories hold gets one figure with all settings on the same axes
    # (it replaced the per-setting figures, each on its own scale); compare adds iteration_loss
    assert drawn == ["compare-iteration_loss.png", "compare-train_acc.png", "compare-val_acc.png", "facets.png"]
    page = (tmp_path / "index.html").read_text()
    assert all(f"<img src='curves/{name}'" in page for name in drawn)
    spec["sweep"]["compare"] = "accuracy"
    run_sweep(spec, tmp_path, fit)
    assert "No comparison of accuracy: series: unknown metric" in (tmp_path / "index.html").read_text()


def test_without_matplotlib_the_report_has_its_tables_and_says_what_to_install(tmp_path, monkeypatch):
    from handgrad import plots

    monkeypatch.setattr(plots, "can_plot", lambda: False)
    run_sweep(SPEC, tmp_path, fit)
    assert not (tmp_path / "curves").exists() and (tmp_path / "results.md").is_file()
    assert 'need matplotlib: pip install "handgrad[plots]"' in html.unescape((tmp_path / "index.html").read_text())


# --- command line -------------------------------------------------------------


def cli(*args, cwd):
    paths = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.run([sys.executable, "-m", "handgrad", "sweep", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_cli_runs_a_spec_with_grid_axes_and_forced_values_and_resumes(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('[config]\nepochs = 5\n\n[sweep]\nseeds = 2\nmetric = "test_accuracy"\n\n'
                    '[[sweep.points]]\nlr = 0.1\n\n[[sweep.points]]\nlr = 0.3\n')
    assert load_spec(spec)["sweep"]["points"] == [{"lr": 0.1}, {"lr": 0.3}]
    args = [str(spec), "tag=[1, 2]", "--set", "epochs=2", "--out", "out", "--run", "test_sweep:fit", "--jobs", "2"]
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "8 runs: 8 executed, 0 already finished, 0 failed" in done.stdout
    assert "best: lr=" in done.stdout and "out/index.html" in done.stdout
    sweep, results, _ = load_runs(tmp_path / "out")
    assert {(r["config"]["lr"], r["config"]["tag"], r["config"]["epochs"]) for r in results} == \
        {(lr, tag, 2) for lr in (0.1, 0.3) for tag in (1, 2)}
    again = cli(*args, cwd=tmp_path)
    assert "8 runs: 0 executed, 8 already finished, 0 failed" in again.stdout


def test_cli_runs_on_a_dask_scheduler_and_matches_a_local_run(tmp_path, dask_client):
    args = ["lr=[0.1, 0.2]", "epochs=[3]", "--seeds", "2", "--run", "test_sweep:fit"]
    on_dask = cli(*args, "--out", "dask", "--scheduler", dask_client.scheduler.address, cwd=tmp_path)
    assert on_dask.returncode == 0, on_dask.stderr
    local = cli(*args, "--out", "local", "--jobs", "2", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    assert results_by_run(tmp_path / "dask") == results_by_run(tmp_path / "local")
    assert len(results_by_run(tmp_path / "dask")[0]) == 4
    # the workers' files land in the sweep directory, not relative to the workers' own cwd
    assert len(list((tmp_path / "dask" / "runs").glob("*/train/weights.txt"))) == 4


def test_cli_lists_the_settings_of_a_grid_given_on_the_command_line(tmp_path):
    listed = cli("lr=[1e-4, 5e-3, 0.1]", "epochs=[5, 15]", "model_kwargs.hidden=[[100], [200], [200, 200]]",
                 "--seeds", "3", "--list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "18 settings x 3 seeds = 54 runs"
    assert lines[1] == "  0  lr=0.0001, epochs=5, model_kwargs.hidden=[100]"
    assert lines[-1] == " 17  lr=0.1, epochs=15, model_kwargs.hidden=[200, 200]"
    assert not list(tmp_path.iterdir())


def test_cli_reports_failures_with_exit_status_1_and_bad_input_with_2(tmp_path):
    failed = cli("lr=[0.1, 2.0]", "epochs=[1]", "--out", "out", "--run", "test_sweep:fit", cwd=tmp_path)
    assert failed.returncode == 1
    assert "FAILED ValueError: lr=2.0 diverges" in failed.stderr
    bad = cli("spec.yaml", "--out", "out", cwd=tmp_path)
    assert bad.returncode == 2 and "expected a sweep spec ending in .toml or .json" in bad.stderr
    no_out = cli("lr=[1]", cwd=tmp_path)
    assert no_out.returncode == 2 and "--out DIR is required" in no_out.stderr
    bad_run = cli("lr=[1]", "--out", "out", "--run", "nowhere", cwd=tmp_path)
    assert bad_run.returncode == 2 and "expected MODULE:FUNCTION" in bad_run.stderr


# --- forced values, diverged runs, times --------------------------------------


def test_settings_made_identical_by_forced_values_run_once_and_the_tables_show_the_forced_values(tmp_path):
    spec = {"config": {"lr": 0.1}, "sweep": {"grid": {"epochs": [1, 2, 3], "lr": [0.1, 0.3]}}}
    assert merged_settings(spec, {"epochs": 2}) == {2: 0, 3: 1, 4: 0, 5: 1}
    runs = expand(spec, {"epochs": 2})
    assert [(r.setting_index, r.config["epochs"], r.config["lr"]) for r in runs] == [(0, 2, 0.1), (1, 2, 0.3)]
    assert [r.run_id[:10] for r in runs] == ["000-seed0-", "001-seed0-"]  # the first setting's index is kept
    summary = run_sweep(spec, tmp_path, fit, forced={"epochs": 2})
    assert summary["runs"] == 2 and summary["merged"] == {2: 0, 3: 1, 4: 0, 5: 1}
    lines = (tmp_path / "results.md").read_text().splitlines()
    assert lines[0] == "| setting | epochs | lr | epochs (--set) | seeds | test_accuracy | best_val_accuracy | wall_time |"
    assert lines[2].startswith("| 0 | 1 | 0.1 | 2 | 1 | ") and lines[2].endswith(" | 0.0 s |")
    assert "run once: setting 2 as setting 0, setting 3 as setting 1" in lines[-1]
    page = html.unescape((tmp_path / "index.html").read_text())
    assert "<th>epochs (--set)</th>" in page and "setting 5 as setting 1" in page


def test_a_diverged_run_is_flagged_as_diverged_not_as_a_failure(tmp_path):
    spec = {"config": {"epochs": 2}, "sweep": {"seeds": 2, "grid": {"lr": [0.1, 0.5]}}}
    summary = run_sweep(spec, tmp_path, diverge)
    assert {(f["overrides"]["lr"], f["kind"]) for f in summary["failures"]} == {(0.5, "diverged")}
    body = (tmp_path / "results.md").read_text().splitlines()[3]
    assert body.startswith("| 1 | 0.5 | 0 (2 diverged) | diverged |")
    assert (tmp_path / "results.csv").read_text().splitlines()[2].startswith("1,0.5,0,0,2,")
    page = (tmp_path / "index.html").read_text()
    assert "0 failed, 2 diverged" in page and "<b>diverged</b>: TrainingDiverged: the loss became nan" in page


def test_cli_says_which_settings_ran_once_flags_diverged_runs_and_gives_times_with_units(tmp_path):
    done = cli("lr=[0.1, 0.5]", "epochs=[1, 2]", "--set", "epochs=2", "--out", "out", "--run", "test_sweep:diverge",
               cwd=tmp_path)
    assert done.returncode == 1
    assert "2 setting(s) identical to an earlier one under --set, run once: 1 as 0, 3 as 2" in done.stdout
    assert "2 runs: 2 executed, 0 already finished, 0 failed, 1 diverged" in done.stdout
    assert "DIVERGED TrainingDiverged: the loss became nan" in done.stderr
    assert "diverged: 002-seed0-" in done.stderr
    ok = [line for line in done.stderr.splitlines() if " ok " in line]
    assert len(ok) == 1 and ok[0].startswith("[") and ok[0].endswith(" s)")
    # the progress line: runs done of all, the rate, then running and failed
    assert any(line.startswith("sweep: 2/2 run (100%), ") and line.endswith("0 running, 0 failed, 1 diverged")
               for line in done.stderr.splitlines())
    quiet = cli("lr=[0.1, 0.5]", "epochs=[2]", "--out", "out2", "--run", "test_sweep:fit", "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


# --- a cluster that does not share this file system ------------------------------


@pytest.fixture
def separate_workers(tmp_path):
    """A Dask scheduler and two workers on 127.0.0.1, each worker started in its own
    directory with its own TMPDIR (neither the client's nor each other's)."""
    paths = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    address_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(address_file)],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    homes = []
    try:
        for name in ("worker-a", "worker-b"):
            home = tmp_path / name
            (home / "tmp").mkdir(parents=True)
            homes.append(home)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(address_file),
                 "--nthreads", "1", "--host", "127.0.0.1", "--local-directory", str(home / "scratch")],
                cwd=home, env=dict(env, TMPDIR=str(home / "tmp")), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from dask.distributed import Client

        deadline = time.monotonic() + 120
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        client = Client(scheduler_file=str(address_file), timeout=60)
        client.wait_for_workers(2, timeout=120)
        yield client, homes
        client.close()
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            proc.wait(timeout=60)


def test_dask_workers_without_this_file_system_send_every_run_directory_back(tmp_path, separate_workers):
    client, homes = separate_workers
    out = tmp_path / "client" / "sweep"
    spec = {"config": {"epochs": 3}, "sweep": {"seeds": [0, 1], "grid": {"lr": [0.1, 0.2]}}}
    summary = run_sweep(spec, out, where, client=client)
    assert summary["failures"] == [] and summary["executed"] == 4
    _, results, _ = load_runs(out)
    for record in results:
        # each run wrote into a temporary directory of its worker, not into the sweep directory
        home = next(h for h in homes if record["result"]["out_dir"].startswith(str(h / "tmp")))
        assert record["result"]["cwd"] == str(home)
        train = out / "runs" / record["run_id"] / "train"
        assert (train / "plots" / "seed.bin").read_bytes() == bytes([record["seed"], 0, 255])
        assert np.loadtxt(train / "weights.txt").shape == (5,)
    assert [list((h / "tmp").iterdir()) for h in homes] == [[], []]  # the workers cleaned up
    run_sweep(spec, tmp_path / "serial", fit)
    serial, _ = results_by_run(tmp_path / "serial")
    assert {k: v[1]["test_accuracy"] for k, v in results_by_run(out)[0].items()} == \
        {k: v[1]["test_accuracy"] for k, v in serial.items()}
    again = run_sweep(spec, out, where, client=client)
    assert (again["executed"], again["skipped"]) == (0, 4)


def test_a_sweep_on_a_data_file_named_relative_to_the_working_directory_resumes(tmp_path, monkeypatch):
    # the manifest records the data file's absolute path; the spec gives it as written
    from handgrad.sweep.runner import _run_dir
    from handgrad.train import train_from_config

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.random((60, 4)).astype(np.float32), y_train=rng.integers(0, 2, 60),
             x_test=rng.random((20, 4)).astype(np.float32), y_test=rng.integers(0, 2, 20))
    monkeypatch.chdir(tmp_path)
    spec = {"config": {"data": "d.npz", "epochs": 2, "batch_size": 16}, "sweep": {"seeds": [0], "grid": {"lr": [0.01]}}}
    (run,) = expand(spec)
    train_from_config({**run.config, "epochs": 1}, out_dir=_run_dir(tmp_path / "sweep", run) / "train")
    summary = run_sweep(spec, tmp_path / "sweep", report=False)
    assert summary["failures"] == []


def test_a_listing_cut_short_by_its_reader_is_not_an_error(tmp_path):
    """handgrad sweep --list | head: the reader closes the pipe; no 'Broken pipe' error, and
    the status of a program stopped by SIGPIPE (141, as `yes | head`), so a script with
    pipefail still sees that the command did not finish."""
    paths = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    lrs = ", ".join(f"{k / 1e5:.5f}" for k in range(1, 3001))  # a listing beyond the pipe's buffer
    proc = subprocess.Popen([sys.executable, "-m", "handgrad", "sweep", f"lr=[{lrs}]", "--seeds", "3", "--list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    assert proc.stdout.readline().startswith(b"3000 settings")
    proc.stdout.close()
    assert proc.wait(timeout=120) == 141
    assert proc.stderr.read() == b""


# --- the sweep directory -------------------------------------------------------


def test_a_misspelled_metric_is_refused_before_any_run(tmp_path):
    spec = {"sweep": {"grid": {"lr": [0.1]}, "metric": "best_val_acuracy"}}
    with pytest.raises(ValueError, match=r"metric 'best_val_acuracy' is not what a training run reports; "
                                         r"choose from test_accuracy, test_loss, best_val_accuracy"):
        run_sweep(spec, tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


def test_a_training_run_directory_or_a_busy_sweep_is_refused(tmp_path):
    from handgrad.train.rundir import RunDirError

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    spec = {"config": {"epochs": 1}, "sweep": {"grid": {"lr": [0.1]}}}
    with pytest.raises(RunDirError, match="holds a training run .config.json., not a sweep"):
        run_sweep(spec, run, fit)
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]

    busy = tmp_path / "busy"
    busy.mkdir()
    with held_by_another_process(busy / ".lock"):
        with pytest.raises(RunDirError, match="in use by another handgrad sweep"):
            run_sweep(spec, busy, fit)
        assert sorted(p.name for p in busy.iterdir()) == [".lock"]
    assert run_sweep(spec, busy, fit)["executed"] == 1  # free again


def test_a_changed_spec_says_which_earlier_runs_leave_the_report(tmp_path):
    first = run_sweep({"config": {"epochs": 2}, "sweep": {"grid": {"lr": [0.1, 0.2]}}}, tmp_path, fit)
    assert first["left_out"] == []
    more = run_sweep({"config": {"epochs": 2}, "sweep": {"grid": {"lr": [0.1, 0.2]}, "seeds": [0, 1]}}, tmp_path, fit)
    assert (more["executed"], more["skipped"], more["left_out"]) == (2, 2, [])  # a superset: nothing left out
    other = run_sweep({"config": {"epochs": 2}, "sweep": {"grid": {"lr": [0.3]}}}, tmp_path, fit)
    assert len(other["left_out"]) == 4 and all((tmp_path / "runs" / r).is_dir() for r in other["left_out"])


def test_a_sweep_run_trains_in_one_process_whatever_jobs_says(tmp_path, monkeypatch):
    """The default run function trains each run with workers = 1 unless the config
    says otherwise, so --jobs 1 and --jobs 2 give the same results."""
    from handgrad import train as train_module
    from handgrad.sweep.runner import train_or_resume

    seen = []
    monkeypatch.setattr(train_module, "train_from_config", lambda config, **kw: seen.append(config["workers"]))
    train_or_resume({"lr": 0.1})
    train_or_resume({"lr": 0.1, "workers": 2})
    assert seen == [1, 2]
