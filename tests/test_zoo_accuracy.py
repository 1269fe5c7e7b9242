"""Accuracy floors of zoo models trained on real Fashion-MNIST with `handgrad train`
and their default settings (slow: minutes on 2 cores)."""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def train(*args, cwd):
    # one BLAS thread per process: under `pytest -n 2` on 2 cores, more threads only contend
    env = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    proc = subprocess.run([sys.executable, "-m", "handgrad", "train", "--quiet", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout.split("test accuracy: ")[1].split()[0])


def test_handgrad_train_with_no_arguments_trains_mlp_to_85_percent(tmp_path):
    assert train(cwd=tmp_path) >= 0.85
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("mlp-fashion-mnist-") and (run / "report.html").is_file()


def test_small_cnn_reaches_86_percent_in_two_epochs(tmp_path):
    assert train("--model", "small_cnn", "--data", "fashion-mnist", "--epochs", "2", cwd=tmp_path) >= 0.86


def test_cnn_reaches_87_percent_in_two_epochs(tmp_path):
    # the full default run (14 epochs, about 10 minutes) reaches 0.922; two epochs give about 0.89
    assert train("--model", "cnn", "--data", "fashion-mnist", "--epochs", "2", cwd=tmp_path) >= 0.87
