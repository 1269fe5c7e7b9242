"""Damaged files, fuzzed: the IDX reader, the model loader and the checkpoint loader
get truncated files, flipped bits, overwritten bytes and values of the wrong type
(in the metadata and in the arrays). Each either loads or raises one of the
project's clear errors, a ValueError or OSError whose message names the file;
never another exception type.

HANDGRAD_FUZZ_EXAMPLES sets the examples per fuzzer (200 by default; a few
thousand for a thorough local run).
"""
import io
import json
import os
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handgrad import models
from handgrad.data.idx import read_idx, write_idx
from handgrad.io import load_model, read_npz, save_model
from handgrad.train.checkpoint import load_checkpoint, save_checkpoint
from handgrad.train.restore import load_trained

fuzz = settings(max_examples=int(os.environ.get("HANDGRAD_FUZZ_EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KWARGS = {"in_features": 3, "hidden": [4], "out_features": 2}
METADATA = {"model": "mlp", "model_kwargs": KWARGS, "data": "synth", "classes": ["a", "b"], "input_shape": [3],
            "seed": 0, "data_kwargs": {}, "streams": None}
CONFIG = {"model": "mlp", "model_kwargs": KWARGS, "data": "synth", "seed": 0, "data_kwargs": {}, "batch_size": 4}
DTYPES = ["int8", "uint8", "int64", "bool", "float16", "float32", "float64", "complex64", "U3", "S2", "V4",
          [("a", "<f4"), ("b", "<i2")], ">f4", ">f8"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 40) | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The undamaged files' bytes, and a scratch path for the damaged copies."""
    root = tmp_path_factory.mktemp("fuzz")
    model = models.get_model("mlp", **KWARGS, rng=0)
    save_model(root / "model.npz", model, METADATA)
    state = {"config": CONFIG, "model": model.state_dict(), "step": 3,
             "optimizer": {"lr": 0.1, "state": [{"m": np.ones(4, np.float32)}]}, "seen": {(1, 2): 3}}
    save_checkpoint(root / "checkpoint.npz", state)
    write_idx(root / "images.idx", np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))
    write_idx(root / "labels.idx.gz", np.arange(5, dtype=np.int32))
    return {name: (root / name).read_bytes() for name in
            ("model.npz", "checkpoint.npz", "images.idx", "labels.idx.gz")}, root


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """``data`` truncated, with bits flipped, or with a run of bytes overwritten
    (often in the first 64 bytes, where the headers are)."""
    how = draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    out = bytearray(data)
    position = st.integers(0, min(63, len(data) - 1)) | st.integers(0, len(data) - 1)
    if how == "flip":
        for i in draw(st.lists(position, min_size=1, max_size=8)):
            out[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    start = draw(position)
    patch = draw(st.binary(min_size=1, max_size=8))
    out[start:start + len(patch)] = patch
    return bytes(out[:len(data)])


def retyped_array(draw, a: np.ndarray) -> np.ndarray:
    how = draw(st.sampled_from(["dtype", "shape", "scalar", "empty"]))
    if how == "dtype":
        with np.errstate(all="ignore"):
            return a.astype(np.dtype(draw(st.sampled_from(DTYPES))))
    if how == "shape":
        return a.reshape(-1) if a.ndim != 1 else a[:, None]
    if how == "scalar":
        return np.array(draw(st.floats() | st.integers(-5, 5)))
    return a[:0]


def _nodes(tree, path=()):
    """Every (path, value) of a JSON tree."""
    yield path, tree
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        yield from _nodes(value, (*path, key))


def _replace(tree, path, value):
    if not path:
        return value
    tree[path[0]] = _replace(tree[path[0]], path[1:], value)
    return tree


@st.composite
def retyped_npz(draw, data: bytes) -> bytes:
    """The handgrad file ``data`` rewritten with one metadata value or one array of
    another type, shape or dtype (files that write_npz would never produce)."""
    with np.load(io.BytesIO(data)) as archive:
        arrays = {name: archive[name] for name in archive.files}
    metadata = json.loads(arrays["__metadata__"].tobytes())
    names = sorted(k for k in arrays if k != "__metadata__")
    if draw(st.booleans()):
        paths = [p for p, _ in _nodes(metadata) if p]
        metadata = _replace(metadata, draw(st.sampled_from(paths)), draw(json_values))
    else:
        name = draw(st.sampled_from(names))
        arrays[name] = retyped_array(draw, arrays[name])
    arrays["__metadata__"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def assert_loads_or_clear_error(load, path):
    """``load(path)`` returns, or raises ValueError/OSError naming ``path``; any other
    exception type propagates and fails the test."""
    try:
        load(path)
    except (ValueError, OSError) as exc:
        assert str(path) in str(exc), f"{type(exc).__name__} does not name the file: {exc}"


def _write(root, name, data):
    path = root / f"damaged-{name}"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["images.idx", "labels.idx.gz"])
@fuzz
@given(st.data())
def test_idx_reader(base, name, data):
    files, root = base
    path = _write(root, name, data.draw(damaged(files[name])))
    assert_loads_or_clear_error(read_idx, path)


@pytest.mark.parametrize("load", [load_model, load_trained], ids=["load_model", "load_trained"])
@fuzz
@given(st.data())
def test_model_loader_damaged_bytes(base, load, data):
    files, root = base
    path = _write(root, "model.npz", data.draw(damaged(files["model.npz"])))
    assert_loads_or_clear_error(load, path)


@pytest.mark.parametrize("load", [load_model, load_trained], ids=["load_model", "load_trained"])
@fuzz
@given(st.data())
def test_model_loader_wrong_types(base, load, data):
    files, root = base
    path = _write(root, "model.npz", data.draw(retyped_npz(files["model.npz"])))
    assert_loads_or_clear_error(load, path)


@pytest.mark.parametrize("load", [load_checkpoint, load_trained], ids=["load_checkpoint", "load_trained"])
@fuzz
@given(st.data())
def test_checkpoint_loader(base, load, data):
    files, root = base
    original = files["checkpoint.npz"]
    damage = data.draw(st.sampled_from([damaged, retyped_npz]))
    path = _write(root, "checkpoint.npz", data.draw(damage(original)))
    assert_loads_or_clear_error(load, path)


def test_undamaged_files_load(base):
    files, root = base
    assert read_idx(root / "images.idx").shape == (2, 3, 4)
    model, metadata = load_model(root / "model.npz")
    assert metadata["classes"] == ["a", "b"]
    state = load_checkpoint(root / "checkpoint.npz")
    assert state["seen"] == {(1, 2): 3} and state["step"] == 3
    assert load_trained(root / "checkpoint.npz")[1]["model_kwargs"] == KWARGS
    assert read_npz(root / "model.npz")[1]["model"] == "mlp"


def _central(raw: bytearray, offset: int, value: int) -> bytearray:
    """Set one byte of the first central-directory entry of a zip archive."""
    raw[raw.find(b"PK\x01\x02") + offset] = value
    return raw


def _huge_shape(raw: bytearray) -> bytes:
    """The archive rewritten (with valid checksums) so that its first array's header
    declares the shape (4, 99999999999) instead of (4, 3)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            member = src.read(name)
            if name == "1.weight.npy":
                member = member.replace(b"(4, 3), }" + b" " * 10, b"(4, 99999999999), }", 1)
            dst.writestr(name, member)
    return out.getvalue()


# each damage, found by the fuzzers, reaches read_npz as another exception type
DAMAGES = {
    "encrypted flag (RuntimeError)": lambda raw: _central(raw, 8, 1),
    "unknown compression (NotImplementedError)": lambda raw: _central(raw, 10, 9),
    "bzip2 on stored data (OSError)": lambda raw: _central(raw, 10, 12),
    "deflate on stored data (zlib.error)": lambda raw: _central(raw, 10, 8).replace(b"\x93NUMPY", b"\x07NUMPY", 1),
    "a shape of 1.5 TB (MemoryError)": _huge_shape,
    "an empty file (EOFError)": lambda raw: b"",
    "a single .npy array": None,
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_each_kind_of_damage_is_a_clear_error(base, damage):
    files, root = base
    if damage is None:
        path = root / "single.npz"
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    else:
        path = _write(root, "model.npz", bytes(damage(bytearray(files["model.npz"]))))
    with pytest.raises(ValueError, match="not a readable handgrad .npz file") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_metadata_nested_too_deep_for_json(base):
    files, root = base
    path = root / "deep.npz"
    with open(path, "wb") as f:
        np.savez(f, __metadata__=np.frombuffer(b"[" * 100000 + b"]" * 100000, dtype=np.uint8))
    with pytest.raises(ValueError, match="corrupt metadata") as info:
        load_model(path)
    assert str(path) in str(info.value)
