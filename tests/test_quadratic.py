"""The quadratic-rule data set (``load_dataset("quadratic")``), the 2-3-2 sigmoid network
that learns it (experiments/quadratic.py) and ``plots.plot_decision_boundary``."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from handgrad import plots
from handgrad.data import load_dataset
from handgrad.data.synth import make_quadratic

EXPERIMENT = Path(__file__).parent.parent / "experiments" / "quadratic.py"


def rule(X):
    """The assignment's labels written out: x1^2 + (0.5 + 1) x1 x2 + 0.2 x2^2 > 0.6, in float64."""
    x1, x2 = np.asarray(X, dtype=np.float64).T
    return (x1 * x1 + 1.5 * x1 * x2 + 0.2 * x2 * x2 > 0.6).astype(np.int64)


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("quadratic", seed=3)


def test_sizes_and_labels_follow_the_rule_for_every_point(dataset):
    (X, y), (Xt, yt) = dataset.train, dataset.test
    assert X.shape == (60000, 2) and Xt.shape == (10000, 2) and dataset.num_classes == 2
    assert y.dtype == np.int64 and X.dtype == np.float32
    np.testing.assert_array_equal(y, rule(X))
    np.testing.assert_array_equal(yt, rule(Xt))


def test_reproducible_from_the_seed(dataset):
    again, other = load_dataset("quadratic", seed=3), load_dataset("quadratic", seed=4)
    np.testing.assert_array_equal(again.train[0], dataset.train[0])
    np.testing.assert_array_equal(again.test[0], dataset.test[0])
    assert not np.array_equal(other.train[0], dataset.train[0])
    # train and test are different draws, not copies of each other
    assert not np.array_equal(dataset.train[0][:10000], dataset.test[0])


def test_inputs_are_standard_normal_and_class_balance_matches_the_rule(dataset):
    X = np.concatenate([dataset.train[0], dataset.test[0]])
    y = np.concatenate([dataset.train[1], dataset.test[1]])
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=0.02)
    np.testing.assert_allclose(np.cov(X.T), np.eye(2), atol=0.02)
    # P(x'Qx > 0.6) by Monte Carlo on an independent sample (about 0.4554); 70,000 labels
    # have a standard error of 0.0019 around it
    expected = rule(np.random.default_rng(12345).standard_normal((2_000_000, 2))).mean()
    assert abs(y.mean() - expected) < 0.008, (y.mean(), expected)
    assert 0.44 < expected < 0.47


def test_make_quadratic_rejects_no_samples():
    with pytest.raises(ValueError, match="quadratic: n_samples must be at least 1"):
        make_quadratic(0)


def test_two_three_two_sigmoid_network_learns_by_per_sample_sgd(tmp_path):
    """A smoke-sized run of the experiment (2,700 single-sample steps): well above the majority class."""
    done = subprocess.run([sys.executable, str(EXPERIMENT), "--out", str(tmp_path / "run"), "--epochs", "1",
                           "--data-fraction", "0.05"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    accuracy, majority = map(float, re.search(r"test accuracy ([\d.]+) \(majority class ([\d.]+)\)", done.stdout).groups())
    assert majority < 0.56 and accuracy > 0.85, done.stdout
    for name in ("loss.png", "decision_boundary.png", "model.npz", "config.json"):
        assert (tmp_path / "run" / name).is_file(), name
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["batch_size"] == 1 and config["momentum"] == 0 and config["optimizer"] == "sgd"
    assert config["model_kwargs"]["hidden"] == [3] and config["model_kwargs"]["activation"] == "sigmoid"


def test_decision_boundary_plot_shades_the_predicted_classes(tmp_path):
    X = np.random.default_rng(0).standard_normal((300, 2))
    y = (X[:, 0] > 0).astype(int)
    fig = plots.plot_decision_boundary(lambda P: (P[:, 0] > 0).astype(int), X, y,
                                       boundary=lambda a, b: a, path=tmp_path / "db.png")
    assert (tmp_path / "db.png").is_file()
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1", "true boundary"]
    with pytest.raises(ValueError, match=r"plot_decision_boundary: X must be points \(N, 2\)"):
        plots.plot_decision_boundary(lambda P: P[:, 0], np.zeros((4, 3)), np.zeros(4))
