"""The scalar network agrees with handgrad.nn and with finite differences, and learns."""
import math

import numpy as np
import pytest

from handgrad import nn, optim, scalar

EXAMPLE = {
    "x": [1.0, -1.0],
    "W": [[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]],
    "b": [0.0, 0.0, 0.0],
    "V": [[1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]],
    "c": [0.0, 0.0],
    "y": 0,
}


def handgrad_version(W, b, V, c, x, y):
    """The same network in handgrad.nn (float64): loss and gradients laid out like the scalar code's."""
    model = nn.Sequential(nn.Linear(2, 3, dtype=np.float64), nn.Sigmoid(), nn.Linear(3, 2, dtype=np.float64))
    model.load_state_dict({"0.weight": np.array(W).T, "0.bias": np.array(b),
                           "2.weight": np.array(V).T, "2.bias": np.array(c)})
    criterion = nn.CrossEntropyLoss()
    loss = criterion(model(np.array([x])), np.array([y]))
    dx = model.backward(criterion.backward())
    grads = {"W": model[0].weight.grad.T, "b": model[0].bias.grad, "V": model[2].weight.grad.T,
             "c": model[2].bias.grad, "x": dx[0]}
    return loss, grads


def test_worked_example_by_hand():
    """z_j = 1 + 1 = 2, h_j = sigmoid(2), both scores s_k = h - h - h = -h: p = (1/2, 1/2)."""
    e = EXAMPLE
    loss, cache = scalar.forward(e["x"], e["W"], e["b"], e["V"], e["c"], e["y"])
    h = 1 / (1 + math.exp(-2))
    assert cache["h"] == pytest.approx([h] * 3, rel=1e-15)
    assert cache["p"] == pytest.approx([0.5, 0.5], rel=1e-15)
    assert loss == pytest.approx(math.log(2), rel=1e-15)
    grads = scalar.backward(cache)
    assert grads["c"] == pytest.approx([-0.5, 0.5], rel=1e-15)
    assert grads["V"] == [pytest.approx([-0.5 * h, 0.5 * h], rel=1e-15)] * 3
    # each hidden unit feeds both outputs with equal weights, so dL/dh = -1/2 v + 1/2 v = 0
    assert grads["W"] == [[0.0] * 3] * 2 and grads["b"] == [0.0] * 3 and grads["x"] == [0.0, 0.0]


def params_of(e):
    return e["W"], e["b"], e["V"], e["c"]


@pytest.mark.parametrize("seed", [None, 0, 1, 2])
def test_scalar_matches_handgrad_nn(seed):
    if seed is None:
        W, b, V, c = params_of(EXAMPLE)
        x, y = EXAMPLE["x"], EXAMPLE["y"]
    else:
        rng = np.random.default_rng(seed)
        W, b, V, c = (rng.standard_normal(s).tolist() for s in [(2, 3), 3, (3, 2), 2])
        x, y = rng.standard_normal(2).tolist(), int(rng.integers(2))
    loss, cache = scalar.forward(x, W, b, V, c, y)
    grads = scalar.backward(cache)
    ref_loss, ref_grads = handgrad_version(W, b, V, c, x, y)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name in ("W", "b", "V", "c", "x"):
        np.testing.assert_allclose(np.array(grads[name]), ref_grads[name], rtol=1e-12, atol=1e-15, err_msg=name)


def test_scalar_backward_matches_finite_differences():
    rng = np.random.default_rng(7)
    values = {"W": rng.standard_normal((2, 3)).tolist(), "b": rng.standard_normal(3).tolist(),
              "V": rng.standard_normal((3, 2)).tolist(), "c": rng.standard_normal(2).tolist(),
              "x": rng.standard_normal(2).tolist()}

    def loss():
        return scalar.forward(values["x"], values["W"], values["b"], values["V"], values["c"], 1)[0]

    grads = scalar.backward(scalar.forward(values["x"], values["W"], values["b"], values["V"], values["c"], 1)[1])
    h = 1e-6
    for name, value in values.items():
        flat = [(value, i) for i in range(len(value))] if not isinstance(value[0], list) else \
            [(row, j) for row in value for j in range(len(row))]
        numeric = []
        for holder, j in flat:
            old = holder[j]
            holder[j] = old + h
            plus = loss()
            holder[j] = old - h
            minus = loss()
            holder[j] = old
            numeric.append((plus - minus) / (2 * h))
        np.testing.assert_allclose(np.ravel(grads[name]), numeric, rtol=1e-6, atol=1e-9, err_msg=name)


def test_sgd_step_matches_handgrad_optimizer():
    rng = np.random.default_rng(3)
    params = {"W": rng.standard_normal((2, 3)).tolist(), "b": [0.0] * 3,
              "V": rng.standard_normal((3, 2)).tolist(), "c": [0.0] * 2}
    x, y = [0.5, -1.5], 1
    model = nn.Sequential(nn.Linear(2, 3, dtype=np.float64), nn.Sigmoid(), nn.Linear(3, 2, dtype=np.float64))
    model.load_state_dict({"0.weight": np.array(params["W"]).T, "0.bias": np.zeros(3),
                           "2.weight": np.array(params["V"]).T, "2.bias": np.zeros(2)})
    opt, criterion = optim.SGD(model.parameters(), lr=0.3), nn.CrossEntropyLoss()
    for _ in range(5):
        _, cache = scalar.forward(x, params["W"], params["b"], params["V"], params["c"], y)
        scalar.sgd_step(params, scalar.backward(cache), 0.3)
        criterion(model(np.array([x])), np.array([y]))
        opt.zero_grad()
        model.backward(criterion.backward())
        opt.step()
    np.testing.assert_allclose(np.array(params["W"]), model[0].weight.data.T, rtol=1e-12)
    np.testing.assert_allclose(np.array(params["c"]), model[2].bias.data, rtol=1e-12, atol=1e-15)


def test_scalar_training_separates_two_blobs():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal((-1.5, -1.0), 0.7, (40, 2)), rng.normal((1.5, 1.0), 0.7, (40, 2))])
    classes = [0] * 40 + [1] * 40
    order = rng.permutation(80)
    examples = [(points[i].tolist(), classes[i]) for i in order]
    params = scalar.init_params(seed=0)
    history = scalar.train(examples, params, lr=0.5, epochs=20)
    assert history[-1] < 0.5 * history[0]
    accuracy = sum(scalar.predict(x, params) == y for x, y in examples) / len(examples)
    assert accuracy >= 0.95
