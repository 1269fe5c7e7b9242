import numpy as np
import pytest

from handgrad.data import mean_std, one_hot, standardize, subset, train_val_split


def _data(n=100, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)).astype(np.float32), rng.integers(0, classes, n)


@pytest.mark.parametrize("stratify", [False, True])
def test_train_val_split_partitions_and_is_reproducible(stratify):
    X, y = _data()
    X[:, 0] = np.arange(len(X))  # sample ids
    (Xtr, ytr), (Xva, yva) = train_val_split(X, y, 0.25, seed=1, stratify=stratify)
    ids = np.concatenate([Xtr[:, 0], Xva[:, 0]])
    assert sorted(ids) == list(range(100))
    assert abs(len(Xva) - 25) <= 2
    np.testing.assert_array_equal(y[Xva[:, 0].astype(int)], yva)
    assert np.all(np.diff(Xva[:, 0]) > 0)  # original order kept
    (_, _), (Xva2, _) = train_val_split(X, y, 0.25, seed=1, stratify=stratify)
    np.testing.assert_array_equal(Xva, Xva2)
    (_, _), (Xva3, _) = train_val_split(X, y, 0.25, seed=2, stratify=stratify)
    assert not np.array_equal(Xva, Xva3)


def test_stratified_split_keeps_class_proportions():
    y = np.repeat(np.arange(3), [60, 30, 10])
    X = np.zeros((100, 1))
    (_, ytr), (_, yva) = train_val_split(X, y, 0.2, seed=0, stratify=True)
    np.testing.assert_array_equal(np.bincount(yva), [12, 6, 2])
    np.testing.assert_array_equal(np.bincount(ytr), [48, 24, 8])


def test_split_errors():
    X, y = _data()
    with pytest.raises(ValueError, match="val_fraction must be in"):
        train_val_split(X, y, 1.0)
    with pytest.raises(ValueError, match="same length"):
        train_val_split(X, y[:-1], 0.5)
    with pytest.raises(ValueError, match="empty"):
        train_val_split(X[:2], y[:2], 0.01)


def test_subset():
    X, y = _data()
    Xs, ys = subset(X, y, 0.1, seed=3)
    assert len(Xs) == 10 and len(ys) == 10
    rows = [np.flatnonzero((X == r).all(axis=1))[0] for r in Xs]
    assert rows == sorted(rows)
    np.testing.assert_array_equal(subset(X, y, 0.1, seed=3)[0], Xs)
    assert len(subset(X, y, 0.001)[0]) == 1
    with pytest.raises(ValueError, match="fraction must be in"):
        subset(X, y, 0)


def test_one_hot():
    out = one_hot(np.array([[0, 2], [1, 1]]), 3)
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out.argmax(-1), [[0, 2], [1, 1]])
    np.testing.assert_array_equal(out.sum(-1), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        one_hot(np.array([3]), 3)
    with pytest.raises(ValueError, match="integers"):
        one_hot(np.array([0.5]), 3)


def test_standardize_images_per_channel_and_features():
    rng = np.random.default_rng(0)
    images = (rng.random((50, 3, 4, 4)) * np.array([1, 5, 9])[None, :, None, None] + 2).astype(np.float32)
    mean, std = mean_std(images)
    assert mean.shape == (1, 3, 1, 1) and mean.dtype == np.float32
    z = standardize(images, mean, std)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-5)
    feats = np.c_[rng.standard_normal(40) * 3, np.full(40, 7.0)]
    mean, std = mean_std(feats)
    assert mean.shape == (1, 2)
    z = standardize(feats, mean, std)
    np.testing.assert_allclose(z[:, 1], 0)  # a constant feature is centred, not divided by 0
    np.testing.assert_allclose(z[:, 0].std(), 1)
