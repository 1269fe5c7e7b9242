"""The run configuration: one typed, validated, immutable record of a training run.

A configuration is built once, from layers that later ones override::

    DEFAULTS  <  the recipe (the data set's, then the model's)  <  a TOML file  <  flags

and validated as it is built (:class:`ConfigError` names the key and the
source). :class:`RunConfig` is then frozen: the builder
(:mod:`handgrad.train.build`) turns it into the model, data, loss, optimizer and
Trainer options, and the run directory records it (:mod:`handgrad.train.rundir`).
The only new object made from it is the *completed* configuration, once the data
set is known (its name, and the model arguments it fills in: input size, classes).

Recipes are named and visible: ``recipe = "default"`` applies the data set's and
the model's entries of :data:`RECIPES` (shown by ``handgrad train --help`` and in
every run's report); ``recipe = "none"`` applies none. A run's own
``config.toml`` says ``recipe = "none"``: every value is already in it.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path

from ..validate import is_fraction, is_number, is_positive_int


DEFAULTS = {
    "model": "mlp",            # a name in handgrad.models.MODELS
    "model_kwargs": {},        # passed to the model builder (hidden sizes, activation, ...)
    "data": None,              # a name in handgrad.data.DATASETS; None: default_dataset()
    "data_kwargs": {},         # options of the data set loader
    "text_file": None,         # --data text: the corpus to read
    "recipe": "default",       # "default": RECIPES for the data set and model; "none": none
    "data_fraction": 1.0,      # train on a random fraction of the training set (text: a prefix)
    "val_fraction": 0.1,       # held out from the training set for validation (text: its end); 0: none
    "epochs": 2,
    "batch_size": 64,
    "optimizer": "adam",       # sgd, adam, adamw, rmsprop, adagrad
    "lr": 1e-3,
    "momentum": 0.0,           # sgd: plain SGD unless asked for, as torch.optim.SGD
    "weight_decay": 0.0,
    "lr_decay": None,          # per-epoch multiplicative decay, e.g. 0.95
    "init": "default",         # default (the layers' own), xavier, he, normal
    "weight_scale": None,      # std of init='normal' (the classic weight_scale * randn)
    "loss": "cross_entropy",   # a name in handgrad.train.build.LOSSES
    "loss_reduction": "mean",  # mean or sum
    "eval_every": None,        # None: every epoch; N: every N training samples
    "eval_at_start": False,    # also evaluate before the first update (curves from iteration 0)
    "eval_train_fraction": 0.2,
    "eval_test": False,        # also evaluate the test set at every evaluation (curves)
    "patience": None,
    "clip_grad_norm": None,
    "seed": 0,
    "print_every": 100,
    "workers": "auto",         # processes sharing each batch (handgrad.parallel); auto: the usable cores
    "device": "cpu",           # cpu, or cuda (CuPy): where the model and each batch live
}

# Named recipes: what a zoo model or a data set needs to train well out of the box.
MODEL_DEFAULTS = {
    "char_lstm": {"loss": "temporal_cross_entropy", "optimizer": "adam", "lr": 3e-3, "batch_size": 32,
                  "clip_grad_norm": 5.0, "epochs": 8, "lr_decay": 0.85},
    "small_cnn": {"epochs": 2, "batch_size": 32, "lr": 3e-3},
    # the evaluation of a tenth of the training set keeps everything but the steps under 10% of the run
    "cnn": {"epochs": 24, "optimizer": "adam", "lr": 2e-3, "lr_decay": 0.9, "eval_train_fraction": 0.1},
}
# The 1,797 8x8 digits need more, smaller steps than 60,000 images.
DATA_DEFAULTS = {
    "digits": {"epochs": 15, "batch_size": 32, "lr": 3e-3},
}
RECIPES = {**{f"data {k}": v for k, v in DATA_DEFAULTS.items()}, **{f"model {k}": v for k, v in MODEL_DEFAULTS.items()}}

# What --resume may change: how long to train and how to compute, never what is computed.
RESUMABLE = ("epochs", "print_every", "workers", "device")

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
INITS = ("default", "xavier", "he", "normal")
CHOICES = {"optimizer": OPTIMIZERS, "init": INITS, "loss_reduction": ("mean", "sum"),
           "recipe": ("default", "none"), "device": ("cpu", "cuda")}

_POSITIVE_INT = ("epochs", "batch_size")
_OPTIONAL_POSITIVE_INT = ("eval_every", "patience", "print_every")
_FRACTIONS = ("data_fraction", "eval_train_fraction")
_STRINGS = ("model", "optimizer", "init", "loss", "loss_reduction", "recipe", "device")
_OPTIONAL_STRINGS = ("data", "text_file")
_BOOLS = ("eval_test", "eval_at_start")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message names it."""


def _problem(key, value):
    """What is wrong with ``value`` for ``key`` (an 'expected' phrase), or None."""
    if key in _POSITIVE_INT and not is_positive_int(value):
        return "a positive integer"
    if key == "workers" and value != "auto" and not is_positive_int(value):
        return '"auto" or a positive integer'
    if key in _OPTIONAL_POSITIVE_INT and value is not None and not is_positive_int(value):
        return "a positive integer"
    if key in _FRACTIONS and not is_fraction(value, low_open=True):
        return "a number in (0, 1]"
    if key == "val_fraction" and not is_fraction(value, high_open=True):
        return "a number in (0, 1), or 0 for no validation set"
    if key == "lr" and not (is_number(value) and value > 0):
        return "a positive number"
    if key in ("momentum", "weight_decay") and not (is_number(value) and value >= 0):
        return "a number >= 0"
    if key == "lr_decay" and value is not None and not is_fraction(value, low_open=True):
        return "a number in (0, 1]"
    if key in ("weight_scale", "clip_grad_norm") and value is not None and not (is_number(value) and value > 0):
        return "a positive number"
    if key in _BOOLS and not isinstance(value, bool):
        return "true or false"
    if key == "seed" and not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0):
        return "an integer >= 0"
    if key in ("model_kwargs", "data_kwargs") and not isinstance(value, Mapping):
        return "a table (dict)"
    if key in _STRINGS and not isinstance(value, str):
        return "a string"
    if key in _OPTIONAL_STRINGS and value is not None and not isinstance(value, str):
        return "a string"
    return None


