"""Saving and loading models: ``.npz`` arrays plus JSON metadata, never pickle.

A handgrad file is one ``.npz`` archive. Its arrays are the model's
``state_dict()`` (PyTorch-style dotted names); one extra entry, ``__metadata__``,
holds a UTF-8 JSON document as a uint8 array. For a model the metadata names the
zoo model and its constructor arguments, so :func:`load_model` can rebuild it::

    save_model("mlp.npz", model, {"model": "mlp", "model_kwargs": {"hidden": [100]}})
    model, metadata = load_model("mlp.npz")

Files are written to a temporary file in the same folder and moved into place
with ``os.replace``, so a reader (or a crash) never sees half a file. Loading
uses ``np.load(..., allow_pickle=False)``: a file cannot run code.

:func:`pack` / :func:`unpack` turn nested states (dicts, lists, arrays, numbers:
what optimizers and data loaders return from ``state_dict()``) into a JSON tree
plus a flat dict of arrays and back; checkpoints are built on them.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_file
from .backend import array_module, to_numpy

METADATA_KEY = "__metadata__"
FORMAT = "handgrad"
FORMAT_VERSION = 1


def write_npz(path, arrays: dict, metadata: dict) -> Path:
    """Atomically write ``arrays`` (name -> array) and JSON ``metadata`` to ``path``."""
    path = Path(path)
    if METADATA_KEY in arrays:
        raise ValueError(f"{path}: the array name {METADATA_KEY!r} is reserved")
    document = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, **metadata})
    payload = {name: to_numpy(a) for name, a in arrays.items()}
    payload[METADATA_KEY] = np.frombuffer(document.encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as f:
        np.savez(f, **payload)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_npz(path) -> tuple[dict, dict]:
    """Read a file written by :func:`write_npz`: returns ``(arrays, metadata)``.

    Raises ``FileNotFoundError`` or ``ValueError`` naming the file when it is
    missing, truncated, not an ``.npz`` archive or not a handgrad file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{path}: not a readable handgrad .npz file ({exc})") from None
    raw = arrays.pop(METADATA_KEY, None)
    if raw is None:
        raise ValueError(f"{path}: not a handgrad file (no {METADATA_KEY} entry)")
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: corrupt metadata ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: not a handgrad file (metadata has no format={FORMAT!r})")
    return arrays, metadata


def save_model(path, model, metadata: dict) -> Path:
    """Save ``model.state_dict()`` with ``metadata``, which must name the zoo model
    (``"model"``) and may give its constructor arguments (``"model_kwargs"``)."""
    if not isinstance(metadata, dict) or not isinstance(metadata.get("model"), str):
        raise ValueError(f"save_model({path}): metadata must be a dict with the zoo model name under 'model'")
    meta = {"kind": "model", "model_kwargs": {}, **metadata}
    return write_npz(path, model.state_dict(), meta)


def load_model(path):
    """Rebuild the model saved at ``path``: returns ``(model, metadata)``."""
    from .models import get_model

    arrays, metadata = read_npz(path)
    if metadata.get("kind") != "model":
        raise ValueError(f"{path}: holds a {metadata.get('kind', 'unknown')!r}, not a model")
    try:
        model = get_model(metadata["model"], **metadata["model_kwargs"])
    except KeyError as exc:
        raise ValueError(f"{path}: cannot rebuild the model: {exc.args[0] if exc.args else exc}") from None
    try:
        model.load_state_dict(arrays)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: weights do not fit model {metadata['model']!r}: "
                         f"{exc.args[0] if exc.args else exc}") from None
    return model, metadata


def pack(state, arrays: dict, prefix: str = ""):
    """Return a JSON-able copy of the nested ``state`` in which every array is
    replaced by ``{"__array__": name}`` and stored in ``arrays[name]``."""
    if isinstance(state, np.ndarray) or array_module(state) is not np:
        arrays[prefix] = to_numpy(state)
        return {"__array__": prefix}
    if isinstance(state, np.generic):
        return state.item()
    if isinstance(state, dict):
        items = [[k, pack(v, arrays, f"{prefix}/{k}")] for k, v in state.items()]
        if all(isinstance(k, str) and k != "__array__" for k in state):
            return dict(items)
        return {"__items__": items}
    if isinstance(state, (list, tuple)):
        return [pack(v, arrays, f"{prefix}/{i}") for i, v in enumerate(state)]
    if state is None or isinstance(state, (bool, int, float, str)):
        return state
    raise TypeError(f"cannot save a {type(state).__name__} at {prefix!r}: only arrays, numbers, "
                    f"strings, lists and dicts")


def unpack(tree, arrays: dict):
    """Invert :func:`pack`."""
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return arrays[tree["__array__"]]
        if set(tree) == {"__items__"}:
            return {_key(k): unpack(v, arrays) for k, v in tree["__items__"]}
        return {k: unpack(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unpack(v, arrays) for v in tree]
    return tree


def _key(k):
    return tuple(k) if isinstance(k, list) else k
