"""The 1,797 real 8x8 handwritten digits that ship with scikit-learn
(the UCI optical recognition test set), so they load without a network.

Pixels are integers 0..16, scaled to [0, 1]; images have shape (N, 1, 8, 8).
The test set is a stratified ``test_fraction`` of the samples chosen from
``seed``. scikit-learn is needed only for this data set (``pip install
"handgrad[cli]"``).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_default_dtype
from .datasets import Dataset, register_dataset
from .mnist import fashion_mnist_installed
from .transforms import train_val_split


@register_dataset("digits")
def load_digits(root=None, seed=0, test_fraction=0.2):
    """scikit-learn's 8x8 digits, split into train and a stratified test set."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError(
            'the "digits" data set needs scikit-learn: pip install "handgrad[cli]" (or pip install scikit-learn)'
        ) from None
    raw = sklearn_digits()
    X = np.divide(raw.images[:, None], 16.0).astype(get_default_dtype())
    y = raw.target.astype(np.int64)
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"data set 'digits': test_fraction must be a number in (0, 1), got {test_fraction!r}")
    train, test = train_val_split(X, y, test_fraction, seed=seed, stratify=True)
    return Dataset(name="digits", train=train, test=test, classes=[str(d) for d in range(10)], input_shape=(1, 8, 8))


def default_dataset() -> str:
    """The data set ``handgrad train`` uses when none is named: Fashion-MNIST
    when the Debian package is installed, else the offline 8x8 digits."""
    return "fashion-mnist" if fashion_mnist_installed() else "digits"
