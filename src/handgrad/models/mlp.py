"""Multi-layer perceptron."""
from __future__ import annotations

from ..backend import get_rng
from ..nn import Dropout, Flatten, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh

ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def mlp(in_features: int = 784, hidden=(256, 256), out_features: int = 10, activation: str = "relu",
        dropout: float = 0.0, rng=None) -> Sequential:
    """Flatten -> [Linear -> activation (-> Dropout)] per hidden width -> Linear.

    Inputs of any shape (N, d_1, ..., d_k) with d_1 * ... * d_k = ``in_features``;
    outputs (N, out_features) logits.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp: unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
    rng = get_rng(rng)
    layers, width = [Flatten()], in_features
    for h in hidden:
        layers += [Linear(width, h, rng=rng), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(Dropout(dropout))
        width = h
    layers.append(Linear(width, out_features, rng=rng))
    model = Sequential(*layers)
    model.input_shape = (in_features,)
    return model
