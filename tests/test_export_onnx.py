import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

import onnxruntime

from handgrad import models, nn
from handgrad.export import export_onnx, to_onnx
from handgrad.io import save_model


def run_onnx(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_mlp_matches_onnxruntime(tmp_path, rng):
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 7), nn.LeakyReLU(0.2), nn.Dropout(0.5),
        nn.Sequential(nn.Linear(7, 5, bias=False), nn.Tanh()), nn.Linear(5, 4), nn.Sigmoid(),
        nn.Linear(4, 3), nn.LogSoftmax(dim=1),
    ).eval()
    x = rng.standard_normal((6, 3, 2, 2)).astype(np.float32)
    path = export_onnx(model, (3, 2, 2), tmp_path / "mlp.onnx")
    np.testing.assert_allclose(run_onnx(path, x), model(x), rtol=1e-5, atol=1e-6)
    assert not list(tmp_path.glob(".*.tmp"))


def test_unsupported_layer_is_named(tmp_path):
    class Weird(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match=r"layer '1' \(Weird\)"):
        export_onnx(nn.Sequential(nn.ReLU(), Weird()), (3,), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("name", ["lenet5", "small_cnn"])
def test_zoo_cnns_match_onnxruntime(tmp_path, rng, name):
    model = models.get_model(name).eval()
    x = rng.random((3, 1, 28, 28), dtype=np.float32)
    path = export_onnx(model, (1, 28, 28), tmp_path / f"{name}.onnx")
    np.testing.assert_allclose(run_onnx(path, x), model(x), rtol=1e-4, atol=1e-5)


def test_conv_pool_batchnorm_variants_match_onnxruntime(tmp_path, rng):
    model = nn.Sequential(
        nn.Conv2d(2, 4, (3, 2), stride=2, padding="same", dilation=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding="same"), nn.Dropout2d(0.3),
        nn.Conv2d(4, 3, 2, padding=1, dilation=2, bias=False), nn.AvgPool2d(2, stride=1, padding=1),
        nn.Flatten(), nn.Linear(3 * 4 * 3, 6), nn.BatchNorm1d(6), nn.Linear(6, 2),
    )
    for bn in (model[1], model[9]):
        bn.running_mean[...] = rng.standard_normal(bn.num_features)
        bn.running_var[...] = rng.random(bn.num_features) + 0.5
        bn.weight.data[...] = rng.standard_normal(bn.num_features)
    model.eval()
    x = rng.standard_normal((2, 2, 9, 7)).astype(np.float32)
    path = export_onnx(model, (2, 9, 7), tmp_path / "cnn.onnx")
    np.testing.assert_allclose(run_onnx(path, x), model(x), rtol=1e-4, atol=1e-5)


def test_conv1d_matches_onnxruntime(tmp_path, rng):
    model = nn.Sequential(nn.Conv1d(3, 5, 3, padding="same"), nn.Tanh(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(5 * 5, 2))
    x = rng.standard_normal((4, 3, 10)).astype(np.float32)
    path = export_onnx(model, (3, 10), tmp_path / "c1.onnx")
    assert model.training, "export must leave the model in the mode it found it"
    np.testing.assert_allclose(run_onnx(path, x), model.eval()(x), rtol=1e-4, atol=1e-5)


def test_export_command_writes_a_model_onnxruntime_agrees_with(tmp_path, rng):
    import subprocess
    import sys

    from handgrad.train.restore import load_trained

    run = tmp_path / "run"
    train = [sys.executable, "-m", "handgrad", "train", "--data", "digits", "--epochs", "1", "--out", str(run)]
    subprocess.run(train, check=True, capture_output=True, text=True)
    out = subprocess.run([sys.executable, "-m", "handgrad", "export", "--checkpoint", str(run),
                          "--out", str(tmp_path / "digits.onnx")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "input shape (N, 1, 8, 8)" in out.stdout
    model, _ = load_trained(run)
    x = rng.random((5, 1, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(run_onnx(tmp_path / "digits.onnx", x), model.eval()(x), rtol=1e-4, atol=1e-5)

    missing = subprocess.run([sys.executable, "-m", "handgrad", "export", "--checkpoint", str(tmp_path / "nope"),
                              "--out", str(tmp_path / "x.onnx")], capture_output=True, text=True)
    assert missing.returncode == 2 and "nope: no such file" in missing.stderr
    assert not (tmp_path / "x.onnx").exists()


# Small versions of every zoo model, with the input they take (float images or token ids).
ZOO = {
    "mlp": (dict(in_features=12, hidden=(7, 5), out_features=4, activation="tanh", dropout=0.3), (3, 2, 2)),
    "lenet5": (dict(num_classes=5), (1, 28, 28)),
    "small_cnn": (dict(num_classes=3), (1, 28, 28)),
    "cnn": (dict(num_classes=4, input_shape=(2, 12, 10), widths=(3, 5), hidden=6, flip=True, shift=2), (2, 12, 10)),
    "char_lstm": (dict(vocab_size=9, hidden_size=6, num_layers=2, embedding_dim=5), (11,)),
}


def test_zoo_table_covers_every_model():
    assert set(ZOO) == set(models.MODELS)


def randomise_batch_norm(model, rng):
    """Running statistics and affine parameters away from their initial 0, 1, 1, 0."""
    norms = [m for _, m in model.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for bn in norms:
        bn.running_mean[...] = rng.standard_normal(bn.num_features)
        bn.running_var[...] = rng.random(bn.num_features) + 0.5
        bn.weight.data[...] = rng.standard_normal(bn.num_features)
        bn.bias.data[...] = rng.standard_normal(bn.num_features)
    return len(norms)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_matches_onnxruntime(tmp_path, rng, name):
    kwargs, shape = ZOO[name]
    model = models.get_model(name, rng=1, **kwargs)
    assert randomise_batch_norm(model, rng) == (2 if name == "cnn" else 0)
    if name == "char_lstm":  # another sequence length than the one exported with: T is symbolic
        x = rng.integers(0, kwargs["vocab_size"], size=(3, 7))
    else:
        x = rng.random((4, *shape), dtype=np.float32)
    classes = [f"c{i}" for i in range(model.eval()(x).shape[-1])]
    model.train()
    metadata = {"model": name, "data": "mnist", "classes": classes}
    path = export_onnx(model, shape, tmp_path / f"{name}.onnx", metadata)
    assert model.training
    expected = model.eval()(x)
    np.testing.assert_allclose(run_onnx(path, x), expected, rtol=1e-4, atol=1e-5)

    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == ["logits"]
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["classes"]) == classes and props["model"] == name
    if name == "char_lstm":
        assert [n.op_type for n in proto.graph.node].count("LSTM") == 2 and "input_scale" not in props
        assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    else:
        assert float(props["input_scale"]) == pytest.approx(1 / 255)


def test_augmentation_exports_as_identity(tmp_path, rng):
    model = models.cnn(input_shape=(1, 8, 8), widths=(2,), hidden=3, num_classes=2, shift=1)
    proto = to_onnx(model, (1, 8, 8))
    assert proto.graph.node[0].op_type == "Identity" and proto.graph.node[0].name == "0"


@pytest.mark.parametrize("metadata, message", [
    ({"classes": ["a", "b"]}, "metadata lists 2 class names, but the model has 3 outputs"),
    ({"classes": "abc"}, "metadata 'classes' must be a list of names"),
    ({"input_scale": -1}, "metadata 'input_scale' must be a positive number"),
])
def test_inconsistent_metadata_is_refused(tmp_path, metadata, message):
    with pytest.raises(ValueError, match=message):
        export_onnx(models.mlp(in_features=4, hidden=(), out_features=3), (4,), tmp_path / "m.onnx", metadata)
    assert not (tmp_path / "m.onnx").exists()


def test_export_command_names_a_damaged_model_file(tmp_path):
    model = models.mlp(in_features=4, hidden=(3,), out_features=2)
    kwargs = {"in_features": 4, "hidden": [3], "out_features": 2}
    good = {"model": "mlp", "model_kwargs": kwargs, "classes": ["no", "yes"], "input_shape": [4]}
    for case, damage in (("classes", {"classes": ["only one"]}), ("shape", {"input_shape": [4, -1]})):
        path = save_model(tmp_path / f"{case}.npz", model, {**good, **damage})
        out = subprocess.run([sys.executable, "-m", "handgrad", "export", "--checkpoint", str(path),
                              "--out", str(tmp_path / "m.onnx")], capture_output=True, text=True)
        assert out.returncode == 2 and str(path) in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "m.onnx").exists()
    path = save_model(tmp_path / "good.npz", model, good)
    out = subprocess.run([sys.executable, "-m", "handgrad", "export", "--checkpoint", str(path),
                          "--out", str(tmp_path / "m.onnx")], capture_output=True, text=True)
    assert out.returncode == 0 and "input shape (N, 4)" in out.stdout, out.stderr


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_and_depthwise_convolutions_match_onnxruntime(tmp_path, rng, groups):
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, groups=groups), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 6 * 5, 3))
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    path = export_onnx(model, (4, 6, 5), tmp_path / "grouped.onnx")
    np.testing.assert_allclose(run_onnx(path, x), model.eval()(x), rtol=1e-4, atol=1e-5)


def test_a_model_of_ones_own_is_named_with_what_can_be_exported(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(ValueError, match=r"no ONNX converter for the model Net \(a Sequential of supported layers"):
        export_onnx(Net(), (4,), tmp_path / "m.onnx", {"classes": ["a", "b"]})
    assert not (tmp_path / "m.onnx").exists()


def test_the_onnx_file_gets_the_mode_of_any_file_the_user_writes(tmp_path):
    import os
    import stat

    path = export_onnx(models.mlp(in_features=4, hidden=(3,), out_features=2), (4,), tmp_path / "m.onnx",
                       {"classes": ["a", "b"]})
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
