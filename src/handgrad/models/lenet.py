"""Convolutional networks for 1x28x28 images (MNIST, Fashion-MNIST).

The images are data, so by default the first convolution computes no
gradient for them and ``model.backward`` returns None (as in PyTorch, where
the input does not require a gradient); ``input_grad=True`` returns dL/dx.

Each convolution is followed by max pooling and then ReLU. ReLU is monotonic,
so it commutes with taking a maximum: relu(max(a, b)) = max(relu(a), relu(b)),
and the gradients agree too (a window whose maximum is not positive passes no
gradient either way). Pool-then-ReLU is therefore bitwise the network of the
textbook order conv -> ReLU -> pool, with a quarter of the ReLU work.
"""
from __future__ import annotations

from ..backend import get_rng
from ..nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential


def lenet5(num_classes: int = 10, input_grad: bool = False, rng=None) -> Sequential:
    """LeNet-5 (LeCun et al., 1998) with ReLU and max pooling, 44,426 parameters:

    1x28x28 -> conv 5x5, 6 -> maxpool 2 -> ReLU -> 6x12x12
            -> conv 5x5, 16 -> maxpool 2 -> ReLU -> 16x4x4 = 256
            -> Linear 120 -> ReLU -> Linear 84 -> ReLU -> Linear num_classes
    """
    rng = get_rng(rng)
    model = Sequential(
        Conv2d(1, 6, 5, input_grad=input_grad, rng=rng), MaxPool2d(2), ReLU(),
        Conv2d(6, 16, 5, rng=rng), MaxPool2d(2), ReLU(),
        Flatten(),
        Linear(256, 120, rng=rng), ReLU(),
        Linear(120, 84, rng=rng), ReLU(),
        Linear(84, num_classes, rng=rng),
    )
    model.input_shape = (1, 28, 28)
    return model


def small_cnn(num_classes: int = 10, input_grad: bool = False, rng=None) -> Sequential:
    """A small, fast CNN:

    1x28x28 -> conv 3x3, 8, 'same' -> maxpool 2 -> ReLU -> 8x14x14
            -> conv 3x3, 8, 'same' -> maxpool 2 -> ReLU -> 8x7x7 = 392
            -> Linear 32 -> ReLU -> Linear num_classes
    """
    rng = get_rng(rng)
    model = Sequential(
        Conv2d(1, 8, 3, padding="same", input_grad=input_grad, rng=rng), MaxPool2d(2), ReLU(),
        Conv2d(8, 8, 3, padding="same", rng=rng), MaxPool2d(2), ReLU(),
        Flatten(),
        Linear(392, 32, rng=rng), ReLU(),
        Linear(32, num_classes, rng=rng),
    )
    model.input_shape = (1, 28, 28)
    return model
