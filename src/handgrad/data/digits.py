"""The 1,797 real 8x8 handwritten digits, shipped inside the package, so
``handgrad train`` runs offline with nothing but NumPy.

Source: the test set (``optdigits.tes``) of the UCI Optical Recognition of
Handwritten Digits data set, E. Alpaydin and C. Kaynak, 1998,
https://doi.org/10.24432/C50P49, licensed CC BY 4.0. ``digits.npz`` beside this
file holds it as ``images`` (1797, 8, 8) uint8 pixel counts 0..16 and
``labels`` (1797,) int8, written once from scikit-learn's copy:

    d = sklearn.datasets.load_digits()
    numpy.savez_compressed("digits.npz", images=d.images.astype(numpy.uint8),
                           labels=d.target.astype(numpy.int8))

so the arrays equal ``load_digits().images`` and ``.target`` exactly.

Pixels are scaled to [0, 1]; images have shape (N, 1, 8, 8). The test set is
a stratified ``test_fraction`` of the samples chosen from ``seed``.
"""
from __future__ import annotations

from importlib import resources

import numpy as np

from ..backend import get_default_dtype
from .datasets import Dataset, register_dataset
from .mnist import fashion_mnist_installed
from .transforms import train_val_split


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The raw data set: images (1797, 8, 8) as float64 pixel counts 0..16 and
    labels (1797,) int64, as ``sklearn.datasets.load_digits()`` gives them."""
    with resources.files(__package__).joinpath("digits.npz").open("rb") as f, np.load(f) as stored:
        return stored["images"].astype(np.float64), stored["labels"].astype(np.int64)


@register_dataset("digits")
def load_digits(root=None, seed=0, test_fraction=0.2):
    """The 8x8 digits, split into train and a stratified test set."""
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"data set 'digits': test_fraction must be a number in (0, 1), got {test_fraction!r}")
    images, labels = digits_arrays()
    X = np.divide(images[:, None], 16.0).astype(get_default_dtype())
    train, test = train_val_split(X, labels, test_fraction, seed=seed, stratify=True)
    return Dataset(name="digits", train=train, test=test, classes=[str(d) for d in range(10)], input_shape=(1, 8, 8))


def default_dataset() -> str:
    """The data set ``handgrad train`` uses when none is named: Fashion-MNIST
    when the Debian package is installed, else the offline 8x8 digits."""
    return "fashion-mnist" if fashion_mnist_installed() else "digits"
