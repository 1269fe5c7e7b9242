"""Data parallelism over processes (handgrad.parallel): the same loss and gradients
as one pass over the whole batch, training that matches workers=1, clear refusals
and failures, nothing left behind."""
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest

import handgrad
from handgrad import models, nn, optim
from handgrad.nn import RandomShiftFlip
from handgrad.parallel import DataParallel, ParallelError, check_parallel
from handgrad.train import Trainer

from parallel_helpers import float64, image_batch, split_small_batches, text_batch  # noqa: F401 (fixtures)

pytest.importorskip("threadpoolctl")
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


CASES = {
    "mlp": (lambda: models.mlp(784, [16, 8], 10), nn.CrossEntropyLoss, image_batch),
    "lenet5": (models.lenet5, nn.CrossEntropyLoss, image_batch),
    "char_lstm": (lambda: models.char_lstm(65, 12, num_layers=2, embedding_dim=6), nn.TemporalCrossEntropyLoss,
                  text_batch),
}


def one_pass(model, loss, x, y):
    model.zero_grad()
    value = loss.forward(model(x), y)
    model.backward(loss.backward())
    return value, [p.grad.copy() for p in model.parameters()]


def parallel_step(net, loss, x, y):
    """Forward on the processes, the loss here, backward on the processes:
    (loss value, whether all outputs were finite)."""
    out = net(x)
    finite = bool(np.isfinite(out).all())
    value = loss.forward(out, y)
    net.backward(loss.backward())
    return value, finite


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("workers, n", [(2, 7), (2, 2), (3, 10)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_loss_and_gradients_equal_one_pass_over_the_whole_batch(float64, name, workers, n, reduction):
    build, make_loss, make_batch = CASES[name]
    handgrad.manual_seed(1)
    model, loss = build(), make_loss(reduction=reduction)
    x, y = make_batch(n, np.random.default_rng(n))
    expected_value, expected_grads = one_pass(model, loss, x, y)
    with DataParallel(model, workers) as parallel:
        for _ in range(2):  # the second step reuses the running workers
            model.zero_grad()
            value, finite = parallel_step(parallel, loss, x, y)
            assert finite
            assert value == pytest.approx(expected_value, rel=1e-12)
            for (pname, p), g in zip(model.named_parameters(), expected_grads):
                np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-13, err_msg=pname)


def test_a_stateful_model_carries_the_whole_batchs_state_as_in_one_process(float64):
    """Truncated BPTT: each worker gets its rows of the carried (h, c) and hands back
    its final rows; the caller's model.carried_state is the whole batch's."""
    handgrad.manual_seed(4)
    model, loss = models.char_lstm(65, 10, num_layers=2, embedding_dim=6, stateful=True), nn.TemporalCrossEntropyLoss()
    twin = models.char_lstm(65, 10, num_layers=2, embedding_dim=6, stateful=True)
    twin.load_state_dict(model.state_dict())
    rng = np.random.default_rng(0)
    with DataParallel(model, 2) as parallel:
        for step in range(3):
            x, y = text_batch(5, rng)
            expected_value, expected_grads = one_pass(twin, loss, x, y)
            model.zero_grad()
            value, _ = parallel_step(parallel, loss, x, y)
            assert value == pytest.approx(expected_value, rel=1e-12), step
            for (name, p), g in zip(model.named_parameters(), expected_grads):
                np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-13, err_msg=name)
            for a, b in zip(model.carried_state, twin.carried_state):
                assert a.shape == (2, 5, 10)
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        model.carried_state = None  # a reset (the Trainer's, at each epoch) reaches the workers
        twin.carried_state = None
        x, y = text_batch(5, rng)
        model.zero_grad()
        assert parallel_step(parallel, loss, x, y)[0] == pytest.approx(one_pass(twin, loss, x, y)[0], rel=1e-12)


