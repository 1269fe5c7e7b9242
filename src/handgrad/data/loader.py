"""Mini-batches over in-memory arrays, with exactly reproducible shuffling.

The order of epoch ``e`` depends only on ``(seed, e)``: it is
``numpy.random.default_rng([seed, e]).permutation(N)`` (or ``arange(N)``
without shuffling). Nothing else is random, so a loader's whole state is
three integers, ``{"seed", "epoch", "batch"}`` (see :meth:`DataLoader.state_dict`),
and a run killed in the middle of an epoch resumes with exactly the batches it
had not yet seen.
"""
from __future__ import annotations

import math

import numpy as np


class BatchSource:
    """What the Trainer and evaluation take besides ``(X, y)`` arrays: an iterable of
    ``(x, y)`` batches, one epoch per iteration, with

    * ``len(source)``: batches per epoch;
    * ``continues``: True when row r of each batch continues row r of the batch
      before (streams for truncated BPTT), so a :class:`~handgrad.nn.Stateful`
      model carries its state across batches; False for independent samples;
    * ``state_dict()`` / ``load_state_dict(state)``: the position to resume from.
    """

    continues = False

    def __iter__(self):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


class DataLoader(BatchSource):
    """Iterate over ``dataset = (X, y, ...)`` (equal-length arrays) in batches.

    Each iteration (``for xb, yb in loader``) runs one epoch: it yields tuples
    of batches, one per array, and then advances ``loader.epoch`` by one.
    A loop left early (``break``) is continued, not restarted, by the next
    iteration: it serves the remaining batches of the same epoch. Call
    ``set_epoch(e)`` to start epoch ``e`` from its first batch.
    ``len(loader)`` is the number of batches per epoch: ``ceil(N / batch_size)``,
    or ``floor(N / batch_size)`` with ``drop_last=True`` (the incomplete last
    batch is dropped).

    With ``shuffle=True`` each batch is one fancy-indexing copy of the rows
    chosen by the epoch's permutation; without shuffling batches are slices
    (views) of the arrays.

    ``seed=None`` draws a seed from the operating system once, at construction,
    so that ``state_dict()`` still describes the order exactly.

    ``continues = False``: batches are independent samples (compare
    :class:`handgrad.data.text.StreamLoader`, whose batches continue each other).
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = False, drop_last: bool = False, seed=None):
        if not isinstance(dataset, (tuple, list)) or not dataset:
            raise TypeError(f"DataLoader: dataset must be a non-empty tuple of arrays (X, y, ...), got {type(dataset).__name__}")
        arrays = tuple(dataset)
        for i, a in enumerate(arrays):
            if not hasattr(a, "shape"):  # a list would be indexed as a list: make the array explicitly
                raise TypeError(f"DataLoader: dataset[{i}] ({'X' if i == 0 else 'y' if i == 1 else 'array'}) must "
                                f"be an array (np.asarray(...)), got {type(a).__name__}")
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"DataLoader: arrays in the dataset must have the same length, got lengths {lengths}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size}")
        self.arrays = arrays
        self.num_samples = lengths[0]
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(np.random.SeedSequence().entropy % (1 << 63)) if seed is None else int(seed)
        self.epoch = 0
        self.batch = 0

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of epoch ``epoch``, in the order they are served."""
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def __iter__(self):
        order = self.order(self.epoch) if self.shuffle else None
        for b in range(self.batch, len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, self.num_samples)
            if order is None:
                batch = tuple(a[lo:hi] for a in self.arrays)
            else:
                idx = order[lo:hi]
                batch = tuple(a[idx] for a in self.arrays)
            self.batch = b + 1
            yield batch
        self.epoch += 1
        self.batch = 0

    def set_epoch(self, epoch: int) -> None:
        """Start the next iteration at the beginning of epoch ``epoch``."""
        self.epoch, self.batch = int(epoch), 0

    def state_dict(self) -> dict:
        """``{"seed", "epoch", "batch"}``: the next batch served is batch ``batch``
        of epoch ``epoch``. After the last batch of an epoch has been yielded
        and before the loop asks for more, ``batch == len(self)``: resuming from
        that state finishes the (empty) rest of epoch ``epoch`` and moves on."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        """Restore the position saved by :meth:`state_dict`."""
        missing = {"seed", "epoch", "batch"} - set(state)
        if missing:
            raise ValueError(f"DataLoader.load_state_dict: missing keys {sorted(missing)}")
        if not 0 <= int(state["batch"]) <= len(self):
            raise ValueError(f"DataLoader.load_state_dict: batch {state['batch']} out of range [0, {len(self)}]")
        self.seed, self.epoch, self.batch = int(state["seed"]), int(state["epoch"]), int(state["batch"])

    def __repr__(self):
        return (
            f"DataLoader(samples={self.num_samples}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, seed={self.seed}, epoch={self.epoch})"
        )
