import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

# Under pytest-xdist every worker is its own process: BLAS threads on top of
# that oversubscribe the cores and spinning threads slow everything down.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    threadpool_limits(1)

settings.register_profile(
    "default", deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow]
)
# CI draws the same examples every run, so a red build can be reproduced
settings.register_profile(
    "ci", deadline=None, max_examples=30, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