def test_workers_follow_the_weights_after_each_update(float64):
    handgrad.manual_seed(2)
    model, loss = models.mlp(784, [8], 10), nn.CrossEntropyLoss()
    twin = models.mlp(784, [8], 10)
    twin.load_state_dict(model.state_dict())
    x, y = image_batch(6, np.random.default_rng(0))
    opt, twin_opt = optim.SGD(model.parameters(), lr=0.5), optim.SGD(twin.parameters(), lr=0.5)
    with DataParallel(model, 2) as parallel:
        for _ in range(3):
            opt.zero_grad()
            value, _ = parallel_step(parallel, loss, x, y)
            opt.step()
            twin_value, _ = one_pass(twin, loss, x, y)
            twin_opt.step()
            assert value == pytest.approx(twin_value, rel=1e-12)
    for a, b in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-14)


def test_rows_that_outgrow_the_shared_inbox_go_through_the_pipe(float64):
    """The inbox is sized by the first batch; a larger later batch still trains right."""
    handgrad.manual_seed(3)
    model, loss = models.mlp(784, [8], 10), nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    with DataParallel(model, 2) as parallel:
        for n in (4, 30, 3):
            x, y = image_batch(n, rng)
            expected_value, expected_grads = one_pass(model, loss, x, y)
            model.zero_grad()
            value, _ = parallel_step(parallel, loss, x, y)
            assert value == pytest.approx(expected_value, rel=1e-12)
            for p, g in zip(model.parameters(), expected_grads):
                np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("n, min_rows", [(1, 1), (31, None), (31, 16)])
def test_a_batch_with_fewer_rows_than_workers_times_min_rows_runs_here(float64, monkeypatch, n, min_rows):
    monkeypatch.undo()  # the default MIN_ROWS (16) when min_rows is None
    model, loss = models.mlp(784, [8], 10), nn.CrossEntropyLoss()
    x, y = image_batch(n, np.random.default_rng(0))
    expected_value, expected_grads = one_pass(model, loss, x, y)
    with DataParallel(model, 2, min_rows=min_rows) as parallel:
        model.zero_grad()
        value, _ = parallel_step(parallel, loss, x, y)
        assert not multiprocessing.active_children()
    assert value == expected_value
    for p, g in zip(model.parameters(), expected_grads):
        np.testing.assert_array_equal(p.grad, g)


def test_in_eval_mode_the_workers_evaluate_and_the_carried_state_is_left_alone(float64):
    handgrad.manual_seed(5)
    model = models.char_lstm(65, 10, num_layers=2, embedding_dim=6, stateful=True)
    x, _ = text_batch(6, np.random.default_rng(0))
    with DataParallel(model, 2) as net:
        net(x)  # training: the workers start, and the model carries the batch's final state
        carried = model.carried_state
        net.eval()
        out = net(x)
        assert not model.training and model.carried_state is carried
        np.testing.assert_allclose(out, model(x), rtol=1e-12)  # from zeros, as in one process
        net.train()
        net(x)
        assert model.carried_state is not carried


def test_backward_needs_the_rows_of_the_last_forward_pass():
    model = models.mlp(784, [8], 10)
    x, _ = image_batch(4, np.random.default_rng(0))
    with DataParallel(model, 2) as net:
        out = net(x)
        with pytest.raises(ValueError, match="dout has 3 rows but the last forward pass had 4"):
            net.backward(out[:3])


def test_ctrl_c_is_left_to_the_caller():
    """SIGINT reaches the whole process group; the workers carry on until the caller,
    which handles it, stops them."""
    model, loss = models.mlp(784, [8], 10), nn.CrossEntropyLoss()
    x, y = image_batch(4, np.random.default_rng(0))
    with DataParallel(model, 2) as net:
        parallel_step(net, loss, x, y)
        (worker,) = multiprocessing.active_children()
        os.kill(worker.pid, signal.SIGINT)
        parallel_step(net, loss, x, y)
        assert worker.is_alive()


class Noisy(nn.Module):
    """A layer of the user's own that declares it draws random numbers."""

    draws_random = True


