"""Find the trained model behind a path a user gives: a run directory, a model file
(``model.npz``) or a checkpoint (``checkpoint.npz``, which carries its run's config)."""
from __future__ import annotations

from pathlib import Path

from ..io import build_model, check_metadata, load_model, load_weights, read_npz
from ..models import check_revision
from .build import data_options
from .checkpoint import load_checkpoint
from .rundir import manifest_revision

MODEL_FILENAME = "model.npz"


def load_trained(path):
    """Returns ``(model, metadata)``; metadata has at least ``model``, ``model_kwargs``,
    ``data``, ``classes``, ``seed`` and ``data_kwargs`` (from the run's config), and
    ``streams``: for a stateful model, how many streams its held-out text was read as."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_FILENAME).is_file():
            raise FileNotFoundError(f"{path}: no {MODEL_FILENAME} in this directory (is the run finished?)")
        path = path / MODEL_FILENAME
    _, metadata = read_npz(path)
    if metadata.get("kind") == "model":
        return load_model(path)
    if metadata.get("kind") != "checkpoint":
        raise ValueError(f"{path}: neither a model nor a checkpoint")
    state = load_checkpoint(path)
    config = state.get("config")
    if config is None:
        raise ValueError(f"{path}: the checkpoint does not say which model it holds (no config)")
    if not isinstance(config, dict) or not isinstance(state.get("model"), dict):
        raise ValueError(f"{path}: damaged checkpoint: its 'config' or 'model' is not a JSON object")
    kwargs, options = config.get("model_kwargs", {}), config.get("data_kwargs")
    check_revision(path, config.get("model"), manifest_revision(config))
    model = build_model(path, config.get("model"), kwargs, where="config")
    load_weights(path, model, state["model"], config["model"])
    metadata = {"model": config["model"], "model_kwargs": kwargs, "data": config.get("data"), "classes": None,
                "seed": config.get("seed"), "data_kwargs": data_options(config) if isinstance(options, dict) else options,
                "streams": config.get("batch_size") if model.carries_state else None}
    check_metadata(path, metadata, model)
    return model, metadata
