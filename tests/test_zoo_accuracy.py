"""Accuracy floors of zoo models trained on real Fashion-MNIST (slow: minutes on 2 cores)."""
import subprocess
import sys

import pytest

from handgrad.train import train_from_config

pytestmark = pytest.mark.slow


def test_handgrad_train_with_no_arguments_trains_mlp_to_85_percent(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "handgrad", "train", "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    accuracy = float(proc.stdout.split("test accuracy: ")[1].split()[0])
    assert accuracy >= 0.85
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("mlp-fashion-mnist-") and (run / "report.html").is_file()


def test_small_cnn_reaches_86_percent_in_two_epochs():
    result = train_from_config({"model": "small_cnn", "data": "fashion-mnist", "epochs": 2})
    assert result["test_accuracy"] >= 0.86


def test_cnn_reaches_88_percent_in_one_epoch():
    result = train_from_config({"model": "cnn", "data": "fashion-mnist", "epochs": 1})
    assert result["test_accuracy"] >= 0.88
