import json

import numpy as np
import pytest

from handgrad import models
from handgrad.io import load_model, pack, read_npz, save_model, unpack, write_npz
from handgrad.train import load_checkpoint, save_checkpoint


def test_write_read_round_trip(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b/c": np.array([1, 2], dtype=np.int64)}
    write_npz(tmp_path / "f.npz", arrays, {"kind": "x", "note": "hello"})
    got, meta = read_npz(tmp_path / "f.npz")
    assert meta["note"] == "hello" and meta["format"] == "handgrad"
    assert got.keys() == arrays.keys()
    for k in arrays:
        assert got[k].dtype == arrays[k].dtype and np.array_equal(got[k], arrays[k])
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]  # no temporary file left behind


def test_pack_unpack_nested_state():
    state = {"type": "Adam", "hyper": {"lr": 0.1, "betas": [0.9, 0.999]}, "step": np.int64(3),
             "buffers": {"0.exp_avg": np.ones(3)}, "by_index": {0: np.zeros(2), 1: None},
             "rng": np.random.default_rng(5).bit_generator.state}
    arrays = {}
    tree = pack(state, arrays)
    tree = json.loads(json.dumps(tree))
    back = unpack(tree, arrays)
    assert back["hyper"] == state["hyper"] and back["step"] == 3 and back["rng"] == state["rng"]
    assert np.array_equal(back["buffers"]["0.exp_avg"], np.ones(3))
    assert set(back["by_index"]) == {0, 1} and back["by_index"][1] is None


def test_pack_refuses_arbitrary_objects():
    with pytest.raises(TypeError, match="cannot save a object at '/x'"):
        pack({"x": object()}, {})


def test_save_load_model_round_trip(tmp_path):
    model = models.get_model("mlp", in_features=12, hidden=[7], out_features=3)
    save_model(tmp_path / "m.npz", model, {"model": "mlp", "model_kwargs": {"in_features": 12, "hidden": [7],
                                                                          "out_features": 3}, "data": "toy"})
    loaded, meta = load_model(tmp_path / "m.npz")
    assert meta["data"] == "toy"
    x = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32)
    assert np.array_equal(loaded(x), model(x))
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert np.array_equal(a, b), k


def test_save_model_needs_the_zoo_name(tmp_path):
    model = models.get_model("mlp", in_features=4, hidden=[2], out_features=2)
    with pytest.raises(ValueError, match="zoo model name"):
        save_model(tmp_path / "m.npz", model, {"model_kwargs": {}})


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable handgrad .npz file"),
    (b"PK\x03\x04 truncated zip", "not a readable handgrad .npz file"),
    (b"\x93NUMPY garbage", "not a readable handgrad .npz file"),
    (b"[run]\nlr = 0.1\n", r"not an .npz archive; a model or checkpoint is"),  # a text file, not a pickle
])
def test_corrupt_files_are_named(tmp_path, content, message):
    path = tmp_path / "broken.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_truncated_model_file_is_named(tmp_path):
    model = models.get_model("mlp", in_features=4, hidden=[2], out_features=2)
    path = tmp_path / "m.npz"
    save_model(path, model, {"model": "mlp", "model_kwargs": {"in_features": 4, "hidden": [2], "out_features": 2}})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"{path}: not a readable"):
        load_model(path)


def test_missing_file_and_foreign_npz_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz: no such file"):
        load_model(tmp_path / "nothere.npz")
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="plain.npz: not a handgrad file"):
        load_model(tmp_path / "plain.npz")


def test_pickled_arrays_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object), __metadata__=np.frombuffer(b"{}", dtype=np.uint8))
    with pytest.raises(ValueError, match="evil.npz: not a readable"):
        read_npz(path)


def test_weights_that_do_not_fit_are_named(tmp_path):
    model = models.get_model("mlp", in_features=4, hidden=[2], out_features=2)
    path = tmp_path / "m.npz"
    save_model(path, model, {"model": "mlp", "model_kwargs": {"in_features": 4, "hidden": [3], "out_features": 2}})
    with pytest.raises(ValueError, match="m.npz: weights do not fit model 'mlp'"):
        load_model(path)


def test_checkpoint_file_is_not_a_model(tmp_path):
    save_checkpoint(tmp_path / "c.npz", {"model": {"w": np.ones(2)}})
    assert np.array_equal(load_checkpoint(tmp_path / "c.npz")["model"]["w"], np.ones(2))
    with pytest.raises(ValueError, match="c.npz: holds a 'checkpoint', not a model"):
        load_model(tmp_path / "c.npz")


def test_a_model_that_load_model_could_not_rebuild_is_refused_when_saved(tmp_path):
    from handgrad import nn

    with pytest.raises(ValueError, match=r"'model' must name a zoo model .* got 'Net'; save a model of your own"):
        save_model(tmp_path / "m.npz", nn.Sequential(nn.Linear(3, 2)), {"model": "Net"})
    assert not (tmp_path / "m.npz").exists()
