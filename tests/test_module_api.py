"""The Module API: names like torch's, train/eval, gradients, dtypes."""
import numpy as np
import pytest
import torch

import handgrad
from handgrad import nn


def pair():
    ours = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Dropout(0.2),
                         nn.Sequential(nn.Linear(5, 4, bias=False), nn.Tanh()), nn.Linear(4, 3), nn.LogSoftmax(dim=1))
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                 torch.nn.Sequential(torch.nn.Linear(5, 4, bias=False), torch.nn.Tanh()),
                                 torch.nn.Linear(4, 3), torch.nn.LogSoftmax(dim=1))
    return ours, theirs


def test_names_and_shapes_match_torch():
    ours, theirs = pair()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters()) == 6 * 5 + 5 + 5 * 4 + 4 * 3 + 3
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]


def test_state_dict_is_a_copy():
    model = nn.Linear(2, 2)
    state = model.state_dict()
    state["weight"][...] = 99
    assert not (model.weight.data == 99).any()


def test_train_eval_reaches_every_module():
    ours, _ = pair()
    assert ours.eval() is ours
    assert all(not m.training for _, m in ours.named_modules())
    ours.train()
    assert all(m.training for _, m in ours.named_modules())
    x = np.ones((2, 6), np.float32)
    ours.eval()
    np.testing.assert_array_equal(ours(x), ours(x))


def test_backward_accumulates_and_zero_grad_clears():
    model = nn.Sequential(nn.Linear(3, 2), nn.Sigmoid())
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    dout = np.ones((4, 2), np.float32)
    model(x)
    model.backward(dout)
    once = [p.grad.copy() for p in model.parameters()]
    model(x)
    model.backward(dout)
    for g, p in zip(once, model.parameters()):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-6)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_zero_grad_then_backward_gives_one_gradient_whoever_reads_first():
    """zero_grad only marks the gradients; what backward adds next must be the
    gradient alone, whether or not the zeros were read (written) in between. An
    array read from grad before zero_grad keeps that gradient (as a tensor does
    in PyTorch after zero_grad(set_to_none=True)) unless the zeros were read."""
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    dout = np.random.default_rng(1).standard_normal((4, 2)).astype(np.float32)
    model(x)
    model.backward(dout)
    once = [p.grad.copy() for p in model.parameters()]
    for scale, read_between in ((2, False), (4, True), (8, False)):  # a new gradient each time, exactly scale * once
        held = [p.grad for p in model.parameters()]
        previous = [h.copy() for h in held]
        model.zero_grad()
        if read_between:
            assert all(not p.grad.any() for p in model.parameters())
        model(x)
        model.backward(scale * dout)
        for g, p, h, old in zip(once, model.parameters(), held, previous):
            np.testing.assert_array_equal(p.grad, scale * g)
            np.testing.assert_array_equal(h, p.grad if read_between else old)
    model.zero_grad()
    model(x)
    model.backward(dout)
    model(x)
    model.backward(dout)  # no zero_grad: the second gradient adds to the first, in the array grad is
    for g, p in zip(once, model.parameters()):
        np.testing.assert_array_equal(p.grad, 2 * g)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


class _OtherArray(np.ndarray):
    pass


def test_add_grad_takes_a_fresh_array_and_copies_anything_else():
    """After zero_grad, add_grad keeps a fresh array of the gradient's kind as the
    gradient (no copy) and copies anything another array may still own or write."""
    p = nn.Parameter(np.zeros((2, 3), np.float32))
    fresh = np.arange(6, dtype=np.float32).reshape(2, 3) + 1  # a new array owning its memory
    p.zero_grad()
    p.add_grad(fresh)
    assert p.grad is fresh
    block = np.ones((4, 3), np.float32)
    others = {
        "a view of another array": block[:2],
        "another dtype": np.ones((2, 3), np.float64),
        "Fortran order": np.asfortranarray(np.ones((2, 3), np.float32)),
        "a broadcastable shape": np.ones((1, 3), np.float32),
        "another array type": np.ones((2, 3), np.float32).view(_OtherArray).copy(),  # fresh, but not grad's type
    }
    for what, g in others.items():
        before = p.grad
        p.zero_grad()
        p.add_grad(g)
        assert p.grad is before and p.grad is not g, what
        np.testing.assert_array_equal(p.grad, np.broadcast_to(g, (2, 3)), err_msg=what)
    p.grad[...] = 5
    assert not (block != 1).any()  # writing the gradient never writes the array it was copied from
    bias = nn.Parameter(np.zeros(2, np.float32))
    bias.zero_grad()
    with pytest.raises(ValueError):  # as bias.grad += g would: a gradient of the wrong shape is an error
        bias.add_grad(np.ones((1, 2), np.float32))


