"""Everything handgrad computes, run on a device that is not NumPy, must equal the
NumPy run (float64, tight tolerance), and must keep its arrays on the device.

The device is ``"strict"`` (tests/strict_backend.py): NumPy underneath, but any
``numpy.*`` call on its arrays, any host array mixed into them and any implicit
transfer to the host (``np.asarray``, ``float(a)``, ``if a:``) raises. With
``HANDGRAD_TEST_DEVICE=cuda`` (benchmarks/gpu_check.sh) every test also runs on
real CuPy arrays, and the PyTorch oracle runs on CUDA.

Covered: every layer and loss of ``gradcheck.library_cases()`` (so every fast
kernel), every recurrent kernel and its step-by-step reference, every zoo model's
forward, backward and optimizer step, every optimizer, schedule and clipping
function, evaluation, prediction, sampling, state dicts, saved models and
checkpoints (device -> host file -> device).
"""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

import strict_backend
from handgrad import backend, gradcheck, models, nn, ops, optim
from handgrad.ops import im2row
from handgrad.backend import to_device, to_host
from handgrad.data.text import StreamLoader
from handgrad.io import load_model, save_model
from handgrad.train.evaluate import evaluate, predict, predict_logits
from test_conv import forced
from test_recurrent_reference import KERNELS, kernels

strict_backend.register()
DEVICES = ["strict"]
if os.environ.get("HANDGRAD_TEST_DEVICE") == "cuda":
    backend.device_module("cuda")  # no CuPy or no GPU: an error naming what is missing, never a pass
    DEVICES.append("cuda")


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def assert_same(device_value, host_value, what=""):
    """Device results equal the NumPy ones: bitwise on "strict" (same NumPy code
    underneath), to float64 rounding on a GPU (other summation orders)."""
    got = to_host(device_value)
    assert not isinstance(device_value, np.ndarray) or got is device_value
    np.testing.assert_allclose(got, host_value, rtol=1e-9, atol=1e-12, err_msg=what)


def on(device, value):
    """Move arrays (and arrays inside tuples) to ``device``; other values stay as they are."""
    if isinstance(value, tuple):
        return tuple(on(device, v) for v in value)
    if isinstance(value, np.ndarray):
        return to_device(value, device)
    return value


def test_strict_arrays_refuse_numpy_and_implicit_transfers():
    a = to_device(np.arange(3.0), "strict")
    for implicit in (np.asarray, np.exp, float, bool, lambda v: np.concatenate([v, v]),
                     lambda v: v + np.ones(3), lambda v: np.ones(3) * v, lambda v: float(v.sum())):
        with pytest.raises(TypeError):
            implicit(a)
    assert backend.array_module(a) is strict_backend.xp
    assert backend.to_scalar(a.sum()) == 3.0 and isinstance(backend.to_scalar(a.sum()), float)
    np.testing.assert_array_equal(to_host(a * 2.0 + 1), [1.0, 3.0, 5.0])


# -- every layer and loss, through gradcheck's library cases ------------------

def run_case(case, device):
    """Forward and backward of one library case in float64 on ``device``:
    (output, dL/dx or None, {parameter: gradient}), all on the host."""
    rng = np.random.default_rng(0)
    with gradcheck._global_seed(0):
        module = case.module().train(case.train)
    x = case.x(rng) if callable(case.x) else rng.standard_normal(case.x)
    target = case.target(rng) if case.target is not None else None
    module.astype(np.float64).to(device)
    x = x.astype(np.float64) if x.dtype.kind == "f" else x
    xd = to_device(x, device)
    with gradcheck._global_seed(1):  # dropout and augmentation draw the same numbers everywhere
        out = module(xd) if target is None else module(xd, to_device(target, device))
    if isinstance(out, float):
        dout = float(rng.standard_normal())
    else:
        dout = to_device(rng.standard_normal(out.shape), device)
    module.zero_grad()
    dx = module.backward(dout)
    host = lambda v: None if v is None else to_host(v)  # noqa: E731
    return host(out), host(dx) if x.dtype.kind == "f" else None, {
        name: to_host(p.grad) for name, p in module.named_parameters()}


