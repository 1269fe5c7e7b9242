"""MaxPool2d, AvgPool2d, MaxPool1d: PyTorch oracle (float32, ties included), finite differences, bad input."""
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given
from hypothesis import strategies as st

from handgrad import nn
from handgrad.gradcheck import check_module
from handgrad.ops import chunks, max_pool2d_backward, max_pool2d_forward
from oracle import assert_close, t


def assert_gradients_match(module, x):
    """Finite differences (float64) agree with backward for the input and every parameter."""
    report = check_module(module, x)
    assert max(report.values()) < 1e-6, report


def tf_same(size, kernel, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@st.composite
def pool2d_cases(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = draw(st.one_of(
        st.tuples(st.integers(0, kernel[0] // 2), st.integers(0, kernel[1] // 2)), st.sampled_from(["valid", "same"])
    ))
    pads = (0, 0) if isinstance(padding, str) else padding
    if padding != "same":
        assume(h + 2 * pads[0] >= kernel[0] and w + 2 * pads[1] >= kernel[1])
    ties = draw(st.booleans())  # small integers: many equal values in a window
    return (n, c, h, w), dict(kernel_size=kernel, stride=stride, padding=padding), ties


def torch_pool(fn, x, args, pad_value):
    kernel, stride, padding = args["kernel_size"], args["stride"] or args["kernel_size"], args["padding"]
    if padding == "same":
        (top, bottom), (left, right) = (tf_same(s, k, st_) for s, k, st_ in zip(x.shape[2:], kernel, stride))
        x = TF.pad(x, (left, right, top, bottom), value=pad_value)
        padding = 0
    elif padding == "valid":
        padding = 0
    return fn(x, kernel, stride, padding)


def run_oracle(layer, fn, shape, args, ties, pad_value, rng):
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(np.float32)
    out = layer(x)
    tx = t(x, True)
    ref = torch_pool(fn, tx, args, pad_value)
    assert out.shape == tuple(ref.shape)
    assert_close(out, ref, 1e-5, "out")
    dout = rng.standard_normal(out.shape).astype(np.float32)
    ref.backward(t(dout))
    assert_close(layer.backward(dout), tx.grad, 1e-5, "dx")


@given(pool2d_cases())
def test_max_pool2d_matches_torch(case):
    shape, args, ties = case
    run_oracle(nn.MaxPool2d(**args), TF.max_pool2d, shape, args, ties, -np.inf, np.random.default_rng(0))


@given(pool2d_cases())
def test_max_pool2d_a_sample_at_a_time_matches_torch(case):
    """Max pooling runs a chunk of samples at a time; chunks of one sample give PyTorch's numbers too."""
    (n, c, h, w), args, ties = case
    with mock.patch.object(chunks, "CHUNK_BYTES", 1):
        run_oracle(nn.MaxPool2d(**args), TF.max_pool2d, (n + 1, c, h, w), args, ties, -np.inf,
                   np.random.default_rng(0))


def test_max_pool2d_chunks_change_nothing():
    """Every sample is pooled alone: outputs and gradients in any chunks are bitwise the
    whole batch's (overlapping windows, padding and ties included), and an empty batch works."""
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (7, 3, 9, 8)).astype(np.float32)
    for kernel, stride, padding in (((2, 2), (2, 2), ((0, 0), (0, 0))), ((3, 2), (1, 2), ((1, 1), (0, 1)))):
        out, cache = max_pool2d_forward(x, kernel, stride, padding)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        dx = max_pool2d_backward(dout, cache)
        for size in (1, 2, 3):
            with mock.patch.object(chunks, "CHUNK_BYTES", size * x[0].nbytes):
                out_c, cache_c = max_pool2d_forward(x, kernel, stride, padding)
                np.testing.assert_array_equal(out_c, out)
                np.testing.assert_array_equal(max_pool2d_backward(dout, cache_c), dx)
        empty, cache = max_pool2d_forward(x[:0], kernel, stride, padding)
        assert empty.shape == (0,) + out.shape[1:]
        assert max_pool2d_backward(empty, cache).shape == (0,) + x.shape[1:]
        no_channels, cache = max_pool2d_forward(x[:, :0], kernel, stride, padding)
        assert no_channels.shape == (7, 0) + out.shape[2:]
        assert max_pool2d_backward(no_channels, cache).shape == (7, 0) + x.shape[2:]


@given(pool2d_cases())
def test_avg_pool2d_matches_torch(case):
    shape, args, ties = case
    run_oracle(nn.AvgPool2d(**args), TF.avg_pool2d, shape, args, ties, 0.0, np.random.default_rng(0))


@given(pool2d_cases())
def test_pool2d_finite_differences(case):
    shape, args, _ = case
    rng = np.random.default_rng(1)
    # distinct, well separated values, so no window maximum is within eps of a tie
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) * 0.01
    assert_gradients_match(nn.MaxPool2d(**args), x)
    assert_gradients_match(nn.AvgPool2d(**args), x)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 12), st.integers(1, 4), st.integers(1, 3),
       st.integers(0, 2), st.booleans())
def test_max_pool1d_matches_torch(n, c, length, kernel, stride, padding, ties):
    assume(2 * padding <= kernel and length + 2 * padding >= kernel)
    rng = np.random.default_rng(2)
    x = (rng.integers(-2, 3, (n, c, length)) if ties else rng.standard_normal((n, c, length))).astype(np.float32)
    layer = nn.MaxPool1d(kernel, stride, padding)
    out = layer(x)
    tx = t(x, True)
    ref = TF.max_pool1d(tx, kernel, stride, padding)
    assert_close(out, ref, 1e-5)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    ref.backward(t(dout))
    assert_close(layer.backward(dout), tx.grad, 1e-5)


def test_max_pool_ties_go_to_first_position():
    x = np.array([[[[1.0, 3.0, 3.0], [3.0, 0.0, 3.0]]]], dtype=np.float32)
    pool = nn.MaxPool2d((2, 3))
    assert pool(x).item() == 3.0
    dx = pool.backward(np.ones((1, 1, 1, 1), np.float32))
    np.testing.assert_array_equal(dx, [[[[0, 1, 0], [0, 0, 0]]]])


def test_overlapping_windows_add_up():
    x = np.array([[[[0.0, 5.0, 0.0, 0.0]]]], dtype=np.float32)
    pool = nn.MaxPool2d((1, 3), stride=1)
    np.testing.assert_array_equal(pool(x), [[[[5.0, 5.0]]]])
    np.testing.assert_array_equal(pool.backward(np.array([[[[1.0, 2.0]]]], np.float32)), [[[[0, 3, 0, 0]]]])


def test_pool_bad_input():
    with pytest.raises(ValueError, match=r"MaxPool2d: expected a 4-D input \(N, C, H, W\), got shape \(4, 4\)"):
        nn.MaxPool2d(2)(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"MaxPool2d: stride must be >= 1"):
        nn.MaxPool2d(2, stride=0)
    with pytest.raises(ValueError, match=r"AvgPool2d: padding must be at most half the kernel size"):
        nn.AvgPool2d(2, padding=2)
    with pytest.raises(ValueError, match=r"MaxPool2d: input shape \(1, 1, 1, 1\): kernel larger than the padded input"):
        nn.MaxPool2d(2)(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match=r"MaxPool1d: expected a 3-D input"):
        nn.MaxPool1d(2)(np.zeros((1, 1, 4, 4), np.float32))
