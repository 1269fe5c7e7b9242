"""Moving arrays between devices: the explicit helpers of ``handgrad.backend``, the
error a missing CuPy or GPU gives, and checkpoints that leave a device as host
arrays and come back onto any device (here the strict CuPy stand-in, "strict")."""
import importlib.util
import json
import re

import numpy as np
import pytest

import strict_backend
from handgrad import backend, nn, optim
from handgrad.backend import device_module, to_device, to_host, to_scalar
from handgrad.io import read_npz
from handgrad.train.checkpoint import load_checkpoint, save_checkpoint
from test_strict_backend import ZOO, batches, build, device, train_steps, weights  # noqa: F401 (fixture)

strict_backend.register()
no_cupy = pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")


def test_to_cpu_keeps_values_and_numpy_arrays():
    model = nn.Sequential(nn.Linear(3, 2))
    before = model.state_dict()
    assert model.to("cpu") is model
    for name, value in model.state_dict().items():
        assert type(value) is np.ndarray
        np.testing.assert_array_equal(value, before[name])


@no_cupy
@pytest.mark.parametrize("name", ["cuda", "gpu"])
def test_cuda_without_cupy_names_what_to_install(name):
    with pytest.raises(ImportError, match=r"device '(cuda|gpu)' needs CuPy: pip install cupy-cuda12x"):
        device_module(name)


@no_cupy
def test_a_model_stays_where_it_was_when_cuda_is_missing():
    model = build("mlp", "cpu")
    before = weights(model)
    with pytest.raises(ImportError, match="pip install cupy-cuda12x"):
        model.to("cuda")
    assert all(type(p.data) is np.ndarray for p in model.parameters())
    for k, v in weights(model).items():
        np.testing.assert_array_equal(v, before[k])