@pytest.mark.parametrize("build, message", [
    (lambda: nn.Sequential(models.char_lstm(65, 8, stateful=True)), "carries its state"),
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.Sequential(Noisy())),
     r"^workers > 1: layer 1\.0 \(Noisy\) draws random numbers.*; train this model with workers=1$"),
])
def test_models_that_would_train_differently_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        check_parallel(build(), 2)
    check_parallel(build(), 1)  # one process is always fine


@pytest.mark.parametrize("build", [models.cnn, lambda: nn.Sequential(RandomShiftFlip(), nn.Flatten(), nn.Linear(784, 10)),
                                   lambda: nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))])
def test_batch_norm_dropout_and_augmentation_are_accepted(build):
    check_parallel(build(), 2)


@pytest.mark.parametrize("workers", [0, -1, True, 2.0, "2"])
def test_workers_must_be_a_positive_integer(workers):
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        check_parallel(models.mlp(4, [4], 2), workers)


class Boom(nn.Module):
    """Raises ``error`` in the forward pass on the rows a worker gets (the first rows)."""

    def __init__(self, error=RuntimeError("negative first row")):
        super().__init__()
        self.error = error

    def forward(self, x):
        if x[0, 0] < 0:
            raise self.error
        return x

    def backward(self, dout):
        return dout


def test_an_exception_in_a_worker_is_reported_with_its_traceback():
    x = np.ones((4, 3), dtype=np.float32)
    x[0] = -100
    with DataParallel(nn.Sequential(Boom()), 2) as parallel:
        with pytest.raises(ParallelError, match="(?s)worker 1 failed.*negative first row"):
            parallel_step(parallel, nn.MSELoss(), x, np.zeros_like(x))
    assert not multiprocessing.active_children()


def hungry():
    """Runs out of memory on the rows a worker gets."""
    return Boom(MemoryError("cannot allocate 1.00 TiB"))


def test_a_worker_out_of_memory_is_a_memory_error_as_in_one_process():
    x = np.ones((4, 3), dtype=np.float32)
    x[0] = -100
    with DataParallel(nn.Sequential(hungry()), 2) as parallel:
        with pytest.raises(MemoryError, match=r"^in data-parallel worker 1: MemoryError: cannot allocate 1\.00 TiB$"):
            parallel(x)
    assert not multiprocessing.active_children()


def test_prediction_out_of_memory_in_a_worker_says_to_use_a_smaller_batch():
    from handgrad.cli import UsageError
    from handgrad.cli.evaluate import predict_batched

    x = np.ones((40, 3), dtype=np.float32)
    x[0] = -100
    with pytest.raises(UsageError, match=r"^--batch-size 40: a batch of 40 samples did not fit in memory "
                                         r"\(.*cannot allocate 1\.00 TiB\); try a smaller --batch-size$"):
        predict_batched(nn.Sequential(hungry(), nn.Flatten()), x, 40)


def test_a_worker_failing_before_an_exchange_is_reported_while_the_caller_waits_for_its_sums():
    # the caller reaches batch norm's exchange and gets the worker's error instead of its partial sums
    x = np.ones((4, 3), dtype=np.float32)
    x[0] = -100
    model = nn.Sequential(Boom(), nn.BatchNorm1d(3))
    with DataParallel(model, 2) as parallel:
        with pytest.raises(ParallelError, match="(?s)worker 1 failed.*negative first row"):
            parallel(x)
    assert not multiprocessing.active_children()


def shm_files(pid):
    """The /dev/shm files process ``pid`` maps (its shared memory with a name)."""
    with open(f"/proc/{pid}/maps") as f:
        return {line.split(maxsplit=5)[5].split(" (deleted)")[0].strip() for line in f
                if "/dev/shm/" in line}


def test_an_exception_in_the_callers_share_stops_the_workers_and_the_next_batch_starts_afresh():
    good = np.arange(12, dtype=np.float32).reshape(4, 3)
    bad = np.ones((4, 3), dtype=np.float32)
    bad[2] = -100  # the first of the caller's rows
    with DataParallel(nn.Sequential(Boom()), 2) as net:
        np.testing.assert_array_equal(net(good), good)  # the worker starts
        with pytest.raises(RuntimeError, match="negative first row"):
            net(bad)
        assert not multiprocessing.active_children()  # its answer was on its way: it is stopped
        np.testing.assert_array_equal(net(good + 1), good + 1)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc")
