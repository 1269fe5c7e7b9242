import numpy as np
import pytest

import onnxruntime

from handgrad import nn
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