def test_unknown_device():
    with pytest.raises(ValueError, match="unknown device 'tpu': expected 'cpu' or 'cuda'"):
        device_module("tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        build("mlp", "cpu").to("tpu")


def test_explicit_transfers():
    a = np.arange(6.0).reshape(2, 3)
    assert to_host(a) is a and to_device(a, "cpu") is a  # host to host: no copy
    d = to_device(a, "strict")
    assert isinstance(d, strict_backend.StrictArray) and to_device(d, "strict") is d
    a[0, 0] = 99.0  # a transfer is a copy
    back = to_host(d)
    assert type(back) is np.ndarray and back[0, 0] == 0.0
    np.testing.assert_array_equal(to_device(d, "cpu"), back)
    assert to_scalar(d.sum()) == 15.0 and to_scalar(np.float32(2.5)) == 2.5 and to_scalar(3.0) == 3.0


def checkpoint(model, optimizer):
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": model.get_state()}


def restore(path, device):
    """Load a checkpoint on the host, then move the model to ``device``: the only way onto a device."""
    state = load_checkpoint(path)
    model = build("char_lstm", "cpu")
    model.load_state_dict(state["model"])
    model.to(device)
    model.set_state(tuple(to_device(s, device) for s in state["state"]))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    optimizer.load_state_dict(state["optimizer"])
    return model, optimizer


def test_checkpoint_moves_between_devices(device, tmp_path):
    """Train a step on the device, checkpoint, continue on the CPU, checkpoint, continue on
    the device: the weights are those of a run that never moved (bitwise on "strict")."""
    loss, data = ZOO["char_lstm"][3](), batches("char_lstm", 4)
    model = build("char_lstm", "cpu")
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    expected = train_steps(model, loss, optimizer, data, "cpu")
    reference = weights(model)

    model = build("char_lstm", device)
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    losses = train_steps(model, loss, optimizer, data[:1], device)
    save_checkpoint(tmp_path / "a.npz", checkpoint(model, optimizer))
    arrays, _ = read_npz(tmp_path / "a.npz")
    assert arrays and all(type(v) is np.ndarray for v in arrays.values())  # host arrays in the file

    model, optimizer = restore(tmp_path / "a.npz", "cpu")
    losses += train_steps(model, loss, optimizer, data[1:3], "cpu", first_step=1)
    save_checkpoint(tmp_path / "b.npz", checkpoint(model, optimizer))

    model, optimizer = restore(tmp_path / "b.npz", device)
    assert all(backend.array_module(p.data) is device_module(device) for p in model.parameters())
    losses += train_steps(model, loss, optimizer, data[3:], device, first_step=3)
    exact = device == "strict"  # the same NumPy code; a GPU sums in other orders
    assert losses == (expected if exact else pytest.approx(expected, rel=1e-9))
    for k, v in weights(model).items():
        np.testing.assert_allclose(v, reference[k], rtol=0 if exact else 1e-9, atol=0 if exact else 1e-12,
                                   err_msg=k)


class Stop(Exception):
    pass


def test_the_trainer_on_a_device_moves_each_batch_and_resumes_on_the_cpu(tmp_path):
    """Trainer(device=...) trains on device arrays from host batches, bitwise as on the
    CPU; its checkpoint, written from the device, continues on the CPU exactly."""
    from trainer_helpers import make_trainer

    kw = dict(epochs=3, eval_every=250, seed=7, adam=True, lr=0.01)
    reference = make_trainer(**kw)
    expected = reference.fit()

    on_device = make_trainer(device=strict_backend.NAME, **kw)
    assert on_device.fit() == expected
    weights = on_device.model.to("cpu").state_dict()
    for name, value in reference.model.state_dict().items():
        assert np.array_equal(value, weights[name]), name

    def stop(trainer, record):
        if len(trainer.history["eval"]) == 3:
            raise Stop

    killed = make_trainer(device=strict_backend.NAME, checkpoint_dir=tmp_path, on_eval=stop, **kw)
    with pytest.raises(Stop):
        killed.fit()
    resumed = make_trainer(checkpoint_dir=tmp_path, **kw)
    assert resumed.fit(resume_from=tmp_path / "checkpoint.npz") == expected
    for name, value in reference.model.state_dict().items():
        assert np.array_equal(value, resumed.model.state_dict()[name]), name


@pytest.mark.filterwarnings("error::UserWarning")  # e.g. a glyph the plots' font lacks
@pytest.mark.parametrize("model, data", [("mlp", "digits"), ("char_lstm", "text")])
def test_a_whole_run_on_a_device_writes_the_run_of_the_cpu(model, data, tmp_path, monkeypatch):
    """``handgrad train --device cuda`` end to end: training, the report's summary
    table (a sample run through the model where it lives) and, for a character
    model, its generated sample; every file equals the CPU run's (bitwise on "strict")."""
    from handgrad.train import config as run_config
    from handgrad.train.run import train_from_config

    monkeypatch.setitem(run_config.CHOICES, "device", ("cpu", strict_backend.NAME))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"{i} little pigs, let me come in. " for i in range(400)))
    config = {"model": model, "data": data, "epochs": 1, "seed": 2, "workers": 1}  # a device has one
    if data == "text":
        config.update(text_file=str(corpus), data_kwargs={"seq_len": 20},
                      model_kwargs={"hidden_size": 16, "embedding_dim": 8}, batch_size=8)
    runs = {}
    for device in ("cpu", strict_backend.NAME):
        result = train_from_config({**config, "device": device}, out_dir=tmp_path / device)
        runs[device] = {k: result[k] for k in ("test_accuracy", "test_loss", "history")}
    assert runs["cpu"] == runs[strict_backend.NAME]
    names = ["model.npz", "results.json", "classification_report.txt"] + (["sample.txt"] if data == "text" else [])
    for name in names:
        cpu, dev = (tmp_path / d / name for d in ("cpu", strict_backend.NAME))
        if name == "results.json":  # its wall times differ
            strip = lambda p: {k: v for k, v in json.loads(p.read_text()).items() if k not in ("wall_time", "seconds")}  # noqa: E731
            assert strip(cpu) == strip(dev)
        else:
            assert cpu.read_bytes() == dev.read_bytes(), name
    pages = [re.sub(r"\d+\.\d s", "", (tmp_path / d / "report.html").read_text()).replace(d, "DEVICE")
             for d in runs]  # but for the times and the device setting
    assert pages[0] == pages[1] and "Total" in pages[1]  # the summary table's last row
