"""Central finite differences for the float64 gradient checks of the conv, pool and norm tests."""
import numpy as np


def numerical_grad(f, x, eps=1e-6):
    """d f() / d x by central differences, perturbing ``x`` in place one element at a time."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def rel_error(a, b):
    """||a - b|| / (||a|| + ||b||), 0 when both are zero."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def check_module_grads(module, x, rng, tol=1e-6):
    """Compare module.backward with finite differences of L = sum(forward(x) * R) for the
    input and every parameter; the module must be float64 and deterministic."""
    out = module(x)
    r = rng.standard_normal(out.shape)

    def loss():
        return float((module(x) * r).sum())

    module.zero_grad()
    module(x)
    dx = module.backward(r)
    analytic = {"x": dx, **{name: p.grad.copy() for name, p in module.named_parameters()}}
    numeric = {"x": numerical_grad(loss, x)}
    for name, p in module.named_parameters():
        numeric[name] = numerical_grad(loss, p.data)
    for name in analytic:
        err = rel_error(analytic[name], numeric[name])
        assert err < tol, f"{type(module).__name__} d/d{name}: relative error {err:.2e}"
