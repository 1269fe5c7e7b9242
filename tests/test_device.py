import importlib.util

import numpy as np
import pytest

from handgrad import nn


def test_to_cpu_keeps_values_and_numpy_arrays():
    model = nn.Sequential(nn.Linear(3, 2))
    before = model.state_dict()
    assert model.to("cpu") is model
    for name, value in model.state_dict().items():
        assert type(value) is np.ndarray
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed: the error path cannot happen")
def test_cuda_without_cupy_says_what_to_install():
    with pytest.raises(ImportError, match="needs CuPy: pip install cupy"):
        nn.Linear(3, 2).to("cuda")


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        nn.Linear(3, 2).to("tpu")
