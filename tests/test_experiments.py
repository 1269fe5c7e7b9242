"""The experiment specs in experiments/: they say what the course material ran (read
without training), and they run end to end, as their README says, on a small subset
of Fashion-MNIST (1% of the training set, one epoch per run; slow) or, for
search_smoke.toml, on the bundled 8x8 digits (seconds)."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from handgrad.sweep.space import expand, settings
from handgrad.train.config import check_config, read_toml

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
    assert best["metric"] == "final_test_accuracy"  # the last evaluation's, as the assignment reports it
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    # 12 settings, two of which --set epochs=1 makes identical to another (they differ only in epochs): run once
    assert len(rows) == 10 and all(r["seeds_finished"] == "1" for r in rows)
    assert all(0 <= float(r["test_accuracy_mean"]) <= 1 for r in rows)
    facets = (out / "facets.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in facets[2:6]] == ["| mlp, []", "| mlp, [32]", "| mlp, [32, 32]", "| small_cnn, –"]
    assert facets[7] == "Forced in every run: data_fraction=0.01, epochs=1"
    assert all("(best-val weights: " in line for line in facets[2:6])
    # one figure per metric with every setting on it (no longer one figure per setting)
    assert (out / "curves" / "facets.png").is_file() and (out / "curves" / "compare-val_acc.png").is_file()
    history = json.loads((out / "runs" / best["run_id"] / "result.json").read_text())["result"]["history"]
    assert history["eval"][-1]["samples"] > 0 and "train_acc" in history["eval"][-1]
    assert history["eval"][0]["iteration"] == 0  # evaluated before the first update, as the Solver does


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


def spec(name):
    return read_toml(EXPERIMENTS / f"{name}.toml")


def run_configs(name):
    return [run.config for run in expand(spec(name))]


def model_number(config):
    """1-3: the MLPs with 0, 1, 2 hidden layers of 32; 4: the CNN."""
    if config["model"] == "small_cnn":
        return 4
    return {(): 1, (32,): 2, (32, 32): 3}[tuple(config["model_kwargs"]["hidden"])]


def test_classic_models_1_to_3_use_the_mean_loss_model_4_the_sum_all_plain_sgd():
    configs = run_configs("classic")
    runs = {}
    for config in configs:
        runs.setdefault(model_number(config), []).append((config["epochs"], config["lr"]))
        assert config["loss_reduction"] == ("sum" if model_number(config) == 4 else "mean"), config
        assert config["optimizer"] == "sgd" and config["momentum"] == 0, config
        assert config["batch_size"] == 100 and config["lr_decay"] == 1.0
        check_config(config)
    assert runs == {
        1: [(5, 1e-4), (5, 5e-3), (5, 0.1)],
        2: [(15, 1e-4), (15, 5e-3), (15, 0.1)],
        3: [(5, 3e-3), (40, 3e-3), (40, 0.05)],
        4: [(5, 0.01), (10, 1e-3), (20, 1e-3)],
    }


@pytest.mark.parametrize("name", ["classic", "search", "search_depth", "search_smoke", "sigmoid", "sigmoid_final"])
def test_every_experiment_is_plain_sgd_with_explicit_momentum_0(name):
    """Every run's config names sgd and momentum 0 itself (the config default is not relied on)."""
    base = spec(name)["config"]
    for run in expand(spec(name)):
        config = run.config
        assert all(key in base or key in run.overrides for key in ("optimizer", "momentum")), run.overrides
        assert config["optimizer"] == "sgd" and config["momentum"] == 0.0, config
        check_config(config, name)


def test_search_grids_are_the_assignments():
    base = spec("search")["config"]
    assert (base["lr"], base["lr_decay"], base["init"], base["weight_scale"]) == (1e-4, 0.95, "normal", 0.1)
    grid = {(tuple(s["model_kwargs.hidden"]), s["batch_size"], s["epochs"]) for s in settings(spec("search")["sweep"])}
    assert grid == {((h,), b, e) for h in (100, 150, 200) for b in (2, 4, 8) for e in (30, 50, 80)}
    depth = spec("search_depth")
    assert {k: v for k, v in depth["config"].items() if k != "epochs"} == base and depth["config"]["epochs"] == 20
    grid = {(tuple(s["model_kwargs.hidden"]), s["batch_size"]) for s in settings(depth["sweep"])}
    assert grid == {((200,) * d, b) for d in (1, 2, 3, 4) for b in (4, 8)}
    smoke = spec("search_smoke")
    assert set(smoke["config"]) - {"data_fraction"} == set(base) and smoke["sweep"]["metric"] == spec("search")["sweep"]["metric"]
    assert set(settings(smoke["sweep"])[0]) == {"model_kwargs.hidden", "batch_size", "epochs"}


def test_sigmoid_experiment_is_784_300_10_with_minibatch_8_and_its_final_step_uses_all_training_data():
    sigmoid, final = spec("sigmoid"), spec("sigmoid_final")
    config = sigmoid["config"]
    assert config["model_kwargs"] == {"hidden": [300], "activation": "sigmoid"}
    assert (config["batch_size"], config["loss_reduction"], config["epochs"]) == (8, "mean", 5)
    assert sigmoid["sweep"]["seeds"] == 3 and sigmoid["sweep"]["grid"] == {"lr": [0.001, 0.003, 0.01, 0.03]}
    assert {k: v for k, v in final["config"].items() if k not in ("lr", "val_fraction")} == config
    assert final["config"]["val_fraction"] == 0 and final["config"]["lr"] in sigmoid["sweep"]["grid"]["lr"]


def test_search_smoke_runs_through_handgrad_sweep(tmp_path):
    out = handgrad("sweep", str(EXPERIMENTS / "search_smoke.toml"), "--out", "out", cwd=tmp_path)
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert f"best: {best['label']}" in out and best["metric"] == "best_val_accuracy"
    with open(tmp_path / "out" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(r["seeds_finished"] == "1" for r in rows)
    assert (tmp_path / "out" / "best_run" / "model.npz").is_file()


def test_the_search_table_from_the_longest_runs_equals_the_shorter_runs_themselves(tmp_path):
    """experiments/search_table.py reads the 30- and 50-epoch rows out of the 80-epoch
    runs; at toy size, the rows it reads equal what runs of those lengths report."""
    from handgrad.train.run import train_from_config

    text = (EXPERIMENTS / "search_smoke.toml").read_text()
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(text.replace("lr = 1e-4", "lr = 0.05").replace("epochs = [1]", "epochs = [1, 3]"))
    handgrad("sweep", str(spec_file), "--out", "out", "--set", "epochs=3", "--set", "eval_test=true", cwd=tmp_path)
    table = subprocess.run([sys.executable, str(EXPERIMENTS / "search_table.py"), "out", "--spec", str(spec_file)],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout.splitlines()[2:]
    cells = [[c.strip("* ") for c in line.strip("|").split("|")] for line in table]
    assert [(c[0], c[2]) for c in cells] == [("[16]", "1"), ("[16]", "3"), ("[32]", "1"), ("[32]", "3")]
    config = read_toml(spec_file)["config"]
    for c in cells:
        run = train_from_config({**config, "model_kwargs": {**config["model_kwargs"], "hidden": json.loads(c[0])},
                                 "batch_size": int(c[1]), "epochs": int(c[2]), "eval_test": True})
        assert [float(v) for v in c[3:]] == [round(run["best_val_accuracy"], 4), round(run["test_accuracy"], 4),
                                            round(run["final_test_accuracy"], 4)]
