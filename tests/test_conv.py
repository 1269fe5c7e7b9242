"""Conv1d / Conv2d (grouped too): finite differences (float64), PyTorch oracle (float32), shapes and bad input.

Most tests run twice, once in each layout of the products (``layout``): im2col
(:mod:`handgrad.ops.conv`) and im2row (:mod:`handgrad.ops.im2row`, which the
layer picks for small images with many channels)."""
import contextlib
import math
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given
from hypothesis import strategies as st

from handgrad import nn
from handgrad.gradcheck import check_module, check_op
from handgrad.ops import chunks, im2row
from handgrad.ops import conv2d_backward, conv2d_forward
from handgrad.shapes import conv_output_size
from oracle import assert_close, t


def assert_gradients_match(module, x):
    """Finite differences (float64) agree with backward for the input and every parameter."""
    report = check_module(module, x)
    assert max(report.values()) < 1e-6, report

LAYOUTS = {"im2col": dict(MAX_COLUMNS=-1), "im2row": dict(MAX_COLUMNS=1 << 30, MIN_RUN=0)}  # the rule's limits
layouts = pytest.mark.parametrize("layout", list(LAYOUTS))


@contextlib.contextmanager
def forced(layout):
    """Every ungrouped convolution in ``layout`` (grouped ones are always im2col)."""
    with mock.patch.multiple(im2row, **LAYOUTS[layout]):
        yield


sizes = st.integers(1, 3)
groups = st.sampled_from([1, 1, 2, 3])  # half the cases grouped; groups = in_channels (depthwise) when c per group is 1


def tf_same(size, kernel, stride, dilation):
    """TensorFlow's 'same' padding, written out independently of the library."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


@st.composite
def conv2d_cases(draw):
    g = draw(groups)
    n, c, f = draw(sizes), g * draw(sizes), g * draw(sizes)
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(
        st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)), st.sampled_from(["valid", "same"])
    ))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    pads = (padding, padding) if isinstance(padding, int) else padding
    if padding == "valid":
        pads = (0, 0)
    if padding != "same":
        assume(all(s + 2 * p >= d * (k - 1) + 1 for s, p, d, k in zip((h, w), pads, dilation, kernel)))
    # PyTorch's own 'same' is defined for stride 1 only; for the int forms pass ints when they are equal
    to_arg = draw(st.booleans())
    args = dict(
        kernel_size=kernel[0] if to_arg and kernel[0] == kernel[1] else kernel,
        stride=stride[0] if to_arg and stride[0] == stride[1] else stride,
        dilation=dilation,
        padding=padding,
        groups=g,
        bias=draw(st.booleans()),
    )
    return (n, c, h, w, f), args


def torch_conv2d(x, weight, bias, args):
    """PyTorch's conv2d with TensorFlow-style 'same' done as explicit asymmetric padding."""
    stride = args["stride"] if isinstance(args["stride"], tuple) else (args["stride"],) * 2
    padding = args["padding"]
    if padding == "same":
        k = weight.shape[2:]
        (top, bottom), (left, right) = (tf_same(s, kk, st_, d) for s, kk, st_, d in
                                        zip(x.shape[2:], k, stride, args["dilation"]))
        x = TF.pad(x, (left, right, top, bottom))
        padding = 0
    return TF.conv2d(x, weight, bias, stride, padding, args["dilation"], args.get("groups", 1))


def assert_matches_torch(layer, x, torch_forward, rng):
    """Forward, dx, dW and db of ``layer`` equal ``torch_forward(x, weight, bias)`` with copied weights."""
    out = layer(x)
    tx, tw = t(x, True), t(layer.weight.data, True)
    tb = t(layer.bias.data, True) if layer.bias is not None else None
    ref = torch_forward(tx, tw, tb)
    assert out.shape == tuple(ref.shape) and out.dtype == np.float32
    assert_close(out, ref, 1e-5, "out")
    dout = rng.standard_normal(out.shape).astype(np.float32)
    ref.backward(t(dout))
    assert_close(layer.backward(dout), tx.grad, 1e-5, "dx")
    assert_close(layer.weight.grad, tw.grad, 1e-4, "dw")
    if tb is not None:
        assert_close(layer.bias.grad, tb.grad, 1e-4, "db")


