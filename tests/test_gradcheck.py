"""The gradient checker itself: it measures right, and it catches wrong backward passes."""
import subprocess
import sys

import numpy as np
import pytest

from handgrad import nn
from handgrad.gradcheck import GradCase, check_module, check_op, library_cases, numerical_gradient, rel_error
from handgrad.ops import linear_backward, linear_forward, softmax_cross_entropy_backward, softmax_cross_entropy_forward


def test_numerical_gradient_of_known_function():
    """f(x) = x^3 elementwise, L = sum(f(x) * dout): dL/dx = 3 x^2 dout."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda v: v**3, x, dout)
    np.testing.assert_allclose(grad, 3 * x**2 * dout, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_of_scalar_function():
    x = np.array([1.0, 2.0, -3.0])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(np.sin(v)), x), np.cos(x), rtol=1e-9)


def test_rel_error():
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert rel_error([1.0, 0.0], [0.0, 0.0]) == pytest.approx(1.0)
    assert rel_error([2.0, 1e-3], [2.0, 0.0]) == pytest.approx(1e-3 / 4)
    with pytest.raises(ValueError, match=r"rel_error: shapes \(2,\) and \(3,\) differ"):
        rel_error(np.zeros(2), np.zeros(3))


def test_check_op_on_kernels():
    rng = np.random.default_rng(1)
    report = check_op(linear_forward, linear_backward,
                      {"x": rng.standard_normal((3, 2, 2)), "w": rng.standard_normal((5, 4)), "b": rng.standard_normal(5)})
    assert set(report) == {"x", "w", "b"} and max(report.values()) < 1e-8
    report = check_op(softmax_cross_entropy_forward, softmax_cross_entropy_backward,
                      {"logits": rng.standard_normal((4, 3)), "labels": np.array([0, 2, 1, 1])})
    assert set(report) == {"logits"} and report["logits"] < 1e-8


def test_check_op_skips_absent_bias():
    rng = np.random.default_rng(2)
    report = check_op(lambda x, w: linear_forward(x, w, None), linear_backward,
                      {"x": rng.standard_normal((2, 3)), "w": rng.standard_normal((4, 3))})
    assert set(report) == {"x", "w"}


class BuggySquare(nn.Module):
    """out = w * x^2, with backward forgetting the factor 2 in dx."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.full(3, 1.5, np.float32))

    def forward(self, x):
        self._x = x
        return self.w.data * x * x

    def backward(self, dout):
        self.w.grad += (dout * self._x * self._x).sum(axis=0)
        return dout * self.w.data * self._x


class BuggyWeight(BuggySquare):
    """Right dx, wrong dw (a sign error)."""

    def backward(self, dout):
        self.w.grad -= (dout * self._x * self._x).sum(axis=0)
        return 2 * dout * self.w.data * self._x


class Correct(BuggySquare):
    def backward(self, dout):
        self.w.grad += (dout * self._x * self._x).sum(axis=0)
        return 2 * dout * self.w.data * self._x


def test_check_module_catches_wrong_backward():
    x = np.random.default_rng(3).standard_normal((4, 3))
    report = check_module(BuggySquare(), x)
    assert report["input"] > 0.1 and report["w"] < 1e-8
    report = check_module(BuggyWeight(), x)
    assert report["input"] < 1e-8 and report["w"] > 0.1
    report = check_module(Correct(), x)
    assert max(report.values()) < 1e-8


def test_check_module_casts_to_float64():
    layer = nn.Linear(3, 2)
    check_module(layer, np.ones((2, 3), np.float32))
    assert layer.weight.data.dtype == np.float64


def test_check_module_with_a_loss():
    logits = np.random.default_rng(4).standard_normal((5, 3))
    report = check_module(nn.CrossEntropyLoss(), logits, np.array([0, 1, 2, 2, 1]))
    assert list(report) == ["input"] and report["input"] < 1e-8


