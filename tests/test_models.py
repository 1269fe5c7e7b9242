"""Model zoo against PyTorch models with copied weights, the registry, summary and `handgrad summary`."""
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as tn

import handgrad
from handgrad.models import MODELS, get_model, lenet5, mlp, small_cnn
from handgrad.nn import CrossEntropyLoss
from oracle import assert_close, assert_grads_match, copy_weights, t, torch_twins


def torch_mlp():
    return tn.Sequential(tn.Flatten(), tn.Linear(784, 64), tn.Tanh(), tn.Linear(64, 32), tn.Tanh(), tn.Linear(32, 10))


@pytest.mark.parametrize("ours,theirs", [
    (lambda: lenet5(input_grad=True, rng=0), lambda: torch_twins().lenet5()),
    (lambda: small_cnn(input_grad=True, rng=0), lambda: torch_twins().small_cnn()),
    (lambda: mlp(hidden=[64, 32], activation="tanh", input_grad=True, rng=0), torch_mlp),
])
def test_model_forward_and_backward_equal_torch(ours, theirs):
    model, ref = ours(), theirs()
    copy_weights(model, ref)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    loss_fn = CrossEntropyLoss()
    tx = t(x, True)
    logits, ref_logits = model(x), ref(tx)
    assert_close(logits, ref_logits, 1e-5, "logits")
    loss = loss_fn(logits, y)
    ref_loss = torch_cross_entropy(ref_logits, y)
    assert abs(float(loss) - ref_loss.item()) < 1e-5
    model.zero_grad()
    dx = model.backward(loss_fn.backward())
    ref_loss.backward()
    assert_grads_match(model, ref, 1e-5)
    assert_close(dx, tx.grad, 1e-5, "dx")


@pytest.mark.parametrize("training", [True, False])
def test_cnn_without_randomness_equals_its_torch_twin(training):
    """The cnn's blocks (conv, pool, batch norm, ReLU) against PyTorch's, with batch
    statistics (training) and running ones (eval); no flips, shifts or dropout,
    which draw from each library's own generator."""
    model = get_model("cnn", flip=False, shift=0, dropout=0.0, rng=0)
    ref = torch_twins().cnn(flip=False, shift=0, dropout=0.0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    loss_fn = CrossEntropyLoss()
    model(x), ref(t(x))  # one training pass, so that the running statistics are not the initial ones
    copy_weights(model, ref)
    model.train(training), ref.train(training)
    logits, ref_logits = model(x), ref(t(x))
    assert_close(logits, ref_logits, 1e-4, "logits")
    ref_loss = torch_cross_entropy(ref_logits, y)
    assert abs(float(loss_fn(logits, y)) - ref_loss.item()) < 1e-5
    model.zero_grad()
    model.backward(loss_fn.backward())
    ref_loss.backward()
    assert_grads_match(model, ref, 1e-4)
    for name, b in ref.named_buffers():
        assert_close(model.state_dict()[name], b, 1e-5, name)


def torch_cross_entropy(logits, y):
    return torch.nn.functional.cross_entropy(logits, torch.tensor(y))


@pytest.mark.parametrize("build", [lenet5, small_cnn])
def test_models_skip_the_data_gradient_by_default(build):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    dout = rng.standard_normal((4, 10)).astype(np.float32)
    fast, full = build(rng=1), build(input_grad=True, rng=1)
    fast(x), full(x)
    assert fast.backward(dout) is None
    assert full.backward(dout).shape == x.shape
    for (name, p), q in zip(fast.named_parameters(), full.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)


def test_parameter_counts():
    assert lenet5().num_parameters() == 44_426
    assert small_cnn().num_parameters() == 80 + 584 + 12_576 + 330
    assert mlp().num_parameters() == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10


def test_mlp_options():
    model = mlp(in_features=12, hidden=[5], out_features=3, activation="leaky_relu", dropout=0.2)
    assert [type(m).__name__ for m in model] == ["Flatten", "Linear", "LeakyReLU", "Dropout", "Linear"]
    assert model(np.zeros((2, 3, 4), np.float32)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"mlp: unknown activation 'gelu'; choose from relu"):
        mlp(activation="gelu")


def test_registry():
    assert {"mlp", "lenet5", "small_cnn"} <= set(MODELS)
    assert get_model("mlp", hidden=[7]).num_parameters() == 784 * 7 + 7 + 7 * 10 + 10
    with pytest.raises(ValueError, match=r"unknown model 'lenet6'; known models: .*lenet5.*small_cnn"):
        get_model("lenet6")


def test_same_seed_same_weights():
    a, b = lenet5(rng=3).state_dict(), lenet5(rng=3).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], lenet5(rng=4).state_dict()["0.weight"])