def check_config(config: Mapping, source: str = "config") -> Mapping:
    """Raise :class:`ConfigError` naming the first unknown key or invalid value in
    ``config`` (a partial configuration: any subset of the keys)."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(DEFAULTS))}")
    for key, value in config.items():
        expected = _problem(key, value)
        if expected:
            raise ConfigError(f"{source}: {key} must be {expected}, got {value!r}")
    for key, choices in CHOICES.items():
        if key in config and config[key] not in choices:
            raise ConfigError(f"{source}: unknown {key} {config[key]!r}; choose from {', '.join(choices)}")
    return config


def _frozen(value):
    """A deep copy in which lists are tuples and dicts are read-only mappings."""
    if isinstance(value, Mapping):
        return _ReadOnly({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def plain(value):
    """The JSON-able twin of :func:`_frozen`'s result: dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class _ReadOnly(Mapping):
    def __init__(self, items: dict):
        self._items = items

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __repr__(self):
        return repr(plain(self))


class RunConfig(Mapping):
    """Every setting of one training run (the keys of :data:`DEFAULTS`), validated
    when built and immutable afterwards; read it as a mapping (``cfg["lr"]``).

    Build it with :meth:`resolve`; :meth:`replace` makes a new, checked copy;
    :meth:`to_dict` gives plain JSON-able values; :meth:`fingerprint` identifies
    what the run computes (everything but :data:`RESUMABLE` and ``recipe``).
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping, source: str = "config"):
        check_config(values, source)
        missing = sorted(set(DEFAULTS) - set(values))
        if missing:
            raise ConfigError(f"{source}: missing keys {', '.join(missing)}")
        object.__setattr__(self, "_values", {k: _frozen(values[k]) for k in DEFAULTS})

    def __setattr__(self, name, value):
        raise AttributeError("RunConfig is immutable: use replace()")

    @classmethod
    def resolve(cls, *layers: Mapping) -> "RunConfig":
        """Merge ``DEFAULTS``, the recipe and ``layers`` (later wins), each checked on its
        own first (callers that know a layer's source check it with that name, as
        ``handgrad train`` does for a file, ``--set`` and the flags)."""
        given: dict = {}
        for layer in layers:
            given.update(check_config(dict(layer)))
        recipe = {}
        if given.get("recipe", DEFAULTS["recipe"]) == "default":
            recipe = {**DATA_DEFAULTS.get(given.get("data"), {}),
                      **MODEL_DEFAULTS.get(given.get("model", DEFAULTS["model"]), {})}
        return cls({**DEFAULTS, **recipe, **given})

    def replace(self, **changes) -> "RunConfig":
        return RunConfig({**self._values, **changes})

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __eq__(self, other):
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.fingerprint())

    def __repr__(self):
        return f"RunConfig({self.to_dict()!r})"

    def to_dict(self) -> dict:
        return plain(self._values)

    def fingerprint(self) -> str:
        """SHA-256 of the settings that decide what the run computes (not
        :data:`RESUMABLE`, not ``recipe``, which only chose defaults)."""
        kept = {k: v for k, v in self.to_dict().items() if k not in RESUMABLE and k != "recipe"}
        return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()

    def differences(self, other: "RunConfig") -> list:
        """Keys (not resumable) whose values differ between the two configurations."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [k for k in DEFAULTS if k not in RESUMABLE and k != "recipe" and mine[k] != theirs[k]]

    def to_toml(self, header: str = "") -> str:
        """The configuration as a TOML file that :func:`read_config_file` reads back to
        the same configuration: ``recipe = "none"`` and every value written out
        (unset optional values, None, are left out: None is their default)."""
        lines = [f"# {line}" for line in header.splitlines()]
        values = {**self.to_dict(), "recipe": "none"}
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        for key, value in values.items():
            if value is not None and key not in tables:
                lines.append(f"{key} = {_toml_value(value)}")
        for key, table in tables.items():
            lines.append(f"\n[{key}]")
            lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if v is not None)
        return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"config: {value!r} cannot be written to TOML")
        return repr(value)
    if isinstance(value, (int, str)):
        return json.dumps(value) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"config: cannot write {value!r} ({type(value).__name__}) to TOML")


def resolve_config(*layers: Mapping) -> RunConfig:
    """:meth:`RunConfig.resolve` of ``layers``."""
    return RunConfig.resolve(*layers)


def _toml():
    """The TOML parser: the standard library's (3.11+), or the same as a package on 3.10."""
    try:
        import tomllib
    except ModuleNotFoundError:
        import tomli as tomllib
    return tomllib


def read_toml(path) -> dict:
    """A TOML file as a dict (the one TOML reader of the package, on every Python
    that ``requires-python`` allows); a missing file or invalid TOML is an error
    naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            try:
                data = _toml().load(f)
            except ValueError as exc:  # TOMLDecodeError is a ValueError
                raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    return data


def read_config_file(path) -> dict:
    """The settings in a TOML config file, or in a run's own ``config.json`` or
    ``config.toml``; errors name the file and the key."""
    path = Path(path)
    if path.suffix == ".json":
        from .rundir import read_manifest

        config = read_manifest(path).to_dict()
    else:
        config = read_toml(path)
    return dict(check_config(config, f"config file {path}"))