def test_check_module_keeps_callers_random_stream():
    import handgrad

    handgrad.manual_seed(11)
    expected = nn.Linear(3, 3).weight.data.copy()
    handgrad.manual_seed(11)
    check_module(nn.Dropout(0.5), np.ones((2, 3)))
    np.testing.assert_array_equal(nn.Linear(3, 3).weight.data, expected)


def test_library_cases_cover_every_layer():
    """A layer exported from handgrad.nn without a GradCase fails here."""
    layers = {case.layer for case in library_cases()}
    exported = {name for name, obj in vars(nn).items()
                if isinstance(obj, type) and issubclass(obj, nn.Module) and obj not in (nn.Module, nn.Stateful)}
    assert exported <= layers, f"layers without a gradient check: {sorted(exported - layers)}"
    names = [case.name for case in library_cases()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", library_cases(), ids=lambda c: c.name)
def test_library_case_passes(case):
    report = case.run(seed=0)
    assert report and max(report.values()) < 1e-6, report


def test_grad_case_with_a_bug_fails():
    report = GradCase("BuggySquare", BuggySquare, (4, 3)).run()
    assert report["input"] > 1e-6


def gradcheck_cli(*args):
    return subprocess.run([sys.executable, "-m", "handgrad", "gradcheck", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_checks_every_case():
    result = gradcheck_cli()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for case in library_cases():
        assert any(line.startswith(case.name + " ") for line in lines), case.name
    assert "FAIL" not in result.stdout
    assert f"{len(library_cases())} cases" in lines[-1] and "0 failed" in lines[-1]


def test_cli_layer_filter_and_seed():
    result = gradcheck_cli("--layer", "linear", "--seed", "7")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:-1]
    assert rows and all(row.startswith("Linear ") for row in rows)
    assert "seed 7" in result.stdout


def test_cli_fails_when_tolerance_cannot_be_met():
    result = gradcheck_cli("--layer", "Tanh", "--tol", "1e-30")
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "1 failed" in result.stdout


def test_cli_unknown_layer():
    result = gradcheck_cli("--layer", "Nope")
    assert result.returncode == 2
    assert "no gradient check for layer nope; known layers:" in result.stderr and "Linear" in result.stderr


def test_cli_reports_a_crashing_case_and_runs_the_rest(monkeypatch, capsys):
    import handgrad.gradcheck
    from handgrad.cli import main

    def broken():
        raise ValueError("shape trouble")

    cases = [GradCase("Crashing layer", broken, (2, 2)), GradCase("Tanh", nn.Tanh, (2, 3))]
    monkeypatch.setattr(handgrad.gradcheck, "library_cases", lambda: cases)
    assert main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert "FAIL ValueError: shape trouble" in out
    assert any(line.startswith("Tanh ") and line.endswith("ok") for line in out.splitlines())
    assert "2 cases, 2 tensors checked, 1 failed" in out


def test_check_op_on_the_ops_scale_forgives_rounding_noise_but_not_a_missing_gradient():
    # y reaches the output only through a factor 1e-9: its finite differences are rounding noise
    def forward(x, y):
        return 3 * x + 1e-9 * y, None

    def backward(dout, cache):
        return 3 * dout, 1e-9 * dout

    rng = np.random.default_rng(0)
    inputs = {"x": rng.standard_normal((4, 5)), "y": rng.standard_normal((4, 5))}
    assert check_op(forward, backward, inputs)["y"] > 1e-3  # per tensor, the noise is the whole gradient
    assert max(check_op(forward, backward, inputs, scale="op").values()) < 1e-9

    def forgets_x(dout, cache):
        return np.zeros_like(dout), 1e-9 * dout

    assert check_op(forward, forgets_x, inputs, scale="op")["x"] > 0.4
    with pytest.raises(ValueError, match="scale must be 'tensor' or 'op'"):
        check_op(forward, backward, inputs, scale="global")
