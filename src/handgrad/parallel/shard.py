"""What a layer that looks beyond its own rows is told about a split batch.

Two kinds of layers cannot compute their rows alone:

* ``draws_random`` (Dropout, Dropout2d, RandomShiftFlip): the random numbers of
  the whole batch come from one draw of the global generator, a seed
  (``layer.draw_seed()``), and each process slices its rows of them. The caller
  draws the seeds of a batch, one per such layer in the order of
  ``named_modules()`` (the order in which a Sequential draws them when it runs
  in one process), and every process is given them: the generator is used as
  with one process, and the masks and shifts do not depend on the split.
* ``batch_statistics`` (BatchNorm1d/2d): the statistics are sums over the whole
  batch, which ``allreduce`` gathers: each process hands in its partial sums,
  the caller adds them in row order (the workers' slices, then its own) and
  every process gets the same total back.

During a split pass every such layer's ``shard`` attribute holds a
:class:`Shard`; with ``shard = None`` (the default) the layer has the whole
batch and draws its own seed.
"""
from __future__ import annotations

from typing import Callable, NamedTuple


class Shard(NamedTuple):
    start: int          # this process's rows are start, ..., stop - 1
    stop: int
    total: int          # rows in the whole batch
    seed: int | None    # the layer's seed for this batch (random layers)
    allreduce: Callable  # partial sums -> the sums over all processes, the same array in each


def split_layers(model):
    """The modules of ``model`` that need a :class:`Shard` in a split training pass."""
    return [m for _, m in model.named_modules() if m.draws_random or m.batch_statistics]


def draw_seeds(layers, training: bool):
    """One seed per layer for the coming batch, drawn as one process would draw them."""
    return [m.draw_seed() if training and m.draws_random else None for m in layers]


def set_shards(layers, bounds=None, seeds=None, allreduce=None) -> None:
    """Tell ``layers`` that this process holds rows ``bounds = (start, stop, total)``
    of the batch, with their ``seeds``; ``bounds = None``: take the shards away (the
    whole batch is here again)."""
    for k, m in enumerate(layers):
        shard = None if bounds is None else Shard(*bounds, seeds[k], allreduce)
        object.__setattr__(m, "shard", shard)
