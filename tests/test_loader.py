import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handgrad.data import DataLoader


def _ids(n):
    return np.arange(n, dtype=np.float32).reshape(n, 1) * [1, 1], np.arange(n)


@given(n=st.integers(1, 50), batch=st.integers(1, 20), shuffle=st.booleans(), seed=st.integers(0, 100))
def test_every_sample_exactly_once_per_epoch(n, batch, shuffle, seed):
    X, y = _ids(n)
    loader = DataLoader((X, y), batch, shuffle=shuffle, seed=seed)
    assert len(loader) == -(-n // batch)
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader)
        seen = np.concatenate([yb for _, yb in batches])
        assert sorted(seen) == list(range(n))
        for xb, yb in batches:
            np.testing.assert_array_equal(xb[:, 0], yb)  # rows stay paired
            assert len(yb) <= batch
    assert loader.epoch == 2


@given(n=st.integers(1, 50), batch=st.integers(1, 20))
def test_drop_last(n, batch):
    X, y = _ids(n)
    loader = DataLoader((X, y), batch, shuffle=True, drop_last=True, seed=0)
    assert len(loader) == n // batch
    sizes = [len(yb) for _, yb in loader]
    assert sizes == [batch] * (n // batch)


def test_unshuffled_order_and_shuffled_epochs_differ():
    X, y = _ids(20)
    plain = DataLoader((X, y), 6)
    assert [list(yb) for _, yb in plain] == [list(range(0, 6)), list(range(6, 12)), list(range(12, 18)), [18, 19]]
    loader = DataLoader((X, y), 20, shuffle=True, seed=1)
    first, second = next(iter(loader))[1], None
    loader.set_epoch(1)
    second = next(iter(loader))[1]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, np.random.default_rng([1, 0]).permutation(20))


def test_same_seed_same_batches():
    X, y = _ids(37)
    a = [yb for _ in range(3) for _, yb in DataLoader((X, y), 5, shuffle=True, seed=9)]
    b = [yb for _ in range(3) for _, yb in DataLoader((X, y), 5, shuffle=True, seed=9)]
    c = [yb for _, yb in DataLoader((X, y), 5, shuffle=True, seed=10)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c))


def test_state_restore_continues_the_same_order_mid_epoch():
    X, y = _ids(50)
    reference = DataLoader((X, y), 8, shuffle=True, seed=4)
    expected = [yb for _ in range(3) for _, yb in reference]

    killed = DataLoader((X, y), 8, shuffle=True, seed=4)
    got = [yb for _, yb in killed]  # epoch 0
    for i, (_, yb) in enumerate(killed):  # epoch 1, stopped after 3 batches
        got.append(yb)
        if i == 2:
            break
    state = killed.state_dict()
    assert state == {"seed": 4, "epoch": 1, "batch": 3}

    resumed = DataLoader((X, y), 8, shuffle=True, seed=None)
    resumed.load_state_dict(state)
    got += [yb for _, yb in resumed]  # rest of epoch 1
    assert resumed.epoch == 2
    got += [yb for _, yb in resumed]  # epoch 2
    assert len(got) == len(expected)
    for p, q in zip(got, expected):
        np.testing.assert_array_equal(p, q)


def test_seed_none_still_records_a_seed():
    X, y = _ids(10)
    a = DataLoader((X, y), 3, shuffle=True)
    b = DataLoader((X, y), 3, shuffle=True, seed=0)
    b.load_state_dict(a.state_dict())
    assert all(np.array_equal(p[1], q[1]) for p, q in zip(a, b))


def test_any_number_of_arrays():
    a, b, c = np.arange(7), np.arange(7) * 2, np.arange(14).reshape(7, 2)
    batches = list(DataLoader((a, b, c), 4, shuffle=True, seed=0))
    for xa, xb, xc in batches:
        np.testing.assert_array_equal(xb, 2 * xa)
        np.testing.assert_array_equal(xc[:, 0], 2 * xa)


def test_bad_arguments():
    with pytest.raises(ValueError, match="same length"):
        DataLoader((np.zeros(3), np.zeros(4)), 2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader((np.zeros(3),), 0)
    with pytest.raises(TypeError, match="tuple of arrays"):
        DataLoader(np.zeros(3), 2)
    loader = DataLoader((np.zeros(3),), 2)
    with pytest.raises(ValueError, match="missing keys"):
        loader.load_state_dict({"seed": 1})
    with pytest.raises(ValueError, match="out of range"):
        loader.load_state_dict({"seed": 1, "epoch": 0, "batch": 5})
