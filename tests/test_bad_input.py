"""Wrong input gets a clear error naming the layer, what it expected and what it got."""
import numpy as np
import pytest

from handgrad import nn


def test_linear_wrong_rank():
    with pytest.raises(ValueError, match=r"Linear: expected an input \(N, in_features\).* of rank >= 2, got shape \(5,\)"):
        nn.Linear(5, 3)(np.zeros(5, np.float32))


def test_linear_wrong_feature_size():
    with pytest.raises(ValueError, match=r"Linear: expected 5 input features per sample, got 4 \(input shape \(3, 4\)\)"):
        nn.Linear(5, 3)(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected 12 input features per sample, got 8 \(input shape \(2, 2, 2, 2\)\)"):
        nn.Linear(12, 3)(np.zeros((2, 2, 2, 2), np.float32))


def test_linear_bad_sizes():
    with pytest.raises(ValueError, match="Linear: in_features must be a positive integer, got 0"):
        nn.Linear(0, 3)


@pytest.mark.parametrize("labels,match", [
    ([0, 1, 3], r"CrossEntropyLoss: labels must be in \[0, 3\), got 3"),
    ([0, -1, 2], r"CrossEntropyLoss: labels must be in \[0, 3\), got -1"),
])
def test_labels_out_of_range(labels, match):
    with pytest.raises(ValueError, match=match):
        nn.CrossEntropyLoss()(np.zeros((3, 3), np.float32), np.array(labels))


def test_float_labels():
    with pytest.raises(TypeError, match="CrossEntropyLoss: labels must be integers, got dtype float64"):
        nn.CrossEntropyLoss()(np.zeros((3, 3), np.float32), np.array([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_in_logits(bad):
    logits = np.zeros((2, 3), np.float32)
    logits[1, 2] = bad
    with pytest.raises(ValueError, match="CrossEntropyLoss: logits contain NaN or inf"):
        nn.CrossEntropyLoss()(logits, np.array([0, 1]))


def test_nan_in_target_distribution_and_mse_input():
    target = np.full((2, 3), 1 / 3)
    target[0, 0] = np.nan
    with pytest.raises(ValueError, match="CrossEntropyLoss: targets contain NaN or inf"):
        nn.CrossEntropyLoss()(np.zeros((2, 3)), target)
    with pytest.raises(ValueError, match="MSELoss: inputs contain NaN or inf"):
        nn.MSELoss()(np.array([1.0, np.nan]), np.zeros(2))


def test_cross_entropy_shapes():
    ce = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, C\), got shape \(6,\)"):
        ce(np.zeros(6), np.array([0]))
    with pytest.raises(ValueError, match="CrossEntropyLoss: 4 logits rows but 3 labels"):
        ce(np.zeros((4, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"target must be labels \(N,\) or a distribution \(N, C\) = \(4, 3\), got shape \(4, 2\)"):
        ce(np.zeros((4, 3)), np.zeros((4, 2)))


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match=r"MSELoss: input shape \(3, 2\) and target shape \(2, 3\) differ"):
        nn.MSELoss()(np.zeros((3, 2)), np.zeros((2, 3)))


@pytest.mark.parametrize("make,exc,match", [
    (lambda: nn.CrossEntropyLoss("max"), ValueError, "CrossEntropyLoss: reduction must be 'mean' or 'sum', got 'max'"),
    (lambda: nn.MSELoss("none"), ValueError, "MSELoss: reduction must be 'mean' or 'sum', got 'none'"),
    (lambda: nn.Dropout(1.0), ValueError, r"Dropout: p must be in \[0, 1\), got 1.0"),
    (lambda: nn.Dropout(-0.1), ValueError, r"Dropout: p must be in \[0, 1\), got -0.1"),
    (lambda: nn.Sequential(nn.ReLU(), np.zeros(3)), TypeError, "Sequential: argument 1 is a ndarray, not a Module"),
])
def test_bad_construction(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("layer", [nn.Softmax, nn.LogSoftmax])
def test_softmax_dim_out_of_range(layer):
    with pytest.raises(ValueError, match=rf"{layer.__name__}: dim=2 is out of range for an input of shape \(3, 4\)"):
        layer(dim=2)(np.zeros((3, 4)))


def mlp():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def test_load_state_dict_missing_and_unexpected_keys():
    model = mlp()
    state = model.state_dict()
    del state["2.bias"]
    state["5.weight"] = np.zeros(2)
    with pytest.raises(KeyError, match=r"Sequential.load_state_dict: missing keys \['2.bias'\], unexpected keys \['5.weight'\]"):
        model.load_state_dict(state)


def test_load_state_dict_non_strict_loads_the_rest():
    model = mlp()
    state = {"0.weight": np.ones((3, 4)), "extra": np.zeros(1)}
    model.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(model[0].weight.data, np.ones((3, 4)))


def test_load_state_dict_shape_mismatch_changes_nothing():
    model = mlp()
    before = model.state_dict()
    state = {k: np.full_like(v, 7.0) for k, v in before.items()}
    state["2.weight"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"shape mismatch for '2.weight': expected \(2, 3\), got \(3, 2\)"):
        model.load_state_dict(state)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_module_without_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.w = 1

    with pytest.raises(RuntimeError, match=r"Broken: call super\(\).__init__\(\) before assigning attributes"):
        Broken()
