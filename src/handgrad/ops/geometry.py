"""The sizes of one convolution call, shared by its two layouts (:mod:`.conv`'s im2col
and :mod:`.im2row`)."""
from __future__ import annotations

from ..shapes import output_sizes


class Geometry:
    """Sizes of one convolution call: the input (h, w), its padding (top, left,
    hp, wp: padded), the output (oh, ow), stride and dilation, and the 'wide'
    im2col layout (see :func:`.conv.conv2d_forward`): ``t`` columns per sample."""

    def __init__(self, x_shape, kernel, stride, padding, dilation):
        (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
        (top, bottom), (left, right) = padding
        n, c, h, w = x_shape
        hp, wp = h + top + bottom, w + left + right
        self.oh, self.ow = output_sizes((h, w), kernel, stride, padding, dilation)
        # widen the padded rows to a multiple of sw, so stepping sw along the flat
        # image moves one output column and R steps move sh rows down
        self.width = wp + (-wp) % sw
        self.row = sh * self.width // sw  # R: output columns per wide output row (>= ow)
        # sh extra zero rows at the bottom keep the wide columns' reads in bounds
        self.height = hp + sh
        self.padded = (n, c, self.height, self.width)
        self.sw, self.t = sw, self.oh * self.row
        self.stride, self.dilation, self.hp, self.wp = stride, dilation, hp, wp
        self.top, self.left, self.h, self.w = top, left, h, w
