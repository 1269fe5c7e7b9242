import sys

import numpy as np
import pytest

from handgrad.data import DATASETS, DataLoader, Dataset, default_dataset, load_dataset, make_synth, register_dataset
from handgrad.data.digits import digits_arrays
from handgrad.data.mnist import FASHION_SYSTEM_DIR, fashion_mnist_installed


@pytest.fixture(scope="module")
def fashion():
    assert fashion_mnist_installed(), f"Fashion-MNIST files missing from {FASHION_SYSTEM_DIR} (Debian package dataset-fashion-mnist)"
    return load_dataset("fashion-mnist")


def test_fashion_mnist_from_the_debian_package(fashion):
    (X, y), (Xt, yt) = fashion.train, fashion.test
    assert X.shape == (60000, 1, 28, 28) and Xt.shape == (10000, 1, 28, 28)
    assert X.dtype == np.float32 and y.dtype == np.int64 and yt.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0 and Xt.min() == 0.0 and Xt.max() == 1.0
    # Fashion-MNIST is balanced: 6,000 train and 1,000 test images per class
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(yt), np.full(10, 1000))
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot"
    assert fashion.input_shape == (1, 28, 28) and fashion.num_classes == 10
    assert 0.28 < X.mean() < 0.29  # the published mean pixel of the training set is 0.2860


def test_default_dataset_is_fashion_mnist_when_installed(monkeypatch):
    assert default_dataset() == "fashion-mnist"
    monkeypatch.setattr("handgrad.data.digits.fashion_mnist_installed", lambda: False)
    assert default_dataset() == "digits"


def test_digits_are_the_real_8x8_digits_split_stratified():
    ds = load_dataset("digits", seed=3)
    (X, y), (Xt, yt) = ds.train, ds.test
    assert X.shape[1:] == (1, 8, 8) and len(X) + len(Xt) == 1797
    assert X.dtype == np.float32 and X.min() == 0.0 and X.max() == 1.0
    assert len(Xt) == pytest.approx(0.2 * 1797, abs=10)
    counts = np.bincount(yt, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # about 20% of ~180 per class
    again = load_dataset("digits", seed=3)
    np.testing.assert_array_equal(again.test[1], yt)
    assert not np.array_equal(load_dataset("digits", seed=4).test[0], Xt)


def test_digits_are_scikit_learns_arrays_exactly():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    images, labels = digits_arrays()
    reference = sklearn_datasets.load_digits()
    assert images.dtype == reference.images.dtype and labels.dtype == reference.target.dtype
    np.testing.assert_array_equal(images, reference.images)
    np.testing.assert_array_equal(labels, reference.target)


def test_digits_load_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    ds = load_dataset("digits")
    assert len(ds.train[0]) + len(ds.test[0]) == 1797


@pytest.mark.parametrize("shape", ["spirals", "moons"])
def test_synth_is_reproducible_from_the_seed(shape):
    a = load_dataset("synth", seed=5, shape=shape)
    b = load_dataset("synth", seed=5, shape=shape)
    c = load_dataset("synth", seed=6, shape=shape)
    np.testing.assert_array_equal(a.train[0], b.train[0])
    np.testing.assert_array_equal(a.test[1], b.test[1])
    assert not np.array_equal(a.train[0], c.train[0])
    X, y = a.train
    assert X.shape == (800, 2) and X.dtype == np.float32 and a.test[0].shape == (200, 2)
    np.testing.assert_array_equal(np.bincount(y), [400, 400])
    assert np.abs(X).max() < 3


def test_synth_classes_are_not_linearly_separable():
    X, y = make_synth(2000, noise=0.05, seed=0)
    # the best least-squares linear classifier stays far from perfect
    A = np.c_[X, np.ones(len(X))]
    w = np.linalg.lstsq(A, 2.0 * y - 1, rcond=None)[0]
    assert np.mean((A @ w > 0) == y) < 0.8


def test_synth_rejects_bad_options():
    with pytest.raises(ValueError, match="shape must be one of"):
        load_dataset("synth", shape="circles")
    with pytest.raises(ValueError, match="noise"):
        make_synth(noise=-1)


def test_unknown_name_lists_known_data_sets():
    with pytest.raises(ValueError, match="known data sets: .*digits.*fashion-mnist.*mnist.*synth"):
        load_dataset("cifar")


def test_unknown_option_lists_the_options():
    with pytest.raises(ValueError, match="no option batch.*n_samples, noise, shape, val_fraction"):
        load_dataset("synth", batch=3)


def test_register_dataset_adds_a_loader():
    @register_dataset("tiny-test")
    def load_tiny(root=None, seed=0, n=4):
        X = np.zeros((n, 3), dtype=np.float32)
        y = np.arange(n, dtype=np.int64) % 2
        return Dataset("tiny-test", (X, y), (X, y), ["a", "b"], (3,))

    try:
        ds = load_dataset("tiny-test", n=6)
        assert len(ds.train[0]) == 6 and "tiny-test" in repr(ds)
    finally:
        del DATASETS["tiny-test"]


def test_a_loader_returning_inconsistent_arrays_is_caught():
    @register_dataset("bad-test")
    def load_bad(root=None, seed=0):
        X = np.zeros((4, 3), dtype=np.float32)
        return Dataset("bad-test", (X, np.arange(4)), (X, np.arange(4)), ["a", "b"], (3,))

    try:
        with pytest.raises(ValueError, match="labels must be int64 in \\[0, 2\\)"):
            load_dataset("bad-test")
    finally:
        del DATASETS["bad-test"]


def test_a_small_mlp_learns_the_spirals():
    from handgrad import nn

    ds = load_dataset("synth", seed=0, noise=0.05)
    (X, y), (Xv, yv) = ds.train, ds.test
    model = nn.Sequential(nn.Linear(2, 64, rng=0), nn.ReLU(), nn.Linear(64, 64, rng=1), nn.ReLU(), nn.Linear(64, 2, rng=2))
    criterion = nn.CrossEntropyLoss()
    loader = DataLoader((X, y), 32, shuffle=True, seed=0)
    velocity = {id(p): np.zeros_like(p.data) for p in model.parameters()}
    for _ in range(60):
        for xb, yb in loader:
            model.zero_grad()
            criterion(model(xb), yb)
            model.backward(criterion.backward())
            for p in model.parameters():  # SGD with momentum 0.9
                v = velocity[id(p)]
                v *= 0.9
                v -= 0.05 * p.grad
                p.data += v
    model.eval()
    assert np.mean(model(Xv).argmax(1) == yv) > 0.95
