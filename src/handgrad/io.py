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
import zlib
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
    missing, truncated, damaged, not an ``.npz`` archive or not a handgrad file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        if f.read(2) != b"PK":  # every zip archive starts so; np.load would try a pickle instead
            raise ValueError(f"{path}: not a readable handgrad .npz file (not an .npz archive; a model or checkpoint "
                             f"is the model.npz or checkpoint.npz of a run)")
    try:
        # errstate: a damaged shape overflows numpy's size computation, which would only warn
        with np.errstate(all="ignore"):
            archive = np.load(path, allow_pickle=False)  # a zip archive: an NpzFile
            with archive:
                arrays = {name: archive[name] for name in archive.files}
    # a damaged archive surfaces as any of these from zipfile, zlib and numpy's .npy parser (a flipped
    # bit in a header can declare encryption or an unknown compression, RuntimeError, or a huge shape)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, MemoryError) as exc:
        raise ValueError(f"{path}: not a readable handgrad .npz file ({exc})") from None
    raw = arrays.pop(METADATA_KEY, None)
    if raw is None:
        raise ValueError(f"{path}: not a handgrad file (no {METADATA_KEY} entry)")
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: corrupt metadata ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: not a handgrad file (metadata has no format={FORMAT!r})")
    return arrays, metadata


def save_model(path, model, metadata: dict) -> Path:
    """Save ``model.state_dict()`` with ``metadata``, which must name the zoo model
    (``"model"``) and may give its constructor arguments (``"model_kwargs"``)."""
    from .models import MODELS, revision

    if not isinstance(metadata, dict) or not isinstance(metadata.get("model"), str):
        raise ValueError(f"save_model({path}): metadata must be a dict with the zoo model name under 'model'")
    if metadata["model"] not in MODELS:  # load_model could not rebuild it: refuse now, not at loading
        raise ValueError(f"save_model({path}): 'model' must name a zoo model ({', '.join(sorted(MODELS))}), got "
                         f"{metadata['model']!r}; save a model of your own as its state_dict() "
                         f"(write_npz(path, model.state_dict(), {{}}); load_state_dict(read_npz(path)[0]))")
    meta = {"kind": "model", "model_kwargs": {}, **metadata, "model_revision": revision(metadata["model"])}
    return write_npz(path, model.state_dict(), meta)


def load_model(path):
    """Rebuild the model saved at ``path``: returns ``(model, metadata)``.

    Everything a user's file can get wrong is an error naming the file and the
    metadata key or tensor: metadata of the wrong type (:func:`check_metadata`),
    weights that are not float32/float64, hold NaN or inf, or do not fit the
    model (:func:`load_weights`).
    """
    arrays, metadata = read_npz(path)
    if metadata.get("kind") != "model":
        raise ValueError(f"{path}: holds a {metadata.get('kind', 'unknown')!r}, not a model")
    from .models import check_revision

    check_revision(path, metadata.get("model"), metadata.get("model_revision"))
    model = build_model(path, metadata.get("model"), metadata.get("model_kwargs", {}))
    load_weights(path, model, arrays, metadata["model"])
    check_metadata(path, metadata, model)
    return model, metadata


def build_model(path, name, kwargs, where: str = "metadata"):
    """``get_model(name, **kwargs)`` for the file at ``path``, whose ``where`` (its
    metadata, or a checkpoint's config) gave ``model`` and ``model_kwargs``."""
    from .models import MODELS, get_model

    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"{path}: {where} 'model' must name a zoo model ({', '.join(sorted(MODELS))}), "
                         f"got {_short(name)}")
    if not isinstance(kwargs, dict):
        raise ValueError(f"{path}: {where} 'model_kwargs' must be a JSON object of keyword arguments, "
                         f"got {_short(kwargs)}")
    try:
        return get_model(name, **kwargs)
    except (TypeError, ValueError, MemoryError) as exc:  # MemoryError: a width of 10**12, say
        raise ValueError(f"{path}: {where} 'model_kwargs' {_short(kwargs)} do not build a {name!r} model "
                         f"({str(exc) or type(exc).__name__})") from None


