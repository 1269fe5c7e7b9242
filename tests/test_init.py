"""handgrad.init: each initialiser draws from the distribution its docstring states (the
torch.nn.init formulas), judged on a large weight."""
import math

import numpy as np
import pytest
import torch

from handgrad import init
from handgrad.nn import Parameter

SHAPE = (200, 100, 3, 3)  # fan_in = 900, fan_out = 1800


def fill(fn, **kw):
    p = Parameter(np.zeros(SHAPE))
    assert fn(p, rng=0, **kw) is p
    return p.data


@pytest.mark.parametrize("name,kw", [
    ("xavier_uniform_", {"gain": 2.0}), ("xavier_normal_", {"gain": 2.0}),
    ("kaiming_uniform_", {"nonlinearity": "relu"}), ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "tanh"}),
])
def test_initialisers_match_torch_std_and_bounds(name, kw):
    ours = fill(getattr(init, name), **kw)
    theirs = getattr(torch.nn.init, name)(torch.empty(SHAPE, dtype=torch.float64), **kw).numpy()
    assert ours.std() == pytest.approx(theirs.std(), rel=0.01)  # 180,000 draws: std known to ~0.2%
    assert abs(ours.mean()) < 0.01 * ours.std()
    if "uniform" in name:
        assert np.abs(ours).max() <= np.abs(theirs).max() * (1 + 1e-3)
        assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=1e-3)


def test_kaiming_std_formula():
    std = fill(init.kaiming_normal_, nonlinearity="relu").std()
    assert std == pytest.approx(math.sqrt(2.0) / math.sqrt(900), rel=0.01)
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        fill(init.kaiming_uniform_, mode="fan")
