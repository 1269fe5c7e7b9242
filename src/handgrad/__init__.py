"""handgrad: deep learning from scratch in NumPy, every gradient derived by hand."""
from . import backend, init, nn, ops
from . import data, metrics, plots
from . import gradcheck, optim, scalar
from .backend import get_default_dtype, manual_seed, set_default_dtype
from .nn import is_grad_enabled, no_grad, set_grad_enabled

__version__ = "0.1.0"
from . import models
from .summary import summary