@pytest.mark.parametrize("case", gradcheck.library_cases(), ids=lambda c: c.name)
def test_every_layer_forward_and_backward(case, device):
    out, dx, grads = run_case(case, "cpu")
    out_d, dx_d, grads_d = run_case(case, device)
    np.testing.assert_allclose(out_d, out, rtol=1e-9, atol=1e-12)
    if dx is not None:
        np.testing.assert_allclose(dx_d, dx, rtol=1e-9, atol=1e-12)
    assert grads.keys() == grads_d.keys()
    for name in grads:
        np.testing.assert_allclose(grads_d[name], grads[name], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("layout", ["im2col", "im2row"])
def test_both_convolution_layouts(layout, device):
    """gradcheck's cases are too small to take the im2row layout: each layout, forced."""
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((3, 4, 7, 6)), rng.standard_normal((5, 4, 3, 2)), rng.standard_normal(5)
    args = ((2, 1), ((1, 0), (2, 1)), (1, 2))
    with forced(layout):
        out, cache = ops.conv2d_forward(*inputs, *args)
        grads = ops.conv2d_backward(out, cache)
        out_d, cache_d = ops.conv2d_forward(*on(device, inputs), *args)
        grads_d = ops.conv2d_backward(on(device, out), cache_d)
    assert isinstance(cache_d, im2row.Cache) == (layout == "im2row")
    assert_same(out_d, out, "output")
    for what, g_d, g in zip(("dx", "dw", "db"), grads_d, grads):
        assert_same(g_d, g, what)


# -- every recurrent kernel and its step-by-step reference ----------------------

@pytest.mark.parametrize("variant", ["", "_naive"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_recurrent_kernel(name, variant, device):
    rng = np.random.default_rng(0)
    inputs = KERNELS[name][1](rng, 2, 4, 3, 5)
    forward, backward = kernels(name, variant)
    out, cache = forward(*inputs.values())
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    out_d, cache_d = forward(*(on(device, v) for v in inputs.values()))
    assert_same(out_d, out, "output")
    grads_d = backward(on(device, dout), cache_d)
    assert len(grads_d) == len(grads)
    for what, g_d, g in zip(inputs, grads_d, grads):
        assert_same(g_d, g, f"d{what}")


# -- every zoo model: forward, backward, optimizer step ------------------------

def labels_of(shape, classes):
    return lambda rng: rng.integers(0, classes, size=shape)


# name -> (builder arguments, input factory, label factory, loss)
ZOO = {
    "mlp": (dict(in_features=12, hidden=(8, 6), out_features=4, dropout=0.2),
            gradcheck.normal(5, 12), labels_of(5, 4), nn.CrossEntropyLoss),
    "lenet5": (dict(num_classes=4), gradcheck.normal(2, 1, 28, 28), labels_of(2, 4), nn.CrossEntropyLoss),
    "small_cnn": (dict(num_classes=4), gradcheck.normal(2, 1, 28, 28), labels_of(2, 4), nn.CrossEntropyLoss),
    "cnn": (dict(num_classes=4, input_shape=(2, 8, 8), widths=(3, 4), hidden=6, dropout=0.3, flip=True, shift=1),
            gradcheck.normal(3, 2, 8, 8), labels_of(3, 4), nn.CrossEntropyLoss),
    "char_lstm": (dict(vocab_size=7, hidden_size=6, num_layers=2, embedding_dim=5, stateful=True),
                  labels_of((3, 5), 7), labels_of((3, 5), 7), nn.TemporalCrossEntropyLoss),
}


def build(name, device, dtype=np.float64):
    kwargs, *_ = ZOO[name]
    model = models.get_model(name, rng=0, **kwargs).astype(dtype).to(device)
    assert all(backend.array_module(p.data) is backend.device_module(device) for p in model.parameters())
    return model


def batches(name, steps=3):
    _, make_x, make_y, _ = ZOO[name]
    rng = np.random.default_rng(1)
    return [(make_x(rng), make_y(rng)) for _ in range(steps)]


def train_steps(model, loss, optimizer, data, device, first_step=0):
    """The Trainer's step (forward, loss, zero_grad, backward, clip, step) on each batch;
    returns the losses (Python floats)."""
    losses = []
    for i, (x, y) in enumerate(data, start=first_step):
        with gradcheck._global_seed(100 + i):
            out = model(to_device(x, device))
        assert backend.array_module(out) is backend.device_module(device)
        losses.append(loss(out, to_device(y, device)))
        optimizer.zero_grad()
        model.backward(loss.backward())
        optim.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    return losses


def weights(model):
    return {k: to_host(v) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_trains_the_same(name, device):
    runs = {}
    for where in ("cpu", device):
        model = build(name, where)
        optimizer = optim.Adam(model.parameters(), lr=1e-2)
        losses = train_steps(model, ZOO[name][3](), optimizer, batches(name), where)
        assert all(isinstance(v, float) for v in losses)
        runs[where] = losses, weights(model), to_host(model.get_state()[0]) if name == "char_lstm" else None
    (losses, w, state), (losses_d, w_d, state_d) = runs["cpu"], runs[device]
    np.testing.assert_allclose(losses_d, losses, rtol=1e-9)
    for k in w:
        assert_same(w_d[k], w[k], k)
    if state is not None:  # the carried state stayed on the device between batches
        assert_same(state_d, state, "carried state")


# -- every optimizer, schedule and clipping function ------------------------------

OPTIMIZERS = {
    "SGD": lambda p: optim.SGD(p, lr=0.1),
    "SGD momentum nesterov decay": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "SGD momentum dampening": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5),
    "Adagrad": lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=1e-2),
    "RMSprop centered momentum": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.9, centered=True, weight_decay=1e-2),
    "RMSprop": lambda p: optim.RMSprop(p, lr=0.01),
    "Adam amsgrad": lambda p: optim.Adam(p, lr=0.01, amsgrad=True, weight_decay=1e-2),
    "AdamW": lambda p: optim.AdamW(p, lr=0.01),
}
SCHEDULES = {
    "StepLR": lambda o: optim.StepLR(o, step_size=2, gamma=0.5),
    "ExponentialLR": lambda o: optim.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda o: optim.CosineAnnealingLR(o, T_max=3),
}
CLIPS = {
    "norm 2": lambda p: optim.clip_grad_norm_(p, 0.5),
    "norm inf": lambda p: optim.clip_grad_norm_(p, 0.05, norm_type=float("inf")),
    "norm 1": lambda p: optim.clip_grad_norm_(p, 0.5, norm_type=1),
    "value": lambda p: optim.clip_grad_value_(p, 0.01),
}


def optimize(device, make_optimizer, make_schedule, clip, steps=4):
    """``steps`` steps of an MLP with one optimizer, schedule and clipping on ``device``:
    (the clip results, learning rates, final weights, optimizer state_dict)."""
    model = build("mlp", device)
    loss = nn.CrossEntropyLoss()
    optimizer = make_optimizer(model.parameters())
    schedule = make_schedule(optimizer)
    clipped, lrs = [], []
    for x, y in batches("mlp", steps):
        with gradcheck._global_seed(0):
            out = model(to_device(x, device))
        loss(out, to_device(y, device))
        optimizer.zero_grad()
        model.backward(loss.backward())
        clipped.append(clip(model.parameters()))
        optimizer.step()
        schedule.step()
        lrs.append(optimizer.lr)
    return clipped, lrs, weights(model), optimizer.state_dict()


@pytest.mark.parametrize("clip", sorted(CLIPS))
@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_schedule_and_clipping(name, schedule, clip, device):
    host = optimize("cpu", OPTIMIZERS[name], SCHEDULES[schedule], CLIPS[clip])
    dev = optimize(device, OPTIMIZERS[name], SCHEDULES[schedule], CLIPS[clip])
    assert [type(v) for v in dev[0]] == [type(v) for v in host[0]]  # floats (clip_grad_norm_) or None
    if host[0][0] is not None:
        np.testing.assert_allclose(dev[0], host[0], rtol=1e-9)
    assert dev[1] == host[1]
    for k in host[2]:
        assert_same(dev[2][k], host[2][k], k)
    state, state_d = host[3], dev[3]
    assert state.keys() == state_d.keys()
    for k, v in state["buffers"].items():  # the optimizer's state_dict holds host arrays
        assert isinstance(state_d["buffers"][k], np.ndarray)
        np.testing.assert_allclose(state_d["buffers"][k], v, rtol=1e-9, atol=1e-12, err_msg=k)


# -- evaluation, prediction, sampling -------------------------------------------

@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_evaluate_and_predict_on_device_data(name, device):
    (x1, y1), (x2, y2) = batches(name, 2)
    X, y = np.concatenate([x1, x2]), np.concatenate([y1, y2])
    results = {}
    for where in ("cpu", device):
        model = build(name, where)
        data = (to_device(X, where), to_device(y, where))
        results[where] = (evaluate(model, nn.CrossEntropyLoss(), data, batch_size=4, keep_predictions=True),
                          predict(model, data[0], batch_size=3), predict_logits(model, data[0], batch_size=3))
    (ev, pred, logits), (ev_d, pred_d, logits_d) = results["cpu"], results[device]
    assert isinstance(pred_d, np.ndarray) and isinstance(logits_d, np.ndarray)  # results come back to the host
    np.testing.assert_array_equal(pred_d, pred)
    np.testing.assert_allclose(logits_d, logits, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(ev_d.pop("predictions"), ev.pop("predictions"))
    assert ev_d == pytest.approx(ev, rel=1e-9)


def test_evaluate_streams_on_device(device):
    ids = np.random.default_rng(2).integers(0, 7, size=64)
    results = {}
    for where in ("cpu", device):
        model = build("char_lstm", where)
        source = StreamLoader(to_device(ids, where), batch_size=3, seq_len=5)
        results[where] = (evaluate(model, nn.TemporalCrossEntropyLoss(), source), predict(model, source))
    assert results[device][0] == pytest.approx(results["cpu"][0], rel=1e-9)
    np.testing.assert_array_equal(results[device][1], results["cpu"][1])


@pytest.mark.parametrize("greedy", [False, True])
def test_char_lstm_samples_the_same_ids(greedy, device):
    host = build("char_lstm", "cpu").sample([1, 2, 3], 12, temperature=0.8, greedy=greedy, rng=5)
    assert build("char_lstm", device).sample([1, 2, 3], 12, temperature=0.8, greedy=greedy, rng=5) == host
    assert all(type(i) is int for i in host)


# -- state dicts, saved models, checkpoints: device -> host file -> device ------------

def test_state_dict_round_trip(device):
    model = build("cnn", device)
    state = model.state_dict()
    assert all(backend.array_module(v) is backend.device_module(device) for v in state.values())
    other = models.get_model("cnn", rng=1, **ZOO["cnn"][0]).astype(np.float64).to(device)
    other.load_state_dict(state)  # device arrays into device arrays
    host = models.get_model("cnn", rng=1, **ZOO["cnn"][0]).astype(np.float64)
    host.load_state_dict({k: to_host(v) for k, v in state.items()})  # host arrays into a host model
    for k, v in weights(model).items():
        assert_same(other.state_dict()[k], v, k)
        np.testing.assert_array_equal(host.state_dict()[k], v)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_save_model_from_device_load_back_onto_it(name, device, tmp_path):
    model = build(name, device, backend.get_default_dtype())  # load_model builds in the default dtype
    train_steps(model, ZOO[name][3](), optim.SGD(model.parameters(), lr=0.1), batches(name, 1), device)
    path = save_model(tmp_path / "model.npz", model, {"model": name, "model_kwargs": ZOO[name][0]})
    loaded, _ = load_model(path)
    for k, v in weights(model).items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)  # loaded on the host
    loaded.to(device)
    x, _ = batches(name, 1)[0]
    model.eval(), loaded.eval()
    assert_same(loaded(to_device(x, device)), to_host(model(to_device(x, device))))


# -- the PyTorch oracle: on CUDA when the device is CUDA ----------------------------

def pytorch_twins():
    """benchmarks/gpu_compare.py's registry: each zoo model with its PyTorch twin (same state_dict names)."""
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location(
        "gpu_compare", Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BENCHMARKS


@pytest.mark.parametrize("name", ["mlp", "lenet5", "small_cnn", "cnn", "char_lstm"])
def test_zoo_models_match_pytorch(name, device):
    """Forward, loss, every parameter gradient and the batch-norm statistics of a
    training step (float64) equal PyTorch's, which runs on CUDA for ``device='cuda'``."""
    import torch

    bench = pytorch_twins()[name]
    x, y = bench.make_batch(np.random.default_rng(0), 4)
    model = bench.build_handgrad().astype(np.float64)
    twin = bench.build_torch().double()
    twin.load_state_dict({k: torch.from_numpy(to_host(v)) for k, v in model.state_dict().items()})
    for m in model.named_modules():  # no dropout: the two libraries draw different masks
        if isinstance(m[1], nn.Dropout):
            m[1].p = 0.0
    for m in twin.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    twin.to("cuda" if device == "cuda" else "cpu")
    model.to(device)
    criterion = bench.build_loss()
    out = model(to_device(x.astype(np.float64) if x.dtype.kind == "f" else x, device))
    loss = criterion(out, to_device(y, device))
    model.backward(criterion.backward())

    param = next(twin.parameters())
    xt = torch.from_numpy(x).to(param.device)
    out_t = twin(xt.double() if x.dtype.kind == "f" else xt)
    loss_t = torch.nn.functional.cross_entropy(out_t.reshape(-1, out_t.shape[-1]),
                                               torch.from_numpy(y).to(param.device).reshape(-1))
    loss_t.backward()
    np.testing.assert_allclose(to_host(out), out_t.detach().cpu().numpy(), rtol=1e-7, atol=1e-10)
    assert loss == pytest.approx(loss_t.item(), rel=1e-9)
    grads = {k: p.grad.cpu().numpy() for k, p in twin.named_parameters()}
    for k, p in model.named_parameters():
        np.testing.assert_allclose(to_host(p.grad), grads[k], rtol=1e-7, atol=1e-10, err_msg=k)
    buffers = dict(twin.named_buffers())
    for k, v in model.named_buffers():
        np.testing.assert_allclose(to_host(v), buffers[k].cpu().numpy(), rtol=1e-7, atol=1e-10, err_msg=k)


def test_embedding_takes_whole_floats_on_the_device(device):
    layer = nn.Embedding(5, 3, rng=0).to(device)
    ids = np.array([[0.0, 4.0], [2.0, 2.0]])
    assert_same(layer(to_device(ids, device)), to_host(layer(to_device(ids.astype(np.int64), device))))
