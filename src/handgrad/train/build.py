"""Build what a configuration names: the data splits, the model, the loss and the optimizer.

Models and data sets are found by name in their registries
(``handgrad.models.MODELS``, ``handgrad.data.DATASETS``), so a new model or data
set only needs to register itself to be trainable from the command line.
"""
from __future__ import annotations

import inspect
import math

import numpy as np

from .. import init as initializers
from .. import nn
from .config import ConfigError

# Loss modules by name: forward(out, y) -> float, backward() -> dL/d(out).
LOSSES = {"cross_entropy": nn.CrossEntropyLoss}
LOSSES["temporal_cross_entropy"] = nn.TemporalCrossEntropyLoss

# Builder arguments filled in from the data set when the config does not give them.
_FROM_DATASET = {
    "in_features": lambda ds: math.prod(ds.input_shape),
    "input_shape": lambda ds: tuple(ds.input_shape),
    "in_channels": lambda ds: ds.input_shape[0],
    "out_features": lambda ds: len(ds.classes),
    "num_classes": lambda ds: len(ds.classes),
    "vocab_size": lambda ds: len(ds.classes),
}


def check_names(cfg: dict) -> None:
    """Fail fast, before any data is read, on an unknown model, data set or loss name."""
    from ..data import DATASETS
    from ..models import MODELS

    if cfg["model"] not in MODELS:
        raise ConfigError(f"unknown model {cfg['model']!r}; known models: {', '.join(sorted(MODELS))}")
    if cfg["data"] is not None and cfg["data"] not in DATASETS:
        raise ConfigError(f"unknown data set {cfg['data']!r}; known data sets: {', '.join(sorted(DATASETS))}")
    if cfg["loss"] not in LOSSES:
        raise ConfigError(f"unknown loss {cfg['loss']!r}; known losses: {', '.join(sorted(LOSSES))}")


def data_options(config: dict) -> dict:
    """The data set loader's options a run uses (``data_kwargs`` plus the text file)."""
    options = dict(config["data_kwargs"])
    if config.get("text_file") is not None:
        options["text_file"] = config["text_file"]
    return options


def load_data(cfg: dict):
    """Returns ``(dataset, train, val, test)``; train/val split from the training set by ``seed``."""
    from ..data import default_dataset, load_dataset, subset, train_val_split

    dataset = load_dataset(cfg["data"] or default_dataset(), seed=cfg["seed"], **data_options(cfg))
    X, y = dataset.train
    if cfg["data_fraction"] < 1:
        X, y = subset(X, y, cfg["data_fraction"], seed=cfg["seed"])
    train, val = train_val_split(X, y, cfg["val_fraction"], seed=cfg["seed"])
    return dataset, train, val, dataset.test


def model_kwargs(cfg: dict, dataset) -> dict:
    """The builder's keyword arguments: the config's ``model_kwargs`` plus the
    input size and number of classes taken from the data set where the builder
    accepts them. An argument the builder does not take is a ConfigError."""
    from ..models import MODELS

    params = inspect.signature(MODELS[cfg["model"]]).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = dict(cfg["model_kwargs"])
    unknown = [k for k in kwargs if k not in params and not takes_any]
    if unknown or "rng" in kwargs:
        key = unknown[0] if unknown else "rng"
        raise ConfigError(f"model {cfg['model']!r} has no argument {key!r}; its arguments are: "
                          f"{', '.join(k for k in params if k != 'rng')}")
    for name, from_dataset in _FROM_DATASET.items():
        if name in params and name not in kwargs:
            kwargs[name] = from_dataset(dataset)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def build_model(cfg: dict, kwargs: dict):
    """Build the zoo model and apply ``init`` (xavier / he / normal(weight_scale))."""
    from ..models import get_model

    model = get_model(cfg["model"], **kwargs)
    scheme = "normal" if cfg["init"] == "default" and cfg["weight_scale"] is not None else cfg["init"]
    if scheme != "default":
        for name, p in model.named_parameters():
            if p.data.ndim < 2:
                initializers.zeros_(p)
            elif scheme == "xavier":
                initializers.xavier_uniform_(p)
            elif scheme == "he":
                initializers.kaiming_normal_(p, nonlinearity="relu")
            else:
                initializers.normal_(p, 0.0, cfg["weight_scale"] or 1e-2)
    return model


def build_loss(cfg: dict):
    return LOSSES[cfg["loss"]](reduction=cfg["loss_reduction"])


def build_optimizer(cfg: dict, params):
    from .. import optim

    name, lr, wd = cfg["optimizer"], cfg["lr"], cfg["weight_decay"]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, weight_decay=wd)
    if name == "adagrad":
        return optim.Adagrad(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=wd)
    return optim.Adam(params, lr=lr, weight_decay=wd)


def sample_indices(n: int, count: int = 32, seed: int = 0) -> np.ndarray:
    """A fixed random sample of ``count`` of ``n`` indices, sorted (for the predictions grid)."""
    return np.sort(np.random.default_rng(seed).permutation(n)[:count])