def load_weights(path, model, arrays: dict, model_name: str) -> None:
    """Load ``arrays`` (from the file at ``path``) into ``model`` (the zoo's
    ``model_name``) after checking each tensor: floating weights must be float32 or
    float64 (float64 is rounded to a float32 model's dtype, and must fit in its
    range) and finite, integer buffers integers. Nothing changes when a check fails."""
    for name, current in model.state_dict().items():
        if name not in arrays:
            continue  # load_state_dict names every missing key at once
        a, want = arrays[name], current.dtype
        if not isinstance(a, np.ndarray):
            raise ValueError(f"{path}: tensor {name!r} is a {type(a).__name__}, not an array")
        if want.kind == "f":
            if a.dtype not in (np.float32, np.float64):
                raise ValueError(f"{path}: tensor {name!r} has dtype {a.dtype}, expected float32 or float64")
            bad = ~np.isfinite(a)
            if bad.any():
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"{path}: tensor {name!r} has {int(bad.sum())} NaN/inf values of {a.size} "
                                 f"(the first at index {first})")
            if a.size and a.dtype.itemsize > want.itemsize and np.abs(a).max() > np.finfo(want).max:
                raise ValueError(f"{path}: tensor {name!r} has values beyond the {want} range of the model")
        elif a.dtype.kind not in "iu":
            raise ValueError(f"{path}: tensor {name!r} has dtype {a.dtype}, expected integers")
    try:
        model.load_state_dict(arrays)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: weights do not fit model {model_name!r}: "
                         f"{exc.args[0] if exc.args else exc}") from None


def check_metadata(path, metadata: dict, model) -> None:
    """The keys that predict, evaluate, export and generate read, when present, must
    have the right type: ``classes`` a list of names, one per model output;
    ``input_shape`` a list of positive sizes; ``data`` a data set name, ``seed`` an
    integer, ``data_kwargs`` an object, ``streams`` a positive integer."""
    def fail(key, expected):
        raise ValueError(f"{path}: metadata {key!r} must be {expected}, got {_short(metadata[key])}")

    def is_int(v, low):
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    get = metadata.get
    classes = get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            fail("classes", "a list of class names (strings)")
        width = _output_width(model)
        if width is not None and len(classes) != width:
            fail("classes", f"{width} class names, one per output of the model")
    shape = get("input_shape")
    if shape is not None and not (isinstance(shape, list) and shape and all(is_int(d, 1) for d in shape)):
        fail("input_shape", "a list of positive sizes of one sample, e.g. [1, 28, 28]")
    for key, ok, expected in (("data", lambda v: isinstance(v, str), "a data set name"),
                              ("seed", lambda v: is_int(v, 0), "an integer >= 0"),
                              ("data_kwargs", lambda v: isinstance(v, dict), "a JSON object of data set options"),
                              ("streams", lambda v: is_int(v, 1), "a positive integer")):
        if get(key) is not None and not ok(get(key)):
            fail(key, expected)


def _output_width(model):
    """Outputs per position of a zoo model: its last Linear layer's ``out_features``."""
    widths = [m.out_features for _, m in model.named_modules() if hasattr(m, "out_features")]
    return widths[-1] if widths else None


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


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


def unpack(tree, arrays: dict, source=None):
    """Invert :func:`pack`. A tree that :func:`pack` cannot have made (a damaged
    file) raises ``ValueError`` naming ``source``, the file it came from."""
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            name = tree["__array__"]
            if not isinstance(name, str) or name not in arrays:
                raise ValueError(f"{source}: damaged state: it refers to an array {_short(name)} the file does not hold")
            return arrays[name]
        if set(tree) == {"__items__"}:
            items = tree["__items__"]
            if not (isinstance(items, list) and all(isinstance(i, list) and len(i) == 2 for i in items)):
                raise ValueError(f"{source}: damaged state: '__items__' is not a list of [key, value] pairs")
            try:
                return {_key(k): unpack(v, arrays, source) for k, v in items}
            except TypeError:  # a key that is a dict, or a list holding one
                raise ValueError(f"{source}: damaged state: a key of '__items__' is not a number, "
                                 f"string or list") from None
        return {k: unpack(v, arrays, source) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unpack(v, arrays, source) for v in tree]
    return tree


def _key(k):
    return tuple(_key(i) for i in k) if isinstance(k, list) else k
