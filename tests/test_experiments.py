"""The experiment specs in experiments/ run end to end, as their README says, on a
small subset of Fashion-MNIST (1% of the training set, one epoch per run)."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).parent.parent / "experiments"
SMOKE = ["--set", "data_fraction=0.01", "--set", "epochs=1", "--jobs", "2"]


def handgrad(*args, cwd):
    done = subprocess.run([sys.executable, "-m", "handgrad", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def sweep(name, tmp_path, *extra):
    out = handgrad("sweep", str(EXPERIMENTS / f"{name}.toml"), "--out", "out", *SMOKE, *extra, cwd=tmp_path)
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert f"best: {best['label']}" in out
    assert (tmp_path / "out" / "best_run" / "model.npz").is_file()
    return tmp_path / "out", best


@pytest.mark.slow
def test_classic_experiment_runs_and_tabulates_models_by_settings(tmp_path):
    out, best = sweep("classic", tmp_path)
    assert best["metric"] == "test_accuracy"
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and all(r["seeds_finished"] == "1" for r in rows)
    assert all(0 <= float(r["test_accuracy_mean"]) <= 1 for r in rows)
    facets = (out / "facets.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in facets[2:6]] == ["| mlp, []", "| mlp, [32]", "| mlp, [32, 32]", "| small_cnn, –"]
    assert facets[7] == "Forced in every run: data_fraction=0.01, epochs=1"
    assert (out / "curves" / "facets.png").is_file() and len(list((out / "curves").glob("setting-*.png"))) == 12
    history = json.loads((out / "runs" / best["run_id"] / "result.json").read_text())["result"]["history"]
    assert history["eval"][-1]["samples"] > 0 and "train_acc" in history["eval"][-1]


@pytest.mark.slow
def test_search_experiment_picks_by_validation_and_predicts_the_test_set(tmp_path):
    out, best = sweep("search", tmp_path)
    assert best["metric"] == "best_val_accuracy" and set(best["overrides"]) == {"model_kwargs.hidden", "batch_size", "epochs"}
    handgrad("predict", "--checkpoint", "out/best_run", "--data", "fashion-mnist", "--split", "test",
             "--out", "out/test_predictions.csv", cwd=tmp_path)
    lines = (out / "test_predictions.csv").read_text().splitlines()
    assert lines[0] == "id,label,class" and len(lines) == 1 + 10000


@pytest.mark.slow
def test_sigmoid_experiment_compares_learning_rates_and_reports_the_best(tmp_path):
    out, best = sweep("sigmoid", tmp_path, "--seeds", "2")
    assert (out / "curves" / "compare-val_acc.png").is_file()
    assert list(best["overrides"]) == ["lr"] and len(best["seeds"]) == 2
    report = handgrad("evaluate", "--checkpoint", "out/best_run", cwd=tmp_path)
    assert "precision" in report and "recall" in report