def test_default_dtype_float64():
    try:
        handgrad.set_default_dtype("float64")
        assert handgrad.get_default_dtype() == np.float64
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        assert all(p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in model.parameters())
        assert model(np.ones((2, 3))).dtype == np.float64
    finally:
        handgrad.set_default_dtype("float32")
    assert nn.Linear(3, 4).weight.data.dtype == np.float32
    with pytest.raises(ValueError, match="set_default_dtype: expected float32 or float64, got int32"):
        handgrad.set_default_dtype("int32")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_layer_preserves_dtype(dtype):
    layers = [nn.Linear(4, 4, dtype=dtype), nn.ReLU(), nn.LeakyReLU(), nn.Sigmoid(), nn.Tanh(),
              nn.Softmax(dim=1), nn.LogSoftmax(dim=1), nn.Dropout(0.5), nn.Flatten()]
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    for layer in layers:
        out = layer(x)
        assert out.dtype == dtype, type(layer).__name__
        assert layer.backward(np.ones_like(out)).dtype == dtype, type(layer).__name__
    for loss, target in [(nn.CrossEntropyLoss(), np.array([0, 1, 3])), (nn.MSELoss(), np.zeros((3, 4)))]:
        loss(x, target)
        assert loss.backward().dtype == dtype


def test_astype_casts_parameters_and_grads():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)).astype(np.float64)
    assert all(p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in model.parameters())


def test_manual_seed_makes_initialisation_reproducible():
    handgrad.manual_seed(5)
    a = nn.Linear(4, 3).weight.data.copy()
    handgrad.manual_seed(5)
    np.testing.assert_array_equal(a, nn.Linear(4, 3).weight.data)


def test_repr_shows_the_tree():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.1)))
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in text
    assert "(1): LeakyReLU(negative_slope=0.1)" in text


def test_no_grad_keeps_nothing_for_backward_and_says_so():
    model = handgrad.models.lenet5()
    model.eval()
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    expected = model(x)
    assert handgrad.is_grad_enabled()
    with handgrad.no_grad():
        assert not handgrad.is_grad_enabled()
        out = model(x)
    assert handgrad.is_grad_enabled()
    np.testing.assert_array_equal(out, expected)
    assert not any("_cache" in vars(m) for _, m in model.named_modules())
    assert not hasattr(model[0], "_cache")
    with pytest.raises(AttributeError, match=r"^Linear\.backward: no forward pass to go back through .*no_grad"):
        model.backward(np.ones_like(out))
    model(x)  # outside no_grad again: backward works
    model.backward(np.ones_like(out))


@pytest.mark.parametrize("training", [True, False])
def test_an_lstm_under_no_grad_computes_the_same_and_keeps_nothing(training):
    # training mode, and eval mode under no_grad, read the ids through the fused embedding
    # kernel; eval mode with gradients runs Embedding then LSTM (the same function,
    # rounded differently): each kernel skips what only backward needs under no_grad
    model = handgrad.models.char_lstm(vocab_size=20, hidden_size=16, embedding_dim=12)
    model.train(training)
    x = np.random.default_rng(2).integers(0, 20, size=(5, 7))
    expected_direct = model.lstm(model.embedding(x))[0]
    expected = model(x)
    with handgrad.no_grad():
        out = model(x)
        call_direct = model.lstm.forward(model.embedding(x))[0]  # forward itself, not through __call__
    if training:
        np.testing.assert_array_equal(out, expected)
    else:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(call_direct, expected_direct)
    assert [name for name, m in model.named_modules() if "_cache" in vars(m)] == []
    with pytest.raises(AttributeError, match=r"^LSTM\.backward: no forward pass to go back through"):
        model.lstm.backward(np.ones_like(call_direct))


def test_no_grad_is_undone_by_an_exception_and_nests():
    with pytest.raises(ValueError):
        with handgrad.no_grad():
            raise ValueError
    assert handgrad.is_grad_enabled()
    with handgrad.no_grad():
        with handgrad.no_grad():
            pass
        assert not handgrad.is_grad_enabled()
    assert handgrad.is_grad_enabled()


def test_evaluation_and_prediction_leave_no_backward_caches():
    from handgrad.train import evaluate, predict_logits

    model, loss = handgrad.models.cnn(), nn.CrossEntropyLoss()
    x = np.random.default_rng(1).random((10, 1, 28, 28), dtype=np.float32)
    y = np.arange(10)
    loss(model(x), y)  # a training pass: caches everywhere
    predict_logits(model, x, batch_size=4)
    evaluate(model, loss, (x, y), batch_size=4)
    assert [name for name, m in model.named_modules() if "_cache" in vars(m)] == []
    assert "_cache" not in vars(loss)
