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
import os

import numpy as np
import pytest

import strict_backend
from handgrad import backend, gradcheck, models, nn, ops, optim
from handgrad.backend import to_device, to_host
from test_recurrent_reference import KERNELS, kernels

strict_backend.register()
DEVICES = ["strict"] + (["cuda"] if os.environ.get("HANDGRAD_TEST_DEVICE") == "cuda" else [])


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
