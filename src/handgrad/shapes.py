"""Shape arithmetic of convolution and pooling, forwards and backwards.

For one spatial dimension of input size I, a kernel of size K with dilation D
covers D(K - 1) + 1 input positions; with P zeros of padding on each side and
stride S the output has

    O = floor((I + 2P - D(K - 1) - 1) / S) + 1

positions (with D = 1 the course notes' O = (I - K + 2P) / S + 1, when S divides).
Solved for the kernel, K = (I + 2P - 1 - S(O - 1)) / D + 1 - r / D for a
remainder 0 <= r < S that the floor discards: at S = D = 1 exactly one K
(the LeNet-5 assignment's K = I + 2P - S(O - 1): 32 -> 28 takes K = 5), at
S > 1 possibly several, and none when O is out of reach (:func:`kernel_sizes`).

``'same'`` padding follows TensorFlow's rule, which at stride 1 is PyTorch's
``padding='same'``: O = ceil(I / S), the total padding
max((O - 1) S + D(K - 1) + 1 - I, 0) split with the extra pixel after
(bottom/right).
"""
from __future__ import annotations

import math


def conv_output_size(size: int, kernel: int, stride: int = 1, padding=0, dilation: int = 1) -> int:
    """O = floor((I + 2P - D(K - 1) - 1) / S) + 1 along one dimension.

    ``padding`` is an int P (P zeros on both sides) or a pair (before, after),
    which replaces 2P by before + after. Raises ValueError, stating the formula
    and the numbers, when the dilated kernel is larger than the padded input.
    """
    before, after = (padding, padding) if isinstance(padding, int) else padding
    span = dilation * (kernel - 1) + 1
    padded = size + before + after
    if span > padded:
        raise ValueError(
            f"kernel larger than the padded input: the kernel spans D(K-1)+1 = {dilation}*({kernel}-1)+1 = {span} "
            f"positions but the padded input has only {size}+{before}+{after} = {padded}; "
            f"output size floor((size + 2P - D(K-1) - 1)/S) + 1 would be "
            f"floor(({padded} - {span})/{stride}) + 1 = {(padded - span) // stride + 1}"
        )
    return (padded - span) // stride + 1


def kernel_sizes(size: int, output: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> list[int]:
    """Every kernel size K >= 1 with ``conv_output_size(size, K, stride, padding, dilation) == output``.

    O = floor((I + 2P - D(K - 1) - 1) / S) + 1 holds exactly when
    S(O - 1) <= I + 2P - 1 - D(K - 1) <= S(O - 1) + S - 1, that is
    D(K - 1) in [hi - (S - 1), hi] with hi = I + 2P - 1 - S(O - 1).
    That interval holds one K at S = D = 1, up to ceil(S / D) otherwise, and
    none when O < 1, when O is too large (even K = 1 gives less) or when it
    falls between the outputs of two consecutive kernels; the list is then empty.
    """
    hi = size + 2 * padding - 1 - stride * (output - 1)
    lo = hi - (stride - 1)
    first = max(-(-lo // dilation), 0)  # K - 1 >= ceil(lo / D), and K >= 1
    return [k + 1 for k in range(first, hi // dilation + 1)] if output >= 1 and hi >= 0 else []


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding that makes the output ceil(size / stride) long (TensorFlow's 'same')."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, sizes, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    """Per-dimension (before, after) padding for ``padding`` given as ints, 'valid' or 'same'."""
    if padding == "valid":
        return tuple((0, 0) for _ in sizes)
    if padding == "same":
        return tuple(same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, stride, dilation))
    return tuple((p, p) for p in padding)


def output_sizes(sizes, kernel, stride, padding, dilation) -> tuple[int, ...]:
    """:func:`conv_output_size` for every spatial dimension; ``padding`` as (before, after) pairs."""
    return tuple(conv_output_size(*args) for args in zip(sizes, kernel, stride, padding, dilation))
