"""Shape arithmetic shared by the convolution and pooling layers.

For one spatial dimension of size ``n``, a kernel of size ``K`` with dilation
``D`` covers ``D(K - 1) + 1`` input positions; with ``P`` zeros of padding on
each side and stride ``S`` the output has

    out = floor((n + 2P - D(K - 1) - 1) / S) + 1

positions. ``'same'`` padding follows TensorFlow's rule, which at stride 1 is
PyTorch's ``padding='same'``: out = ceil(n / S), the total padding
max((out - 1) S + D(K - 1) + 1 - n, 0) split with the extra pixel after
(bottom/right).
"""
from __future__ import annotations

import math


def conv_output_size(size: int, kernel: int, stride: int = 1, padding=0, dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one dimension.

    ``padding`` is an int P (P zeros on both sides) or a pair (before, after).
    Raises ValueError, stating the formula and the numbers, when the dilated
    kernel is larger than the padded input.
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
    """conv_output_size for every spatial dimension; ``padding`` as from :func:`resolve_padding`."""
    return tuple(conv_output_size(*args) for args in zip(sizes, kernel, stride, padding, dilation))