def test_a_killed_worker_is_reported_and_nothing_is_left_behind():
    model, loss = models.mlp(784, [8], 10), nn.CrossEntropyLoss()
    x, y = image_batch(4, np.random.default_rng(0))
    parallel = DataParallel(model, 2)
    parallel_step(parallel, loss, x, y)
    (worker,) = multiprocessing.active_children()
    names = shm_files(os.getpid()) | shm_files(worker.pid)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    with pytest.raises(ParallelError, match="died"):
        parallel_step(parallel, loss, x, y)
    assert not multiprocessing.active_children()
    for name in names:
        assert not os.path.exists(name)
    parallel.close()  # a second close is harmless


def trainer_run(workers, checkpoint_dir=None):
    handgrad.manual_seed(0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((120, 6)), rng.integers(0, 3, 120)
    model = models.mlp(6, [16], 3)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2), (X[:100], y[:100]),
                      (X[100:], y[100:]), epochs=3, batch_size=16, progress="none", workers=workers,
                      checkpoint_dir=checkpoint_dir)
    return trainer.fit(), model


def test_trainer_with_two_workers_follows_the_one_process_run(float64, tmp_path):
    history, model = trainer_run(1)
    parallel_history, parallel_model = trainer_run(2, tmp_path)
    assert not multiprocessing.active_children()
    np.testing.assert_allclose(parallel_history["iteration_loss"], history["iteration_loss"], rtol=1e-9)
    for a, b in zip(parallel_model.parameters(), model.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-8, atol=1e-10)


def test_cli_trains_with_two_workers_batch_norm_included(tmp_path):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "handgrad", "train", "--data", "digits", "--epochs", "1", "--quiet"]
    done = subprocess.run([*base, "--workers", "2", "--out", str(tmp_path / "run")], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "test accuracy:" in done.stdout
    cnn = subprocess.run([*base, "--model", "cnn", "--workers", "2", "--out", str(tmp_path / "cnn")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert cnn.returncode == 0, cnn.stderr
    assert "test accuracy:" in cnn.stdout


def test_cnn_on_data_that_are_not_images_is_a_clear_error():
    with pytest.raises(ValueError, match=r"cnn: needs images, input_shape \(C, H, W\); got input_shape \(2,\)"):
        models.cnn(input_shape=(2,))


def test_without_threadpoolctl_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    with pytest.raises(ValueError, match=r'pip install "handgrad\[parallel\]"'):
        check_parallel(models.mlp(4, [4], 2), 2)
    check_parallel(models.mlp(4, [4], 2), 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_divergence_is_reported_the_same_with_any_number_of_workers(workers):
    """NaN outputs in any process stop the run with TrainingDiverged, not with the
    loss's own complaint about NaN logits."""
    from handgrad.train import TrainingDiverged

    handgrad.manual_seed(0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 6)) * 100, rng.integers(0, 3, 64)
    model = models.mlp(6, [16], 3)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=1e6), (X, y), epochs=3,
                      batch_size=16, progress="none", workers=workers)
    with pytest.raises(TrainingDiverged, match="the model output contains NaN or inf at iteration 7"):
        trainer.fit()
    assert not multiprocessing.active_children()


def test_an_exchanges_sums_are_read_only_as_the_sums_expected():
    from handgrad.parallel.worker import SUMS, read_sums

    like = np.zeros(3, dtype=np.float32)
    np.testing.assert_array_equal(read_sums(SUMS + np.arange(3, dtype=np.float32).tobytes(), like), [0, 1, 2])
    assert read_sums(pickle.dumps(("error", "text", False)), like) is None  # a pickled answer
    with pytest.raises(ParallelError, match="sums came as 8 bytes, expected 12"):
        read_sums(SUMS + np.zeros(2, dtype=np.float32).tobytes(), like)
