"""The data set registry: ``load_dataset(name)`` and ``register_dataset``.

A loader is a function ``loader(root, seed, **options) -> Dataset``
registered under a name::

    @register_dataset("synth")
    def load_synth(root, seed, n_samples=1000, noise=0.1): ...

``root`` is the cache directory (see :func:`handgrad.data.download.cache_dir`),
``seed`` fixes any random split or generation.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

DATASETS: dict = {}


@dataclass
class Dataset:
    """A classification data set split into train and test.

    ``train`` and ``test`` are ``(X, y)``: X float (default dtype) with shape
    ``(N, *input_shape)``, y int64 labels ``(N,)`` in ``[0, len(classes))``.
    For data sets without an official test split (synth, digits) ``test`` is
    a held-out split fixed by the seed.

    ``sequential=True`` says that each split is one long sequence cut into
    consecutive chunks: row m + 1 of X continues row m, and y is X shifted by one
    position (the next element), as in the ``text`` corpus. Training code may then
    split by position and read the split as streams (see
    :func:`handgrad.data.text.stream_ids` and :class:`handgrad.data.text.StreamLoader`).
    """

    name: str
    train: tuple
    test: tuple
    classes: list
    input_shape: tuple
    sequential: bool = False
    input_scale: float | None = None  # what raw inputs were multiplied by (1/255 for pixels), when known

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self):
        return (
            f"Dataset({self.name!r}, train={len(self.train[1])}, test={len(self.test[1])}, "
            f"input_shape={self.input_shape}, classes={len(self.classes)})"
        )


def register_dataset(name: str):
    """Decorator registering ``loader(root, seed, **options) -> Dataset`` under ``name``."""

    def decorate(loader):
        DATASETS[name] = loader
        return loader

    return decorate


def load_dataset(name: str, root=None, seed: int = 0, **options) -> Dataset:
    """Load the registered data set ``name`` (see ``DATASETS`` for the names).

    ``options`` are passed to the loader; an unknown name or option raises a
    ValueError listing what is known.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(sorted(DATASETS))}")
    loader = DATASETS[name]
    accepted = [p for p in inspect.signature(loader).parameters if p not in ("root", "seed")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"data set {name!r} has no option {', '.join(unknown)}; its options are: {', '.join(accepted) or 'none'}"
        )
    return check_dataset(loader(root=root, seed=seed, **options))


def check_dataset(ds: Dataset) -> Dataset:
    """Sanity-check what a loader built (shapes, dtypes, label range) and return it."""
    for split, (X, y) in (("train", ds.train), ("test", ds.test)):
        if X.shape[0] != y.shape[0] or X.shape[1:] != tuple(ds.input_shape):
            raise ValueError(f"data set {ds.name!r}: {split} X {X.shape} and y {y.shape} do not match input shape {ds.input_shape}")
        if y.dtype != np.int64 or (y.size and not 0 <= y.min() <= y.max() < len(ds.classes)):
            raise ValueError(f"data set {ds.name!r}: {split} labels must be int64 in [0, {len(ds.classes)})")
        if ds.sequential and not (np.array_equal(X[:, 1:], y[:, :-1]) and np.array_equal(X[1:, 0], y[:-1, -1])):
            raise ValueError(f"data set {ds.name!r} is sequential, but its {split} chunks do not continue each "
                             f"other (y must be X shifted by one, row after row)")
    return ds
