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

# A zoo model's revision goes up when the same name and arguments start to build a
# different network. Model files and run manifests record it (none recorded: 1), and
# one saved at another revision is refused, saying what changed: its weights would
# not fit, or would fit and mean something else.
REVISIONS = {
    "cnn": (2, "each block pools before its batch norm: conv, pool, batch norm, ReLU "
               "(revision 1: conv, batch norm, pool, ReLU)"),
}


def revision(name: str) -> int:
    """The revision of the network this handgrad builds as ``name``."""
    return REVISIONS[name][0] if name in REVISIONS else 1


def check_revision(source, name: str, saved) -> None:
    """Raise ValueError naming ``source`` when a ``name`` model saved at revision
    ``saved`` (None: saved before revisions were recorded, so 1) is not the one this
    handgrad builds."""
    saved = 1 if saved is None else saved
    if isinstance(name, str) and name in MODELS and saved != revision(name):
        change = f"; {REVISIONS[name][1]}" if name in REVISIONS else ""
        raise ValueError(f"{source}: holds a {name!r} of revision {saved}, but this handgrad builds revision "
                         f"{revision(name)}{change}: its weights do not fit, so train it again (or load it "
                         f"with the handgrad that saved it)")


def get_model(name: str, **kwargs):
    """Build the model registered as ``name`` with the builder's keyword arguments."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
