"""Checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is a handgrad ``.npz`` file (see :mod:`handgrad.io`): the arrays of
the model, the optimizer, the best model so far, and in its JSON metadata the
rest — schedule state, the data loader's state, the bit-generator state of the
global handgrad RNG (which dropout draws from), the history and the counters.
It is written atomically, so a run killed at any moment leaves either the
previous checkpoint or the new one, never a torn file.
"""
from __future__ import annotations

from pathlib import Path

from .. import backend
from ..io import pack, read_npz, unpack, write_npz

FILENAME = "checkpoint.npz"


def save_checkpoint(path, state: dict) -> Path:
    """Atomically write the nested ``state`` (dicts, lists, arrays, numbers) to ``path``."""
    arrays: dict = {}
    tree = pack(state, arrays)
    return write_npz(path, arrays, {"kind": "checkpoint", "state": tree})


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; errors name the file."""
    arrays, metadata = read_npz(path)
    if metadata.get("kind") != "checkpoint":
        raise ValueError(f"{path}: holds a {metadata.get('kind', 'unknown')!r}, not a checkpoint")
    state = unpack(metadata.get("state"), arrays, source=path)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: damaged checkpoint: its state is not a JSON object")
    return state


def rng_state() -> dict:
    """The bit-generator state of the global handgrad generator (a JSON-able dict)."""
    return backend.get_rng().bit_generator.state


def set_rng_state(state: dict) -> None:
    """Put the global handgrad generator back into ``state`` (from :func:`rng_state`)."""
    backend.get_rng().bit_generator.state = state