@layouts
@given(conv2d_cases())
def test_conv2d_matches_torch(layout, case):
    (n, c, h, w, f), args = case
    rng = np.random.default_rng(0)
    layer = nn.Conv2d(c, f, rng=rng, **args)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    with forced(layout):
        assert_matches_torch(layer, x, lambda tx, tw, tb: torch_conv2d(tx, tw, tb, args), rng)


@layouts
@given(conv2d_cases())
def test_conv2d_a_sample_at_a_time_matches_torch(layout, case):
    """The kernels take the batch a chunk of samples at a time (columns built, and in
    backward built again, per chunk); chunks of one sample must give PyTorch's numbers too."""
    (n, c, h, w, f), args = case
    rng = np.random.default_rng(0)
    layer = nn.Conv2d(c, f, rng=rng, **args)
    x = rng.standard_normal((n + 1, c, h, w)).astype(np.float32)
    with mock.patch.object(chunks, "CHUNK_BYTES", 1), forced(layout):
        assert_matches_torch(layer, x, lambda tx, tw, tb: torch_conv2d(tx, tw, tb, args), rng)


@layouts
def test_chunks_change_only_the_order_of_the_weight_gradient_sum(layout, rng):
    """Outputs and input gradients are per sample: in im2col bitwise the same in any chunks
    (in im2row to rounding: a chunk is one product, whose row count BLAS may see); dW and db
    add the chunks' sums, so they agree to rounding. Chunks are equal but for the last."""
    same = np.testing.assert_array_equal if layout == "im2col" else \
        (lambda got, want: np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6))
    x = rng.standard_normal((7, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 2)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    args = ((2, 1), ((1, 2), (0, 1)), (1, 2))
    with forced(layout):
        out, cache = conv2d_forward(x, w, b, *args)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        whole = conv2d_backward(dout, cache)
    for size in (1, 2, 3, 6):
        per_sample = 3 * 2 * 3 * x.itemsize  # bytes of the columns or shifts of a sample are larger than this
        with mock.patch.object(chunks, "CHUNK_BYTES", size * per_sample), forced(layout):
            lengths = [(s.start, s.stop - s.start) for s in chunks.sample_chunks(np, 7, per_sample)]
            assert [start for start, _ in lengths] == list(range(0, 7, lengths[0][1]))  # consecutive
            assert max(m for _, m in lengths) <= size and len({m for _, m in lengths[:-1]}) <= 1
            out_c, cache_c = conv2d_forward(x, w, b, *args)
            dx, dw, db = conv2d_backward(dout, cache_c)
        same(out_c, out)
        same(dx, whole[0])
        np.testing.assert_allclose(dw, whole[1], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(db, whole[2], rtol=1e-5, atol=1e-5)
    with forced(layout):
        empty, cache = conv2d_forward(x[:0], w, b, *args)
        assert empty.shape == (0,) + out.shape[1:]
        assert [g.shape for g in conv2d_backward(empty, cache)] == [(0,) + x.shape[1:], w.shape, b.shape]


def test_only_numpy_itself_is_cut_into_chunks():
    """On a device (CuPy, or the strict stand-in for it, whose module is not NumPy) the
    whole batch is one chunk, in as few launches as possible; so is an empty batch."""
    import strict_backend

    assert chunks.sample_chunks(strict_backend.xp, 9, 1 << 30) == [slice(0, 9)]
    assert len(chunks.sample_chunks(np, 9, 1 << 30)) == 9
    assert chunks.sample_chunks(np, 0, 100) == [slice(0, 0)]


def test_layout_is_chosen_by_image_size_and_channels():
    """im2row for the cnn's 7 x 7 layer (48 -> 64 channels); im2col for its 28 x 28 and 14 x 14
    layers, for few channels (short runs: 4 channels x 3 kernel columns, or one column at a
    time with dilation) and for groups."""
    def chosen(c, size, groups=1, kernel=3, dilation=1):
        x = np.zeros((2, c, size, size), np.float32)
        w = np.zeros((4 * groups, c // groups, kernel, kernel), np.float32)
        _, cache = conv2d_forward(x, w, None, (1, 1), ((1, 1), (1, 1)), (dilation, dilation), groups)
        return "im2row" if isinstance(cache, im2row.Cache) else "im2col"

    assert chosen(48, 7) == chosen(64, 4) == chosen(16, 8) == chosen(8, 7) == "im2row"
    assert chosen(1, 28) == chosen(24, 14) == chosen(48, 28) == "im2col"
    assert chosen(4, 7) == chosen(48, 7, groups=2) == chosen(16, 7, dilation=2) == "im2col"


def test_layouts_agree(rng):
    """Both layouts compute the same sums, in another order: equal to float64 rounding."""
    x = rng.standard_normal((5, 6, 7, 8))
    w, b = rng.standard_normal((4, 6, 3, 2)), rng.standard_normal(4)
    args = ((2, 1), ((1, 0), (2, 1)), (1, 2))
    results = {}
    for layout in LAYOUTS:
        with forced(layout):
            out, cache = conv2d_forward(x, w, b, *args)
            results[layout] = (out,) + conv2d_backward(out ** 2, cache)
    for got, want in zip(results["im2row"], results["im2col"]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@layouts
def test_empty_images(layout, rng):
    """An image of zero height: the output is the padding's (the bias), dx empty, dW zero."""
    x = np.zeros((2, 8, 0, 5), np.float32)
    w, b = rng.standard_normal((3, 8, 3, 3)).astype(np.float32), np.arange(3, dtype=np.float32)
    with forced(layout):
        out, cache = conv2d_forward(x, w, b, (1, 1), ((2, 2), (1, 1)))
        dx, dw, db = conv2d_backward(np.ones(out.shape, np.float32), cache)
    assert out.shape == (2, 3, 2, 5) and (out == b[:, None, None]).all()
    assert dx.shape == x.shape and not dw.any() and (db == 20).all()


def test_placement_is_the_positions_inside():
    """im2row's input gradient puts output pixel i at start + stride*i, where inside the range."""
    for start in range(-7, 8):
        for stride in (1, 2, 3):
            for count in range(5):
                for length in range(8):
                    where, which = im2row._placement(start, stride, count, length)
                    inside = [i for i in range(count) if 0 <= start + stride * i < length]
                    assert list(range(count))[which] == inside
                    assert list(range(length))[where] == [start + stride * i for i in inside]


@layouts
def test_dtypes_promote_as_the_product_does(layout, rng):
    """The output has the dtype of W times the input (float64 weights on float32 or
    integer inputs give float64), dW that of the columns times dout, and dx dout's, whatever
    the chunks."""
    w = rng.standard_normal((4, 2, 3, 3))  # float64
    for x in (rng.standard_normal((3, 2, 6, 5)).astype(np.float32), rng.integers(0, 255, (3, 2, 6, 5), np.uint8),
              rng.standard_normal((3, 2, 6, 5))):
        for size in (1, 1 << 30):
            with mock.patch.object(chunks, "CHUNK_BYTES", size), forced(layout):
                out, cache = conv2d_forward(x, w, None, (1, 1), ((1, 1), (1, 1)))
                assert out.dtype == np.float64, x.dtype
                np.testing.assert_allclose(out, conv2d_forward(x.astype(np.float64), w, None, (1, 1),
                                                               ((1, 1), (1, 1)))[0], rtol=1e-12, atol=1e-9)
                dx, dw, _ = conv2d_backward(np.ones(out.shape, np.float32), cache)
                assert dw.dtype == np.result_type(x.dtype, np.float32), x.dtype
                assert dx.dtype == np.float32 and dx.shape == x.shape


@layouts
def test_zero_channels_and_filters(layout, rng):
    """Empty channel or filter axes give empty results of the right shapes, not errors."""
    for c, f in ((0, 2), (3, 0)):
        x = rng.standard_normal((2, c, 5, 5)).astype(np.float32)
        w = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
        with forced(layout):
            out, cache = conv2d_forward(x, w, None, (1, 1), ((1, 1), (1, 1)))
            dx, dw, _ = conv2d_backward(np.ones(out.shape, np.float32), cache)
        assert out.shape == (2, f, 5, 5)
        assert dx.shape == x.shape and dw.shape == w.shape
        assert not dx.any() and not dw.any()


@layouts
@given(conv2d_cases())
def test_conv2d_finite_differences(layout, case):
    (n, c, h, w, f), args = case
    rng = np.random.default_rng(1)
    layer = nn.Conv2d(c, f, rng=rng, dtype=np.float64, **args)
    with forced(layout):
        assert_gradients_match(layer, rng.standard_normal((n, c, h, w)))


@st.composite
def conv1d_cases(draw):
    g = draw(groups)
    n, c, f = draw(sizes), g * draw(sizes), g * draw(sizes)
    k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.one_of(st.integers(0, 3), st.sampled_from(["valid", "same"])))
    length = draw(st.integers(1, 12))
    p = padding if isinstance(padding, int) else 0
    if padding != "same":
        assume(length + 2 * p >= d * (k - 1) + 1)
    return (n, c, length, f), dict(kernel_size=k, stride=s, dilation=d, padding=padding, groups=g,
                                   bias=draw(st.booleans()))


@layouts
@given(conv1d_cases())
def test_conv1d_matches_torch(layout, case):
    (n, c, length, f), args = case
    rng = np.random.default_rng(2)
    layer = nn.Conv1d(c, f, rng=rng, **args)
    x = rng.standard_normal((n, c, length)).astype(np.float32)

    def torch_conv1d(tx, tw, tb):
        padding = args["padding"]
        if padding == "same":
            tx = TF.pad(tx, tf_same(length, args["kernel_size"], args["stride"], args["dilation"]))
            padding = 0
        return TF.conv1d(tx, tw, tb, args["stride"], padding, args["dilation"], args["groups"])

    with forced(layout):
        assert_matches_torch(layer, x, torch_conv1d, rng)


@layouts
@given(conv1d_cases())
def test_conv1d_finite_differences(layout, case):
    (n, c, length, f), args = case
    rng = np.random.default_rng(3)
    layer = nn.Conv1d(c, f, rng=rng, dtype=np.float64, **args)
    with forced(layout):
        assert_gradients_match(layer, rng.standard_normal((n, c, length)))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("size", [5, 6, 7, 28])
def test_same_padding_at_stride_1_is_torch_same(kernel, size, rng):
    layer = nn.Conv2d(2, 3, kernel, padding="same", dilation=(1, 2), rng=rng)
    ref = torch.nn.Conv2d(2, 3, kernel, padding="same", dilation=(1, 2))
    ref.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    x = rng.standard_normal((2, 2, size, size + 3)).astype(np.float32)
    out = layer(x)
    assert out.shape[2:] == x.shape[2:]
    assert_close(out, ref(t(x)), 1e-5)


@pytest.mark.parametrize("size,stride", [(7, 2), (8, 2), (28, 3), (5, 4)])
def test_same_padding_with_stride_gives_ceil(size, stride, rng):
    out = nn.Conv2d(1, 1, 3, stride=stride, padding="same", rng=rng)(np.zeros((1, 1, size, size), np.float32))
    assert out.shape[2:] == (math.ceil(size / stride),) * 2


def test_conv_output_size_formula():
    assert conv_output_size(28, 5) == 24
    assert conv_output_size(7, 3, stride=2, padding=1) == 4
    assert conv_output_size(10, 3, stride=1, padding=0, dilation=2) == 6
    assert conv_output_size(5, 2, stride=2, padding=(0, 1)) == 3
    for size, k, s, p, d in [(9, 3, 2, 1, 2), (1, 1, 1, 0, 1), (12, 4, 3, 2, 1)]:
        assert conv_output_size(size, k, s, p, d) == (size + 2 * p - d * (k - 1) - 1) // s + 1


def test_kernel_larger_than_input_states_formula_and_numbers():
    with pytest.raises(ValueError, match=r"D\(K-1\)\+1 = 2\*\(3-1\)\+1 = 5.*4\+0\+0 = 4"):
        conv_output_size(4, 3, 1, 0, 2)
    layer = nn.Conv2d(1, 2, 5)
    with pytest.raises(ValueError, match=r"Conv2d: input shape \(1, 1, 4, 8\): kernel larger than the padded input"):
        layer(np.zeros((1, 1, 4, 8), np.float32))


def test_bad_input_errors(rng):
    layer = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"Conv2d: expected 3 input channels, got 2"):
        layer(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d: expected a 4-D input \(N, C, H, W\), got shape \(3, 5, 5\)"):
        layer(np.zeros((3, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Conv1d: expected a 3-D input \(N, C, L\)"):
        nn.Conv1d(1, 1, 3)(np.zeros((1, 1, 5, 5), np.float32))
    for bad in (0, -1, (1, 0)):
        with pytest.raises(ValueError, match=r"Conv2d: stride must be >= 1"):
            nn.Conv2d(1, 1, 3, stride=bad)
    with pytest.raises(ValueError, match=r"Conv2d: kernel_size must be >= 1"):
        nn.Conv2d(1, 1, 0)
    with pytest.raises(ValueError, match=r"Conv2d: padding must be >= 0"):
        nn.Conv2d(1, 1, 3, padding=-1)
    with pytest.raises(ValueError, match=r"Conv2d: padding must be an int, a tuple, 'valid' or 'same', got 'full'"):
        nn.Conv2d(1, 1, 3, padding="full")
    with pytest.raises(ValueError, match=r"Conv1d: kernel_size must be an int or a tuple of 1 ints"):
        nn.Conv1d(1, 1, (3, 3))
    with pytest.raises(ValueError, match=r"Conv2d: in_channels must be a positive integer"):
        nn.Conv2d(0, 1, 3)


def test_weights_follow_torch_layout_and_names(rng):
    layer = nn.Conv2d(3, 5, (2, 4), bias=False)
    assert list(layer.state_dict()) == ["weight"] and layer.weight.shape == (5, 3, 2, 4)
    assert nn.Conv1d(3, 5, 7).weight.shape == (5, 3, 7)
    bound = 1 / math.sqrt(3 * 2 * 4)
    assert np.abs(layer.weight.data).max() <= bound


def test_dtype_preserved_and_backward_adds(rng):
    layer = nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64)
    x = rng.standard_normal((2, 2, 5, 5))
    out = layer(x)
    assert out.dtype == np.float64
    dout = np.ones_like(out)
    layer.backward(dout)
    once = layer.weight.grad.copy()
    layer(x)
    layer.backward(dout)
    np.testing.assert_allclose(layer.weight.grad, 2 * once)


@layouts
@pytest.mark.parametrize("layer_cls,shape", [(nn.Conv2d, (2, 3, 6, 5)), (nn.Conv1d, (2, 3, 7))])
def test_input_grad_false_skips_dx_only(layer_cls, shape, layout, rng):
    full = layer_cls(3, 4, 3, padding=1, rng=0)
    fast = layer_cls(3, 4, 3, padding=1, input_grad=False, rng=0)
    x = rng.standard_normal(shape).astype(np.float32)
    with forced(layout):
        dout = rng.standard_normal(full(x).shape).astype(np.float32)
        fast(x)
        assert full.backward(dout).shape == x.shape
        assert fast.backward(dout) is None
    np.testing.assert_array_equal(fast.weight.grad, full.weight.grad)
    np.testing.assert_array_equal(fast.bias.grad, full.bias.grad)


@pytest.mark.parametrize("shape,f,args", [
    ((1, 1, 5, 9), 1, dict(kernel_size=(2, 4))),  # one sample, one channel, non-square input and kernel
    ((2, 3, 2, 3), 2, dict(kernel_size=1, padding=2, stride=2)),  # windows wholly in the padding
    ((1, 2, 3, 4), 2, dict(kernel_size=(3, 1), padding=(4, 0), dilation=(2, 1))),
    ((1, 1, 1, 7), 2, dict(kernel_size=(1, 3), stride=(1, 2), padding="same")),
    ((2, 3, 4, 4), 2, dict(kernel_size=4)),  # the kernel covers the whole input: 1x1 output
    ((1, 2, 9, 6), 3, dict(kernel_size=3, stride=3, dilation=(2, 1), padding=(1, 0), bias=False)),
    ((3, 1, 7, 5), 1, dict(kernel_size=(3, 1), stride=(2, 3), padding="same")),
])
@layouts
def test_conv2d_edge_shapes_match_torch(shape, f, args, layout, rng):
    layer = nn.Conv2d(shape[1], f, rng=rng, **args)
    x = rng.standard_normal(shape).astype(np.float32)
    tx, tw = t(x, True), t(layer.weight.data, True)
    tb = t(layer.bias.data, True) if layer.bias is not None else None
    full = {"stride": 1, "dilation": 1, "padding": 0, **args}
    if isinstance(full["dilation"], int):
        full["dilation"] = (full["dilation"],) * 2
    ref = torch_conv2d(tx, tw, tb, full)
    with forced(layout):
        out = layer(x)
        assert_close(out, ref, 1e-5, "out")
        dout = rng.standard_normal(out.shape).astype(np.float32)
        ref.backward(t(dout))
        assert_close(layer.backward(dout), tx.grad, 1e-5, "dx")
    assert_close(layer.weight.grad, tw.grad, 1e-4, "dw")


@given(conv2d_cases())
def test_grouped_conv2d_kernel_finite_differences(case):
    """The kernel pair itself (x, w, b), through check_op, on the drawn shapes with explicit padding."""
    (n, c, h, w, f), args = case
    assume(args["groups"] > 1 and args["padding"] != "same")
    rng = np.random.default_rng(4)
    layer = nn.Conv2d(c, f, dtype=np.float64, **args)
    x = rng.standard_normal((n, c, h, w))
    padding = layer._geometry(x)
    inputs = {"x": x, "w": rng.standard_normal(layer.weight.shape), "b": rng.standard_normal(f)}
    errors = check_op(lambda x, w, b: conv2d_forward(x, w, b, layer.stride, padding, layer.dilation, layer.groups),
                      conv2d_backward, inputs)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("shape,f,args", [
    ((2, 4, 7, 6), 4, dict(kernel_size=3, padding=1, groups=4)),  # depthwise, one kernel per channel
    ((2, 3, 8, 8), 6, dict(kernel_size=3, stride=2, groups=3)),  # depthwise with a channel multiplier of 2
    ((1, 6, 5, 9), 4, dict(kernel_size=(2, 3), dilation=(2, 1), groups=2, bias=False)),
    ((3, 8, 6, 6), 8, dict(kernel_size=1, groups=4)),  # grouped pointwise
])
def test_grouped_conv2d_state_dict_loads_into_torch(shape, f, args, rng):
    layer = nn.Conv2d(shape[1], f, rng=rng, **args)
    ref = torch.nn.Conv2d(shape[1], f, **args)
    ref.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    assert layer.weight.shape == tuple(ref.weight.shape) == (f, shape[1] // args["groups"]) + layer.kernel_size
    x = rng.standard_normal(shape).astype(np.float32)
    tx = t(x, True)
    out, ref_out = layer(x), ref(tx)
    assert_close(out, ref_out, 1e-5, "out")
    dout = rng.standard_normal(out.shape).astype(np.float32)
    ref_out.backward(t(dout))
    assert_close(layer.backward(dout), tx.grad, 1e-5, "dx")
    assert_close(layer.weight.grad, ref.weight.grad, 1e-4, "dw")


def test_depthwise_channels_do_not_mix(rng):
    """With groups = in_channels, output channel k depends on input channel k only."""
    layer = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False, rng=rng)
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    before = layer(x)
    x[:, 1] += 1
    after = layer(x)
    np.testing.assert_array_equal(after[:, [0, 2]], before[:, [0, 2]])
    assert not np.allclose(after[:, 1], before[:, 1])


def test_groups_initialise_from_the_fan_in_per_group():
    layer = nn.Conv2d(8, 4, 3, groups=4, rng=0)
    assert np.abs(layer.weight.data).max() <= 1 / math.sqrt(2 * 9)
    assert "groups=4" in repr(layer) and "groups" not in repr(nn.Conv2d(8, 4, 3))


def test_bad_groups_errors():
    with pytest.raises(ValueError, match=r"Conv2d: in_channels \(6\) and out_channels \(4\) must both be divisible by groups \(3\)"):
        nn.Conv2d(6, 4, 3, groups=3)
    with pytest.raises(ValueError, match=r"Conv1d: in_channels \(3\) and out_channels \(6\) must both be divisible by groups \(2\)"):
        nn.Conv1d(3, 6, 3, groups=2)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match=r"Conv2d: groups must be a positive int"):
            nn.Conv2d(4, 4, 3, groups=bad)
    with pytest.raises(ValueError, match=r"do not split into 2 groups"):
        conv2d_forward(np.zeros((1, 3, 4, 4)), np.zeros((4, 2, 1, 1)), None, groups=2)