def test_lenet5_summary_numbers(capsys):
    model = lenet5()
    model.train()
    result = handgrad.summary(model, (1, 28, 28))
    printed = capsys.readouterr().out
    assert (result.total_weights, result.total_biases, result.total_params) == (44_190, 236, 44_426)
    assert [r.params for r in result.rows if r.params] == [156, 2_416, 30_840, 10_164, 850]
    assert [r.output_shape for r in result.rows][:3] == [(6, 24, 24), (6, 12, 12), (6, 12, 12)]  # conv, pool, ReLU
    assert result.rows[0].input_shape == (1, 28, 28) and result.rows[-1].output_shape == (10,)
    assert len(result.rows) == 12
    last = printed.strip().splitlines()[-1].split()
    assert last == ["Total", "44,190", "236", "44,426"]
    assert "0 Conv2d" in printed and "7 Linear" in printed
    assert model.training and all(m.training for m in model), "summary restores the training mode"
    assert "forward" not in model[0].__dict__, "summary removes its recording wrappers"


def test_summary_of_a_single_layer_and_bad_shape():
    result = handgrad.summary(handgrad.nn.Conv2d(3, 4, 3), (3, 8, 8), print_table=False)
    assert [(r.weights, r.biases, r.output_shape) for r in result.rows] == [(108, 4, (4, 6, 6))]
    with pytest.raises(ValueError, match=r"summary: input_shape must be positive"):
        handgrad.summary(lenet5(), (0, 28, 28))
    with pytest.raises(ValueError, match=r"Conv2d: expected 1 input channels, got 3"):
        handgrad.summary(lenet5(), (3, 28, 28))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "handgrad", *args], capture_output=True, text=True, timeout=120)


def test_cli_summary():
    proc = run_cli("summary", "lenet5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].split() == ["Total", "44,190", "236", "44,426"]
    proc = run_cli("summary", "mlp", "--input-shape", "1", "28", "28")
    assert proc.returncode == 0, proc.stderr
    assert "1x28x28" in proc.stdout and "269,322" in proc.stdout


def test_cli_summary_unknown_model():
    proc = run_cli("summary", "resnet")
    assert proc.returncode == 2
    assert "unknown model 'resnet'; known models:" in proc.stderr and "lenet5" in proc.stderr


@pytest.mark.parametrize("name", sorted(MODELS))
def test_summary_totals_are_all_of_a_models_parameters(name):
    model = get_model(name)
    result = handgrad.summary(model, print_table=False)
    assert result.total_params == sum(p.data.size for p in model.parameters())


def textbook_order(model):
    """The same layers with every (MaxPool2d, ReLU) pair put back in the textbook order ReLU, pool."""
    layers = list(model)
    for i in range(len(layers) - 1):
        if isinstance(layers[i], handgrad.nn.MaxPool2d) and isinstance(layers[i + 1], handgrad.nn.ReLU):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    assert layers != list(model)
    return handgrad.nn.Sequential(*layers)


@pytest.mark.parametrize("name", ["lenet5", "small_cnn"])
def test_pool_then_relu_is_bitwise_the_textbook_relu_then_pool(name):
    """The zoo pools before ReLU (a quarter of the ReLU work); ReLU commutes with max,
    so outputs, gradients and three SGD steps must equal the textbook order's bit for bit,
    with a window of all-negative values (no gradient either way) among the inputs."""
    x = np.random.default_rng(0).standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = np.arange(8) % 10
    runs = []
    for reorder in (False, True):
        handgrad.manual_seed(3)
        model = get_model(name, input_grad=True)
        model = textbook_order(model) if reorder else model
        opt = handgrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss_fn, outs = CrossEntropyLoss(), []
        for _ in range(3):
            outs.append(model(x))
            loss_fn(outs[-1], y)
            opt.zero_grad()
            outs.append(model.backward(loss_fn.backward()))
            opt.step()
        runs.append((outs, model.state_dict()))
    (outs, weights), (ref_outs, ref_weights) = runs
    for a, b in zip(outs, ref_outs):
        assert (a is None and b is None) or np.array_equal(a, b)
    for k in ref_weights:
        assert np.array_equal(weights[k], ref_weights[k]), k
