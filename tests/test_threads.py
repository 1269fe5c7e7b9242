"""BLAS threads of one-process training steps (handgrad.parallel.threads): small
matrix products on one thread during the steps, BLAS's own threads for evaluation."""
import numpy as np
import pytest

from handgrad import models, nn
from handgrad.optim import SGD
from handgrad.parallel import StepThreads, small_products
from handgrad.train import Trainer

from trainer_helpers import blobs

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads():
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]


def test_small_products_are_rows_times_the_largest_weight_of_a_blas_bound_model():
    mlp = models.mlp(784, [200], 10)  # largest weight 784 x 200 = 156,800 entries
    assert small_products(mlp, 8) and small_products(mlp, 38)
    assert not small_products(mlp, 39)  # 39 x 156,800 > 6 million
    assert not small_products(models.lenet5(), 2)  # convolutions are not blas_bound


def test_step_threads_hold_one_thread_and_lift_the_hold_for_a_block():
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        with StepThreads(True) as threads:
            assert set(blas_threads()) == {1}
            with threads.lifted():
                assert set(blas_threads()) == {2}
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {2}
        with StepThreads(False):
            assert set(blas_threads()) == {2}


class Recorder(nn.Module):
    """A blas_bound identity layer that notes BLAS's threads at every forward pass, by mode."""

    blas_bound = True

    def __init__(self):
        super().__init__()
        self.seen = {True: set(), False: set()}

    def forward(self, x):
        self.seen[self.training].update(blas_threads())
        return x

    def backward(self, dout):
        return dout


@pytest.mark.parametrize("batch_size, step_threads", [(8, 1), (4096, 2)])
def test_the_trainer_runs_small_steps_on_one_thread_and_evaluates_with_all(batch_size, step_threads):
    X, y = blobs(600)
    recorder = Recorder()
    # largest weight 2 x 1500 = 3000 entries: a batch of 8 is small, one of 4096 (here: 600 rows) is not
    model = nn.Sequential(nn.Linear(2, 1500, rng=0), recorder, nn.ReLU(), nn.Linear(1500, 3, rng=1))
    trainer = Trainer(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.01), (X, y), blobs(200, seed=1),
                      epochs=1, batch_size=batch_size, test_data=blobs(100, seed=2), progress="none")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        trainer.fit()
        assert set(blas_threads()) == {2}  # the hold ends with fit
    assert recorder.seen[True] == {step_threads}
    assert recorder.seen[False] == {2}  # evaluation on the validation and the test set
    assert np.isfinite(trainer.history["iteration_loss"]).all()


def test_without_threadpoolctl_blas_keeps_its_threads(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "threadpoolctl", None)
    with StepThreads(True) as threads:
        assert not threads.one
        with threads.lifted():
            pass
