import numpy as np
import pytest

import onnxruntime

from handgrad import models, nn
from handgrad.export import export_onnx


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
