"""Convolutional networks for 1x28x28 images (MNIST, Fashion-MNIST).

The images are data, so by default the first convolution computes no
gradient for them and ``model.backward`` returns None (as in PyTorch, where
the input does not require a gradient); ``input_grad=True`` returns dL/dx.
"""
from __future__ import annotations

from ..backend import get_rng
from ..nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential


def lenet5(num_classes: int = 10, input_grad: bool = False, rng=None) -> Sequential:
    """LeNet-5 (LeCun et al., 1998) with ReLU and max pooling, 44,426 parameters:

    1x28x28 -> conv 5x5, 6 -> ReLU -> maxpool 2 -> 6x12x12
            -> conv 5x5, 16 -> ReLU -> maxpool 2 -> 16x4x4 = 256
            -> Linear 120 -> ReLU -> Linear 84 -> ReLU -> Linear num_classes
    """
    rng = get_rng(rng)
    model = Sequential(
        Conv2d(1, 6, 5, input_grad=input_grad, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(256, 120, rng=rng), ReLU(),
        Linear(120, 84, rng=rng), ReLU(),
        Linear(84, num_classes, rng=rng),
    )
    model.input_shape = (1, 28, 28)
    return model


def small_cnn(num_classes: int = 10, input_grad: bool = False, rng=None) -> Sequential:
    """A small, fast CNN:

    1x28x28 -> conv 3x3, 8, 'same' -> ReLU -> maxpool 2 -> 8x14x14
            -> conv 3x3, 8, 'same' -> ReLU -> maxpool 2 -> 8x7x7 = 392
            -> Linear 32 -> ReLU -> Linear num_classes
    """
    rng = get_rng(rng)
    model = Sequential(
        Conv2d(1, 8, 3, padding="same", input_grad=input_grad, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(8, 8, 3, padding="same", rng=rng), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(392, 32, rng=rng), ReLU(),
        Linear(32, num_classes, rng=rng),
    )
    model.input_shape = (1, 28, 28)
    return model
