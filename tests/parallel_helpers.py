"""What the data-parallel tests share: small batches split anyway, float64, and
random image and text batches."""
import pytest

import handgrad


@pytest.fixture(autouse=True)
def split_small_batches(monkeypatch):
    """The tests' batches are small: split them anyway (in use, they would run in-process)."""
    monkeypatch.setattr("handgrad.parallel.wrapper.MIN_ROWS", 1)


@pytest.fixture
def float64():
    handgrad.set_default_dtype("float64")
    yield
    handgrad.set_default_dtype("float32")


def image_batch(n, rng):
    return rng.random((n, 1, 28, 28)), rng.integers(0, 10, n)


def text_batch(n, rng):
    return rng.integers(0, 65, (n, 9)), rng.integers(0, 65, (n, 9))
