"""Helpers for comparing handgrad with PyTorch (the test-only oracle)."""
import numpy as np
import torch

torch.set_default_dtype(torch.float32)
torch.set_num_threads(1)  # the tensors here are small; more threads only contend with pytest-xdist workers


def t(a, grad=False):
    """A torch tensor with a copy of the NumPy array ``a``."""
    out = torch.tensor(np.ascontiguousarray(a))
    return out.requires_grad_(grad) if grad else out


def copy_weights(hg_module, torch_module):
    """Load handgrad's state dict into the torch module (names and layouts are shared)."""
    state = {k: torch.tensor(v) for k, v in hg_module.state_dict().items()}
    torch_module.load_state_dict(state, strict=True)


def assert_close(ours, theirs, tol=1e-5, name=""):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol, err_msg=name)


def assert_grads_match(hg_module, torch_module, tol=1e-5):
    """Every parameter gradient of handgrad equals torch's, by name."""
    theirs = dict(torch_module.named_parameters())
    for name, p in hg_module.named_parameters():
        assert name in theirs, f"torch has no parameter {name}"
        assert_close(p.grad, theirs[name].grad, tol, name)


class CharLSTMTwin(torch.nn.Module):
    """The torch stack of handgrad.models.char_lstm (Embedding -> LSTM -> Linear), same names."""

    def __init__(self, vocab, embedding_dim, hidden, num_layers=1):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, embedding_dim)
        self.lstm = torch.nn.LSTM(embedding_dim, hidden, num_layers=num_layers, batch_first=True)
        self.decoder = torch.nn.Linear(hidden, vocab)

    def forward(self, x):
        return self.decoder(self.lstm(self.embedding(x))[0])


def torch_twins():
    """benchmarks/torch_twins.py: the zoo models built in PyTorch (one definition for the
    benchmarks and the tests)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "torch_twins.py"
    spec = importlib.util.spec_from_file_location("torch_twins", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
