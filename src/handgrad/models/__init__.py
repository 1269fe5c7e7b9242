"""Model zoo: builders that return ready-to-train modules, and a registry by name.

Each builder takes keyword arguments only and sets ``model.input_shape``
(one sample's shape), which ``handgrad.summary`` uses by default.
"""
from .cnn import cnn
from .lenet import lenet5, small_cnn
from .mlp import mlp
from .char_lstm import char_lstm

MODELS = {}
MODELS["mlp"] = mlp
MODELS["lenet5"] = lenet5
MODELS["small_cnn"] = small_cnn
MODELS["char_lstm"] = char_lstm
MODELS["cnn"] = cnn


def get_model(name: str, **kwargs):
    """Build the model registered as ``name`` with the builder's keyword arguments."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
