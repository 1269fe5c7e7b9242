"""Build what a configuration names: the data splits, the model, the loss and the optimizer.

Models and data sets are found by name in their registries
(``handgrad.models.MODELS``, ``handgrad.data.DATASETS``), so a new model or data
set only needs to register itself to be trainable from the command line.

Sequence data needs no special case by name: a data set marked ``sequential``
(``text``) is split by position, a builder with a ``stateful`` argument
(``char_lstm``) gets ``stateful=True`` on such a data set, and a model that
declares ``carries_state`` trains on streams (see :func:`split_data`).

The data flow is one way: :func:`complete` adds what the data set decides to the
configuration (its name, the model arguments it fills in), :func:`build` makes
the parts of the run from that, and nothing is written before both succeed.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np

from .. import init as initializers
from .. import nn
from .config import ConfigError, RunConfig, plain

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
    "stateful": lambda ds: ds.sequential,
}


def check_names(cfg: dict) -> None:
    """Fail fast, before any data is read, on an unknown model, data set or loss name."""
    from ..data import DATASETS
    from ..models import MODELS

    if cfg["model"] not in MODELS:
        raise ConfigError(f"unknown model {cfg['model']!r}; known models: {', '.join(sorted(MODELS))}")
    from ..data.files import is_data_path, meant_as_path

    data = cfg["data"]
    if data is not None and data not in DATASETS and not is_data_path(data):
        if meant_as_path(data):
            raise ConfigError(f"--data {data}: no such file or folder (nor a data set name: "
                              f"{', '.join(sorted(DATASETS))})")
        raise ConfigError(f"unknown data set {data!r}; known data sets: {', '.join(sorted(DATASETS))}; "
                          f"or the path of a .npz or .csv file, a folder of IDX files or of class folders")
    if cfg["loss"] not in LOSSES:
        raise ConfigError(f"unknown loss {cfg['loss']!r}; known losses: {', '.join(sorted(LOSSES))}")


def data_options(config: dict) -> dict:
    """The data set loader's options a run uses (``data_kwargs`` plus the text file)."""
    options = dict(config["data_kwargs"])
    if config.get("text_file") is not None:
        options["text_file"] = config["text_file"]
    return options


def load_data(cfg):
    """The data set the configuration names (a registered name or a path), loaded
    with its options and seed."""
    from ..data import default_dataset, open_data

    return open_data(cfg["data"] or default_dataset(), seed=cfg["seed"], **data_options(cfg))


def split_data(cfg, dataset, stateful: bool = False):
    """``(train, val, test, train_eval)`` for the Trainer.

    Independent samples (images, points): training on a random ``data_fraction``
    of the training set, validation a random ``val_fraction`` of that (both from
    ``seed``), test the data set's test split, ``train_eval`` None (the Trainer
    picks its own subset).

    A ``sequential`` data set (text) is split by position: the training text is
    the first ``data_fraction`` of the data set's, less its last ``val_fraction``,
    which is the validation text, so no validation character is ever trained on
    (the test text is the data set's held-out end, as before). For a ``stateful``
    model every split is read as ``batch_size`` streams in chunks of ``seq_len``
    (:class:`~handgrad.data.text.StreamLoader`): training in whole chunks, in
    order, for truncated BPTT; validation, test and ``train_eval`` (the first
    ``eval_train_fraction`` of the training text) with every position scored and
    the state carried across chunks. Otherwise the splits are chunks
    (:func:`~handgrad.data.text.sequence_pairs`), shuffled for training as usual.
    """
    from ..data import subset, train_val_split
    from ..data.text import StreamLoader, sequence_pairs, split_ids, stream_ids

    if not dataset.sequential:
        X, y = dataset.train
        if cfg["data_fraction"] < 1:
            X, y = subset(X, y, cfg["data_fraction"], seed=cfg["seed"])
        if cfg["val_fraction"] == 0:
            return (X, y), None, dataset.test, None
        try:
            train, val = train_val_split(X, y, cfg["val_fraction"], seed=cfg["seed"])
        except ValueError:  # too few samples: say which data set, and the way out
            raise ConfigError(f"data set {cfg['data']}: {len(y)} training samples are too few to hold out a "
                              f"validation set of {cfg['val_fraction']:g} of them (--set val_fraction=0 "
                              f"trains on all of them)") from None
        return train, val, dataset.test, None
    ids = stream_ids(dataset.train)
    ids = ids[: max(2, int(round(cfg["data_fraction"] * len(ids))))]
    train_ids, val_ids = split_ids(ids, cfg["val_fraction"]) if cfg["val_fraction"] > 0 else (ids, None)
    seq_len, batch_size = dataset.input_shape[0], cfg["batch_size"]

    def split(name, part, make):
        try:
            return make(part)
        except ValueError as exc:
            raise ConfigError(f"data set {cfg['data']!r}: the {name} text is too short ({exc}); use more of "
                              f"it (data_fraction, val_fraction) or a smaller batch_size / seq_len") from None

    if not stateful:
        def chunks(part):
            return sequence_pairs(part, seq_len)

        val = None if val_ids is None else split("validation", val_ids, chunks)
        return split("training", train_ids, chunks), val, dataset.test, None

    def streams(drop_last):
        return lambda part: StreamLoader(part, batch_size, seq_len, drop_last=drop_last)

    train_eval_ids = train_ids[: max(2, int(round(cfg["eval_train_fraction"] * len(train_ids))))]
    return (split("training", train_ids, streams(drop_last=True)),
            None if val_ids is None else split("validation", val_ids, streams(drop_last=False)),
            split("test", stream_ids(dataset.test), streams(drop_last=False)),
            split("train-evaluation", train_eval_ids, streams(drop_last=False)))


