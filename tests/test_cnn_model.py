import numpy as np
import pytest

import handgrad
from handgrad.models import get_model
from handgrad.gradcheck import check_op
from handgrad.nn import RandomShiftFlip
from handgrad.ops.augment import shift_flip_backward, shift_flip_forward


def test_cnn_is_under_100k_parameters_and_maps_images_to_logits():
    model = get_model("cnn")
    assert model.num_parameters() < 100_000
    model.eval()
    assert model(np.zeros((3, 1, 28, 28), dtype=np.float32)).shape == (3, 10)
    small = get_model("cnn", input_shape=(1, 8, 8), num_classes=4)
    small.eval()
    assert small(np.zeros((2, 1, 8, 8), dtype=np.float32)).shape == (2, 4)
    with pytest.raises(ValueError, match="too small"):
        get_model("cnn", input_shape=(1, 4, 4))


def test_shift_flip_backward_is_the_transpose_of_forward():
    handgrad.manual_seed(0)
    layer = RandomShiftFlip(shift=2)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 2, 5, 7))
    out = layer(x)
    dout = rng.normal(size=out.shape)
    # a linear map y = A x has backward A^T: <A x, d> = <x, A^T d>
    assert np.isclose((out * dout).sum(), (x * layer.backward(dout)).sum(), rtol=1e-12)
    assert not np.array_equal(out, x)


def test_shift_flip_moves_and_mirrors_pixels():
    handgrad.manual_seed(3)
    layer = RandomShiftFlip(shift=1)
    x = np.zeros((200, 1, 5, 5))
    x[:, 0, 2, 1] = 1.0  # one bright pixel left of centre
    out = layer(x)
    assert np.all(out.sum(axis=(1, 2, 3)) == 1)  # never pushed off a 5x5 image by a 1-pixel shift
    rows, cols = np.nonzero(out[:, 0])[1:]
    assert set(rows) == {1, 2, 3} and set(cols) == {0, 1, 2, 3, 4}  # flips reach the right side


def test_shift_flip_is_the_identity_in_eval_mode():
    layer = RandomShiftFlip().eval()
    x = np.ones((2, 1, 4, 4))
    assert layer(x) is x and layer.backward(x) is x


def test_shift_flip_kernel_passes_the_finite_difference_check():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 2, 5, 6))
    flips = np.array([True, False, True, False])
    rows, cols = np.array([0, -2, 1, 6]), np.array([3, 0, -1, -2])  # the last row offset moves the image out
    errors = check_op(shift_flip_forward, shift_flip_backward, {"x": x, "flips": flips, "rows": rows, "cols": cols})
    assert errors["x"] < 1e-9


def test_shift_flip_kernel_follows_the_formula():
    x = np.arange(2 * 1 * 3 * 4, dtype=np.float64).reshape(2, 1, 3, 4)
    out, _ = shift_flip_forward(x, np.array([False, True]), np.array([1, 0]), np.array([0, -1]))
    # out[n, c, i, j] = x'[n, c, i + a_n, j + b_n], 0 outside; x' = x[..., ::-1] when flipped
    expected = np.zeros_like(x)
    expected[0, 0, :2] = x[0, 0, 1:]
    expected[1, 0, :, 1:] = x[1, 0, :, ::-1][:, :3]
    np.testing.assert_array_equal(out, expected)


def naive_shift_flip(x, flips, rows, cols):
    """The module docstring's formula, one pixel at a time."""
    n, c, h, w = x.shape
    out = np.zeros_like(x)
    for k in range(n):
        image = x[k, :, :, ::-1] if flips[k] else x[k]
        for i in range(h):
            for j in range(w):
                if 0 <= i + rows[k] < h and 0 <= j + cols[k] < w:
                    out[k, :, i, j] = image[:, i + rows[k], j + cols[k]]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_shift_flip_kernel_matches_the_formula_pixel_by_pixel(seed):
    """Random shapes, flips and offsets (up to beyond the image): forward equals the
    formula, and backward is its transpose, dout scattered back the same way."""
    rng = np.random.default_rng(seed)
    n, c, h, w = rng.integers(1, 6, size=4)
    x = rng.normal(size=(n, c, h, w))
    flips = rng.random(n) < 0.5
    rows, cols = rng.integers(-h - 1, h + 2, size=n), rng.integers(-w - 1, w + 2, size=n)
    out, cache = shift_flip_forward(x, flips, rows, cols)
    np.testing.assert_array_equal(out, naive_shift_flip(x, flips, rows, cols))
    dout = rng.normal(size=out.shape)
    dx = shift_flip_backward(dout, cache)
    # <A x, d> = <x, A^T d> for every x: column by column, A^T d is d's preimage
    basis = np.eye(x.size).reshape((x.size,) + x.shape)
    expected = np.array([(naive_shift_flip(e, flips, rows, cols) * dout).sum() for e in basis]).reshape(x.shape)
    np.testing.assert_allclose(dx, expected, rtol=0, atol=1e-12)
