"""Multi-layer perceptron."""
from __future__ import annotations

from ..backend import get_rng
from ..nn import Dropout, Flatten, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh

ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def mlp(in_features: int = 784, hidden=(256, 256), out_features: int = 10, activation: str = "relu",
        dropout: float = 0.0, input_grad: bool = False, rng=None) -> Sequential:
    """Flatten -> [Linear -> activation (-> Dropout)] per hidden width -> Linear.

    Inputs of any shape (N, d_1, ..., d_k) with d_1 * ... * d_k = ``in_features``;
    outputs (N, out_features) logits. As for the other zoo models the input is data,
    so by default ``backward`` computes no dL/dx and returns None; ``input_grad=True``
    returns it.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp: unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
    if not (isinstance(hidden, (list, tuple)) and all(isinstance(h, int) and not isinstance(h, bool) and h > 0
                                                      for h in hidden)):
        raise ValueError(f"mlp: hidden must be a list of positive integers (layer widths), got {hidden!r}")
    rng = get_rng(rng)
    widths = [in_features, *hidden, out_features]
    layers = [Flatten()]
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(Linear(n_in, n_out, input_grad=input_grad or i > 0, rng=rng))
        if i < len(hidden):
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(Dropout(dropout))
    model = Sequential(*layers)
    model.input_shape = (in_features,)
    return model