def model_kwargs(cfg, dataset) -> dict:
    """The builder's keyword arguments, all of them: the config's ``model_kwargs``,
    the input size and number of classes taken from the data set where the builder
    accepts them, and every other argument at the builder's default (so the run
    record names each value used, and a later change of a default cannot change a
    resumed or reproduced run). An argument the builder does not take is a ConfigError."""
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
    for name, p in params.items():
        if name != "rng" and name not in kwargs and p.default is not inspect.Parameter.empty:
            kwargs[name] = p.default
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def complete(cfg: RunConfig, dataset) -> RunConfig:
    """The configuration with what the data set decides filled in: the data set
    (when the default was taken) and the model arguments taken from it
    (:func:`model_kwargs`)."""
    return cfg.replace(data=recorded_data(cfg["data"] or dataset.name), model_kwargs=model_kwargs(cfg, dataset))


def recorded_data(data: str) -> str:
    """``data`` as a run records it: a data file's or folder's path made absolute (so
    that evaluate and predict find it from any directory), a data set's name as it is."""
    from pathlib import Path

    from ..data import is_data_path

    return str(Path(data).resolve()) if is_data_path(data) else data


@dataclass
class Run:
    """The parts of a training run that :func:`build` makes from a configuration."""

    model: object
    loss: object
    optimizer: object
    train: object        # (X, y) arrays or a batch source (StreamLoader)
    val: object          # (X, y), a batch source, or None
    test: object
    train_eval: object   # what train loss/accuracy are measured on, or None (the Trainer picks)


def build(cfg: RunConfig, dataset) -> Run:
    """Model, loss, optimizer and data splits of a completed configuration; the model
    is first tried on one sample of the data, so a model that cannot take the data
    fails here, before anything is written."""
    model, loss = build_model(cfg, cfg["model_kwargs"]), build_loss(cfg)
    check_fits(model, cfg["model"], dataset, loss)
    train, val, test, train_eval = split_data(cfg, dataset, stateful=model.carries_state)
    return Run(model, loss, build_optimizer(cfg, model.parameters()), train, val, test, train_eval)


def check_fits(model, name: str, dataset, loss=None) -> None:
    """Raise ConfigError naming the model and the data set when a forward pass of one
    training sample, or its ``loss``, fails (wrong input shape, rank or vocabulary;
    outputs that do not match the targets, as a classifier's on next-character targets)."""
    # x where the model is; y on the host: ``loss`` is given only by build(), whose model is on the host
    x, y = model.array_module().asarray(dataset.train[0][:1]), dataset.train[1][:1]
    cannot = f"model {name!r} cannot take data set {dataset.name!r}"
    training = model.training
    model.eval()
    try:
        try:
            out = model(x)
        except (ValueError, IndexError, TypeError) as exc:
            raise ConfigError(f"{cannot} (inputs of shape {tuple(dataset.input_shape)}): {exc}") from None
        if out.shape[-1] != len(dataset.classes):
            raise ConfigError(f"model {name!r} has {out.shape[-1]} outputs, but data set "
                              f"{dataset.name!r} has {len(dataset.classes)} classes")
        try:
            if loss is not None:
                loss(out, y)
        except (ValueError, IndexError, TypeError) as exc:
            raise ConfigError(f"{cannot} (outputs of shape {tuple(out.shape[1:])} per sample, targets of "
                              f"shape {tuple(y.shape[1:])}): {exc}") from None
    finally:
        model.train(training)


def data_identity(cfg, dataset) -> dict:
    """What identifies the data a run trained on: the data set's name and options,
    and for a file or folder (``--data PATH``, a text corpus) its size and SHA-256."""
    from ..data import file_identity, is_data_path

    identity = {"name": dataset.name, "options": data_options(cfg)}
    path = cfg["text_file"] if cfg["text_file"] is not None else cfg["data"] if is_data_path(cfg["data"]) else None
    if path is not None:
        identity["file"] = file_identity(path)
    return identity


def build_model(cfg, kwargs):
    """Build the zoo model and apply ``init`` (xavier / he / normal(weight_scale))."""
    from ..models import get_model

    try:
        model = get_model(cfg["model"], **{k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {cfg['model']!r} cannot be built from model_kwargs "
                          f"{plain(cfg['model_kwargs'])}: {exc}") from None
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
