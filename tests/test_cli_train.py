"""handgrad train / evaluate / predict, run as subprocesses the way a user runs them."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from handgrad.io import read_npz

FAST = ["--data", "digits", "--epochs", "3", "--seed", "1"]
# one BLAS thread per process: under `pytest -n 2` on 2 cores, more threads only contend
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}


def handgrad(*args, cwd=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "handgrad", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"handgrad {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def parse_test_accuracy(stdout) -> float:
    lines = [line for line in stdout.splitlines() if line.startswith("test accuracy: ")]
    assert len(lines) == 1, stdout
    return float(lines[0].split(": ")[1])




@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits"
    proc = handgrad("train", *FAST, "--out", out)
    return out, proc


def test_train_writes_a_complete_run_directory(digits_run):
    out, proc = digits_run
    accuracy = parse_test_accuracy(proc.stdout)
    assert accuracy > 0.85
    for name in ("config.json", "metrics.jsonl", "checkpoint.npz", "model.npz", "results.json", "report.html",
                 "classification_report.txt", "plots/loss.png", "plots/curves.png",
                 "plots/confusion_matrix.png", "plots/predictions.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "results.json").read_text())["test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    report = (out / "report.html").read_text()
    for needle in ("plots/loss.png", "plots/confusion_matrix.png", "classification-report", "Params"):
        assert needle in report, needle
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == "digits" and config["epochs"] == 3 and config["seed"] == 1


def test_evaluate_and_predict_agree_with_train(digits_run, tmp_path):
    out, proc = digits_run
    accuracy = parse_test_accuracy(proc.stdout)
    ev = handgrad("evaluate", "--checkpoint", out, "--out", tmp_path / "eval")
    assert f"accuracy: {accuracy:.4f}" in ev.stdout.splitlines()
    assert "precision" in ev.stdout
    assert (tmp_path / "eval" / "plots" / "confusion_matrix.png").is_file()
    alone = tmp_path / "alone" / "checkpoint.npz"  # a checkpoint carries its config: no run directory needed
    alone.parent.mkdir()
    alone.write_bytes((out / "checkpoint.npz").read_bytes())
    from_checkpoint = handgrad("evaluate", "--checkpoint", alone, "--out", tmp_path / "eval2")
    assert 0.85 < float(from_checkpoint.stdout.split("accuracy: ")[-1]) <= 1

    preds = tmp_path / "preds.csv"
    handgrad("predict", "--checkpoint", out / "model.npz", "--data", "digits", "--split", "test", "--out", preds)
    rows = list(csv.DictReader(preds.open()))
    from handgrad.data import load_dataset

    y = load_dataset("digits", seed=1).test[1]
    assert [int(r["id"]) for r in rows] == list(range(len(y)))
    predicted = np.array([int(r["label"]) for r in rows])
    assert np.mean(predicted == y) == pytest.approx(accuracy, abs=1e-4)

    images = tmp_path / "images.npy"
    np.save(images, load_dataset("digits", seed=1).test[0][:5])
    handgrad("predict", "--checkpoint", out, "--images", images, "--out", tmp_path / "five.csv")
    five = list(csv.DictReader((tmp_path / "five.csv").open()))
    assert [int(r["label"]) for r in five] == predicted[:5].tolist()


def test_config_file_with_flags_overriding(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('data = "digits"\nepochs = 9\nbatch_size = 16\noptimizer = "sgd"\nlr = 0.05\n'
                      'data_fraction = 0.5\n[model_kwargs]\nhidden = [32]\n')
    out = tmp_path / "run"
    proc = handgrad("train", "--config", config, "--epochs", "2", "--out", out, "--quiet")
    assert 0 < parse_test_accuracy(proc.stdout) <= 1
    saved = json.loads((out / "config.json").read_text())
    assert saved["epochs"] == 2 and saved["batch_size"] == 16 and saved["optimizer"] == "sgd"
    assert saved["model_kwargs"]["hidden"] == [32]
    assert proc.stderr == ""


@pytest.mark.parametrize("args, message", [
    (["--lr", "-0.1"], "lr must be a positive number, got -0.1"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--model", "nonet"], "unknown model 'nonet'"),
    (["--data", "nodata"], "unknown data set 'nodata'"),
    (["--optimizer", "adamax"], "unknown optimizer 'adamax'"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["--resume"], "--resume needs --out"),
])
def test_bad_flags_are_named(tmp_path, args, message):
    proc = handgrad("train", "--data", "digits", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("text, message", [
    ("epoch = 3\n", "unknown key 'epoch'"),
    ('epochs = "3"\n', "epochs must be a positive integer, got '3'"),
    ("lr = -1.0\n", "lr must be a positive number"),
    ("[model_kwargs]\nwidth = 3\n", "model 'mlp' has no argument 'width'"),
    ("epochs = \n", "invalid TOML"),
])
def test_bad_config_values_are_named(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    proc = handgrad("train", "--config", config, "--data", "digits", "--out", tmp_path / "run", check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_diverging_run_exits_nonzero_with_message(tmp_path):
    proc = handgrad("train", "--data", "digits", "--optimizer", "sgd", "--lr", "1e4", "--out", tmp_path / "run",
                    check=False)
    assert proc.returncode == 1
    assert "training diverged" in proc.stderr and "learning rate 10000" in proc.stderr
    assert "iteration" in proc.stderr


def test_evaluate_and_predict_name_bad_files(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"not a zip file")
    proc = handgrad("evaluate", "--checkpoint", bad, check=False)
    assert proc.returncode == 2 and str(bad) in proc.stderr
    proc = handgrad("predict", "--checkpoint", tmp_path / "missing", "--data", "digits", "--out", tmp_path / "p.csv",
                    check=False)
    assert proc.returncode == 2 and "missing" in proc.stderr


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    """Kill `handgrad train` with SIGKILL after its first checkpoint, resume it, and
    compare with a run never interrupted: same metrics, bitwise-equal weights."""
    args = ["train", "--data", "digits", "--epochs", "40", "--batch-size", "16", "--eval-every", "500",
            "--seed", "3", "--quiet"]
    reference = tmp_path / "reference"
    handgrad(*args, "--out", reference)

    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "handgrad", *args, "--out", str(run)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
        assert proc.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.05)  # let it train past the checkpoint: those steps are lost and must be replayed
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (run / "model.npz").exists()

    handgrad(*args, "--out", run, "--resume")
    assert (run / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    ref_arrays, _ = read_npz(reference / "model.npz")
    arrays, _ = read_npz(run / "model.npz")
    assert ref_arrays.keys() == arrays.keys()
    for name in ref_arrays:
        assert np.array_equal(ref_arrays[name], arrays[name]), name
    from handgrad.train import load_checkpoint

    ref_state, state = load_checkpoint(reference / "checkpoint.npz"), load_checkpoint(run / "checkpoint.npz")
    assert np.array_equal(state["history"]["iteration_loss"], ref_state["history"]["iteration_loss"])
    for name in ref_state["model"]:
        assert np.array_equal(ref_state["model"][name], state["model"][name]), name


def test_a_run_without_matplotlib_writes_everything_but_the_plots(tmp_path):
    """The core needs only NumPy: with matplotlib missing, training and the report still work."""
    code = ("import sys; sys.modules['matplotlib'] = None; from handgrad.cli import main; "
            f"sys.exit(main(['train', '--data', 'synth', '--epochs', '1', '--out', {str(tmp_path / 'run')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "test accuracy:" in out.stdout
    assert 'plots skipped: matplotlib is not installed (pip install "handgrad[plots]")' in out.stderr
    assert (tmp_path / "run" / "model.npz").is_file() and not (tmp_path / "run" / "plots").exists()
    assert "plots skipped" in (tmp_path / "run" / "report.html").read_text()
