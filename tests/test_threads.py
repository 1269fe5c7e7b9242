"""BLAS threads of one-process training steps (handgrad.parallel.threads): small
matrix products on one thread during the steps, BLAS's own threads for evaluation."""
import sys

import numpy as np
import pytest

from handgrad import models, nn
from handgrad.optim import SGD
from handgrad.parallel import StepThreads, steps_on_one_thread
from handgrad.train import Trainer

from trainer_helpers import blobs

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None
needs_threadpoolctl = pytest.mark.skipif(threadpoolctl is None, reason="needs threadpoolctl")


def blas_threads():
    return {lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"}


def test_one_thread_for_small_products_of_a_blas_bound_model_in_one_cpu_process():
    mlp = models.mlp(784, [200], 10)  # largest weight 784 x 200 = 156,800 entries
    assert steps_on_one_thread(mlp, 8) and steps_on_one_thread(mlp, 38)
    assert not steps_on_one_thread(mlp, 39)  # 39 x 156,800 > 6 million
    assert not steps_on_one_thread(mlp, None)  # a batch source without a batch size
    assert not steps_on_one_thread(mlp, 8, workers=2)
    assert not steps_on_one_thread(mlp, 8, device="cuda")
    assert not steps_on_one_thread(models.lenet5(), 2)  # convolutions are not blas_bound


@needs_threadpoolctl
def test_step_threads_hold_one_thread_and_lift_the_hold_for_a_block():
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        with StepThreads(True) as threads:
            assert blas_threads() == {1}
            with threads.lifted():
                assert blas_threads() == {2}
            assert blas_threads() == {1}
            with threads:  # entered again inside its own block: nothing more to hold
                assert blas_threads() == {1}
            assert blas_threads() == {1}
        assert blas_threads() == {2}
        with StepThreads(False):
            assert blas_threads() == {2}
        with pytest.raises(KeyError), StepThreads(True):
            raise KeyError("a failing step")
        assert blas_threads() == {2}


@needs_threadpoolctl
def test_holds_of_runs_sharing_a_process_end_in_any_order():
    """Two runs in threads of one process (a sweep on a Dask worker): BLAS keeps one
    thread until the last hold ends, whichever ends first."""
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        first, second = StepThreads(True), StepThreads(True)
        first.__enter__()
        second.__enter__()
        with first.lifted():
            assert blas_threads() == {1}  # the second run still holds it
        first.__exit__(None, None, None)
        assert blas_threads() == {1}
        second.__exit__(None, None, None)
        assert blas_threads() == {2}


class Recorder(nn.Module):
    """A blas_bound identity layer that notes BLAS's threads at every forward pass, by mode."""

    blas_bound = True

    def __init__(self, fail_at=None):
        super().__init__()
        self.seen = {True: set(), False: set()}
        self.calls, self.fail_at = 0, fail_at

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("a failing forward pass")
        self.seen[self.training].update(blas_threads())
        return x

    def backward(self, dout):
        return dout


def recorded_trainer(batch_size, recorder, on_eval=None):
    # largest weight 2 x 1500 = 3000 entries: a batch of 8 is small, one of 4096 (here: 600 rows) is not
    model = nn.Sequential(nn.Linear(2, 1500, rng=0), recorder, nn.ReLU(), nn.Linear(1500, 3, rng=1))
    return Trainer(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.01), blobs(600), blobs(200, seed=1),
                   epochs=1, batch_size=batch_size, test_data=blobs(100, seed=2), progress="none", on_eval=on_eval)


@needs_threadpoolctl
@pytest.mark.parametrize("batch_size, step_threads", [(8, 1), (4096, 2)])
def test_the_trainer_runs_small_steps_on_one_thread_and_evaluates_with_all(batch_size, step_threads):
    recorder, in_on_eval = Recorder(), set()
    trainer = recorded_trainer(batch_size, recorder, on_eval=lambda trainer, record: in_on_eval.update(blas_threads()))
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        trainer.fit()
        assert blas_threads() == {2}  # the hold ends with fit
    assert recorder.seen[True] == {step_threads}
    assert recorder.seen[False] == {2}  # evaluation on the validation and the test set
    assert in_on_eval == {2}
    assert np.isfinite(trainer.history["iteration_loss"]).all()


@needs_threadpoolctl
def test_a_failing_fit_gives_blas_its_threads_back():
    trainer = recorded_trainer(8, Recorder(fail_at=5))
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        with pytest.raises(RuntimeError, match="a failing forward pass"):
            trainer.fit()
        assert blas_threads() == {2}


def test_without_threadpoolctl_blas_keeps_its_threads(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    with StepThreads(True) as threads:
        assert not threads.one
        with threads.lifted():
            pass
