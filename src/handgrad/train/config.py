"""Training configurations: the keys ``handgrad train``, its TOML files and
:func:`handgrad.train.train_from_config` share, their defaults and their checks.

A configuration is a flat dict (a TOML file with the same keys, plus the tables
``model_kwargs`` and ``data_kwargs``). Values are resolved in this order, later
winning: :data:`DEFAULTS`, the data set's entry in :data:`DATA_DEFAULTS`, the
model's entry in :data:`MODEL_DEFAULTS`, the config file, command-line flags.
"""
from __future__ import annotations

import math
from pathlib import Path

DEFAULTS = {
    "model": "mlp",            # a name in handgrad.models.MODELS
    "model_kwargs": {},        # passed to the model builder (hidden sizes, activation, ...)
    "data": None,              # a name in handgrad.data.DATASETS; None: default_dataset()
    "data_kwargs": {},         # options of the data set loader
    "text_file": None,         # --data text: the corpus to read
    "data_fraction": 1.0,      # train on a random fraction of the training set (text: a prefix)
    "val_fraction": 0.1,       # held out from the training set for validation (text: its end)
    "epochs": 2,
    "batch_size": 64,
    "optimizer": "adam",       # sgd, adam, adamw, rmsprop, adagrad
    "lr": 1e-3,
    "momentum": 0.9,           # sgd
    "weight_decay": 0.0,
    "lr_decay": None,          # per-epoch multiplicative decay, e.g. 0.95
    "init": "default",         # default (the layers' own), xavier, he, normal
    "weight_scale": None,      # std of init='normal' (the classic weight_scale * randn)
    "loss": "cross_entropy",   # a name in handgrad.train.build.LOSSES
    "loss_reduction": "mean",  # mean or sum
    "eval_every": None,        # None: every epoch; N: every N training samples
    "eval_train_fraction": 0.2,
    "eval_test": False,        # also evaluate the test set at every evaluation (curves)
    "patience": None,
    "clip_grad_norm": None,
    "seed": 0,
    "print_every": 100,
    "workers": 1,              # processes sharing each batch (handgrad.parallel); 2 on a 2-core machine
}

# Per-model defaults: what a zoo model needs to train well out of the box.
MODEL_DEFAULTS = {
    "char_lstm": {"loss": "temporal_cross_entropy", "optimizer": "adam", "lr": 3e-3, "batch_size": 32,
                  "clip_grad_norm": 5.0, "epochs": 8, "lr_decay": 0.85},
    "small_cnn": {"epochs": 2, "batch_size": 32, "lr": 3e-3, "lr_decay": 0.4},
    "cnn": {"epochs": 14, "optimizer": "adam", "lr": 2e-3, "lr_decay": 0.8},
}

# Per-data-set defaults: the 1,797 8x8 digits need more, smaller steps than 60,000 images.
DATA_DEFAULTS = {
    "digits": {"epochs": 15, "batch_size": 32, "lr": 3e-3},
}

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
INITS = ("default", "xavier", "he", "normal")

_POSITIVE_INT = ("epochs", "batch_size", "workers")
_OPTIONAL_POSITIVE_INT = ("eval_every", "patience", "print_every")
_FRACTIONS = ("data_fraction", "eval_train_fraction")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message names it."""


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_config(config: dict, source: str = "config") -> dict:
    """Raise :class:`ConfigError` naming the first unknown key or invalid value."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(DEFAULTS))}")

    def bad(key, expected):
        return ConfigError(f"{source}: {key} must be {expected}, got {config[key]!r}")

    for key, value in config.items():
        if key in _POSITIVE_INT and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise bad(key, "a positive integer")
        if key in _OPTIONAL_POSITIVE_INT and value is not None and not (
                isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise bad(key, "a positive integer")
        if key in _FRACTIONS and not (_is_number(value) and 0 < value <= 1):
            raise bad(key, "a number in (0, 1]")
        if key == "val_fraction" and not (_is_number(value) and 0 < value < 1):
            raise bad(key, "a number in (0, 1)")
        if key == "lr" and not (_is_number(value) and value > 0):
            raise bad(key, "a positive number")
        if key in ("momentum", "weight_decay") and not (_is_number(value) and value >= 0):
            raise bad(key, "a number >= 0")
        if key == "lr_decay" and value is not None and not (_is_number(value) and 0 < value <= 1):
            raise bad(key, "a number in (0, 1]")
        if key in ("weight_scale", "clip_grad_norm") and value is not None and not (_is_number(value) and value > 0):
            raise bad(key, "a positive number")
        if key == "eval_test" and not isinstance(value, bool):
            raise bad(key, "true or false")
        if key == "seed" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise bad(key, "an integer >= 0")
        if key in ("model_kwargs", "data_kwargs") and not isinstance(value, dict):
            raise bad(key, "a table (dict)")
        if key in ("model", "optimizer", "init", "loss", "loss_reduction") and not isinstance(value, str):
            raise bad(key, "a string")
        if key in ("data", "text_file") and value is not None and not isinstance(value, str):
            raise bad(key, "a string")
    for key, choices in (("optimizer", OPTIMIZERS), ("init", INITS), ("loss_reduction", ("mean", "sum"))):
        if key in config and config[key] not in choices:
            raise ConfigError(f"{source}: unknown {key} {config[key]!r}; choose from {', '.join(choices)}")
    return config


def read_config_file(path) -> dict:
    """Read a TOML config file; errors name the file and the key."""
    import tomllib  # Python 3.11+

    path = Path(path)
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: invalid TOML ({exc})") from None
    return check_config(config, f"config file {path}")


def resolve_config(*layers: dict) -> dict:
    """Merge ``DEFAULTS``, the data set's and the model's defaults and ``layers`` (later wins)."""
    given: dict = {}
    for layer in layers:
        given.update(check_config(dict(layer)))
    model = given.get("model", DEFAULTS["model"])
    data = given.get("data", DEFAULTS["data"])
    return {**DEFAULTS, **DATA_DEFAULTS.get(data, {}), **MODEL_DEFAULTS.get(model, {}), **given}
