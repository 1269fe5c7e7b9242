"""Find the trained model behind a path a user gives: a run directory, a model file
(``model.npz``) or a checkpoint (``checkpoint.npz``, which carries its run's config)."""
from __future__ import annotations

from pathlib import Path

from ..io import load_model, read_npz
from .build import data_options
from .checkpoint import load_checkpoint

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
    from ..models import get_model

    model = get_model(config["model"], **config["model_kwargs"])
    model.load_state_dict(state["model"])
    streams = config["batch_size"] if model.carries_state else None
    return model, {"model": config["model"], "model_kwargs": config["model_kwargs"], "data": config["data"],
                   "classes": None, "seed": config["seed"], "data_kwargs": data_options(config), "streams": streams}
