"""A user with their own files, as the README says: a Kaggle-style train.csv to
train on, an unlabelled test.csv to predict for a submission, and a warning when
the training file changes after the run."""
import csv
import os
import subprocess
import sys

import numpy as np

from handgrad.data import load_dataset

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def handgrad(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "handgrad", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def write_csv(path, X, y=None):
    pixels = np.round(X.reshape(len(X), -1) * 255).astype(int)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow((["label"] if y is not None else []) + [f"pixel{i}" for i in range(pixels.shape[1])])
        for i, row in enumerate(pixels):
            writer.writerow(([int(y[i])] if y is not None else []) + row.tolist())


def test_train_on_a_csv_predict_a_submission_and_warn_when_the_data_changes(tmp_path):
    digits = load_dataset("digits")
    write_csv(tmp_path / "train.csv", *digits.train)
    write_csv(tmp_path / "test.csv", digits.test[0])
    proc = handgrad("train", "--data", "train.csv", "--epochs", "5", "--out", "run", cwd=tmp_path)
    assert "data: train: 1151 train, 287 test, 10 classes, input shape (1, 8, 8)" in proc.stderr
    accuracy = float(proc.stdout.split("test accuracy: ")[1])
    assert accuracy > 0.8

    handgrad("predict", "--checkpoint", "run", "--images", "test.csv", "--submission", "sub.csv", "--quiet",
             cwd=tmp_path)
    rows = list(csv.reader(open(tmp_path / "sub.csv")))
    assert rows[0] == ["Id", "Category"] and [int(r[0]) for r in rows[1:]] == list(range(1, 360))
    predicted = np.array([int(r[1]) for r in rows[1:]])
    assert np.mean(predicted == digits.test[1]) > 0.8

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # the run recorded the file's absolute path
    proc = handgrad("evaluate", "--checkpoint", tmp_path / "run", "--quiet", cwd=elsewhere)
    assert f"accuracy: {accuracy:.4f}" in proc.stdout and "warning" not in proc.stderr
    with open(tmp_path / "train.csv", "a") as f:
        f.write("0," + ",".join(["0"] * 64) + "\n")
    proc = handgrad("evaluate", "--checkpoint", tmp_path / "run", "--quiet", cwd=elsewhere)
    assert "train.csv changed since the model was trained on it" in proc.stderr


def test_evaluate_predict_and_generate_say_what_cuda_needs(tmp_path):
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        return  # CuPy is installed here: nothing to refuse
    digits = load_dataset("digits")
    write_csv(tmp_path / "train.csv", *digits.train)
    handgrad("train", "--data", "train.csv", "--epochs", "1", "--quiet", "--out", "run", cwd=tmp_path)
    for args in (["evaluate", "--checkpoint", "run"], ["predict", "--checkpoint", "run", "--data", "train.csv",
                                                        "--out", "p.csv"]):
        proc = subprocess.run([sys.executable, "-m", "handgrad", *args, "--device", "cuda"], capture_output=True,
                              text=True, cwd=tmp_path, env=ENV, timeout=300)
        assert proc.returncode == 2 and "needs CuPy: pip install cupy-cuda12x" in proc.stderr, proc.stderr
    assert not (tmp_path / "p.csv").exists()


def test_a_warning_is_one_line_of_its_own(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "gaps.npz", x_train=rng.random((60, 4)).astype(np.float32), y_train=rng.choice([1, 3], 60))
    proc = handgrad("train", "--data", "gaps.npz", "--epochs", "1", "--quiet", "--out", "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warning = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert warning == ["handgrad: warning: gaps.npz: no sample has label 0, 2 of 0..3: 2 of the 4 "
                       "classes are empty (labels count from 0; renumber them to remove these)"], proc.stderr
