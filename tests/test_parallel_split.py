"""Every zoo model trains the same on any number of processes: layers that draw
random numbers take their rows of the whole batch's draws, batch norm gathers the
whole batch's statistics (handgrad.parallel.shard)."""
import multiprocessing
import os

import numpy as np
import pytest

import handgrad
from handgrad import models, nn, optim
from handgrad.backend import get_rng
from handgrad.parallel import DataParallel, check_parallel

from parallel_helpers import float64, image_batch, split_small_batches, text_batch  # noqa: F401 (fixtures)

pytest.importorskip("threadpoolctl")
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def noisy_features():
    """Dropout2d and BatchNorm1d, which no zoo model has. (No bias before batch norm: its
    gradient is zero up to rounding, which Adam would blow up to steps of size lr.)"""
    return nn.Sequential(nn.Conv2d(1, 3, 3, stride=3, bias=False), nn.BatchNorm2d(3), nn.Dropout2d(0.4), nn.Flatten(),
                         nn.Linear(243, 12, bias=False), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 10))


ZOO = {
    "mlp": (lambda: models.mlp(784, [16, 8], 10, dropout=0.3), nn.CrossEntropyLoss, image_batch),
    "lenet5": (models.lenet5, nn.CrossEntropyLoss, image_batch),
    "small_cnn": (models.small_cnn, nn.CrossEntropyLoss, image_batch),
    "cnn": (lambda: models.cnn(shift=2), nn.CrossEntropyLoss, image_batch),
    "char_lstm": (lambda: models.char_lstm(65, 12, num_layers=2, embedding_dim=6), nn.TemporalCrossEntropyLoss,
                  text_batch),
    "dropout2d+bn1d": (noisy_features, nn.CrossEntropyLoss, image_batch),
}


def train(name, workers, steps=3, n=11):
    """``steps`` Adam steps on ``workers`` processes: (losses, state_dict, generator's next draw)."""
    build, make_loss, make_batch = ZOO[name]
    handgrad.manual_seed(3)
    model, loss = build(), make_loss()
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(5)
    net = model if workers == 1 else DataParallel(model, workers)
    losses = []
    try:
        for _ in range(steps):
            x, y = make_batch(n, rng)
            value = loss(net(x), y)
            optimizer.zero_grad()
            net.backward(loss.backward())
            optimizer.step()
            losses.append(value)
    finally:
        if workers > 1:
            net.close()
    return losses, model.state_dict(), get_rng().random()


@pytest.mark.parametrize("name", ZOO)
def test_three_steps_give_the_same_weights_losses_and_running_statistics_on_1_2_and_3_processes(float64, name):
    losses, state, next_draw = train(name, 1)
    for workers in (2, 3):
        parallel_losses, parallel_state, parallel_next_draw = train(name, workers)
        np.testing.assert_allclose(parallel_losses, losses, rtol=1e-10)
        assert parallel_state.keys() == state.keys()
        for key in state:
            np.testing.assert_allclose(parallel_state[key], state[key], rtol=1e-10, atol=1e-12, err_msg=key)
        assert parallel_next_draw == next_draw  # the global generator was used as in one process
    assert not multiprocessing.active_children()


def test_the_workers_evaluate_with_the_callers_running_statistics(float64):
    handgrad.manual_seed(0)
    model = models.cnn()
    x, y = image_batch(10, np.random.default_rng(0))
    loss = nn.CrossEntropyLoss()
    with DataParallel(model, 2) as net:
        loss(net(x), y)  # a training pass: the workers start
        net.backward(loss.backward())
        for _, m in model.named_modules():
            if m.batch_statistics:
                m.running_mean += 1.0  # changed here only, as loading a checkpoint would
        net.eval()
        parallel_out = net(x)
    np.testing.assert_allclose(parallel_out, model.eval()(x), rtol=1e-12)


class Noisy(nn.Module):
    """A layer of the user's own that draws random numbers but cannot be told its rows."""

    draws_random = True


class Batchy(nn.Module):
    batch_statistics = True


@pytest.mark.parametrize("layer, message", [
    (Noisy, r"^workers > 1: layer 1\.0 \(Noisy\) draws random numbers in training but has no shard"),
    (Batchy, r"^workers > 1: layer 1\.0 \(Batchy\) uses statistics of the whole batch in training but has no shard"),
])
def test_layers_that_cannot_be_told_their_rows_are_refused(layer, message):
    with pytest.raises(ValueError, match=message):
        check_parallel(nn.Sequential(nn.Linear(4, 4), nn.Sequential(layer())), 2)


def test_trainer_workers_default_to_the_usable_cores_when_the_model_can_be_split_and_gains():
    from handgrad.parallel import usable_cores
    from handgrad.train import Trainer

    X, y = np.zeros((8, 4)), np.zeros(8, dtype=int)

    def trainer(model, data=(X, y), **kwargs):
        return Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), data, epochs=1,
                       batch_size=4, progress="none", **kwargs)

    images = (np.zeros((8, 1, 4, 4)), y)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    assert trainer(conv, images).workers == usable_cores()
    assert trainer(models.mlp(4, [4], 2)).workers == 1  # BLAS threads an MLP's products: one process
    assert trainer(models.mlp(4, [4], 2), workers=2).workers == 2
    assert trainer(nn.Sequential(nn.Conv2d(1, 2, 3), Noisy()), images).workers == 1  # cannot be split
    assert trainer(models.mlp(4, [4], 2), workers=1).workers == 1
    with pytest.raises(ValueError, match="draws random numbers"):
        trainer(nn.Sequential(nn.Linear(4, 2), Noisy()), workers=2)


@pytest.mark.parametrize("value, ok", [("auto", True), (3, True), (0, False), ("two", False), (2.0, False)])
def test_the_workers_setting_is_auto_or_a_positive_integer(value, ok):
    from handgrad.train.config import DEFAULTS, ConfigError, check_config

    assert DEFAULTS["workers"] == "auto"
    if ok:
        check_config({"workers": value})
    else:
        with pytest.raises(ConfigError, match=r'workers must be "auto" or a positive integer'):
            check_config({"workers": value})


def test_a_run_records_the_resolved_worker_count(tmp_path):
    import json

    from handgrad.parallel import usable_cores
    from handgrad.train.run import train_from_config

    train_from_config({"data": "digits", "model": "cnn", "epochs": 1}, out_dir=tmp_path / "conv")
    assert json.loads((tmp_path / "conv" / "config.json").read_text())["workers"] == usable_cores()
    train_from_config({"data": "synth", "model": "mlp", "epochs": 1}, out_dir=tmp_path / "mlp")
    assert json.loads((tmp_path / "mlp" / "config.json").read_text())["workers"] == 1


@pytest.mark.parametrize("name", ["cnn", "char_lstm"])
def test_parallel_evaluation_gives_the_predictions_of_one_process(float64, name):
    from handgrad.train.evaluate import evaluate, predict_logits

    build, make_loss, make_batch = ZOO[name]
    handgrad.manual_seed(0)
    model, loss = build(), make_loss()
    x, y = make_batch(13, np.random.default_rng(1))
    loss(model(x), y)  # one training pass: running statistics that are not the initial ones
    serial_logits, serial = predict_logits(model, x, batch_size=5), evaluate(model, loss, (x, y), batch_size=5)
    with DataParallel(model, 2) as net:
        logits, result = predict_logits(net, x, batch_size=5), evaluate(net, loss, (x, y), batch_size=5)
        assert len(multiprocessing.active_children()) == 1  # the worker took its rows
        assert model.training  # the mode is put back
    np.testing.assert_allclose(logits, serial_logits, rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(logits.argmax(-1), serial_logits.argmax(-1))
    assert result["loss"] == pytest.approx(serial["loss"], rel=1e-12)
    assert result["accuracy"] == serial["accuracy"]


def test_auto_is_one_process_in_a_sweeps_parallel_jobs(monkeypatch):
    """A sweep's joblib jobs already share the cores: their runs' "auto" is one process."""
    from handgrad.parallel import usable_cores
    from handgrad.parallel.check import AUTO_ONE, auto_workers
    from handgrad.sweep.execute import _end_with_sweep

    monkeypatch.setattr("handgrad.sweep.execute.die_with_parent", lambda pid: True)
    monkeypatch.setenv(AUTO_ONE, "")  # recorded, so that the teardown removes what the sweep sets
    monkeypatch.delenv(AUTO_ONE)
    assert auto_workers() == usable_cores()
    _end_with_sweep(os.getppid())
    assert auto_workers() == 1


@pytest.mark.parametrize("name, splits", [("cnn", True), ("mlp", False)])
def test_command_line_predictions_share_their_batches_as_training_does(monkeypatch, float64, name, splits):
    from handgrad.cli.evaluate import predict_batched
    from handgrad.parallel import usable_cores
    from handgrad.train.evaluate import predict

    passes = []
    split_forward = DataParallel._forward
    monkeypatch.setattr(DataParallel, "_forward", lambda net, x, bounds: passes.append(bounds) or split_forward(
        net, x, bounds))
    build, _, make_batch = ZOO[name]
    handgrad.manual_seed(0)
    model = build()
    x, _ = make_batch(70, np.random.default_rng(2))
    np.testing.assert_array_equal(predict_batched(model, x, 64), predict(model, x, 64))
    assert bool(passes) == (splits and usable_cores() > 1)


def test_the_trainers_evaluations_share_their_batches_too(monkeypatch):
    from handgrad.train import Trainer

    modes = []
    split_forward = DataParallel._forward
    monkeypatch.setattr(DataParallel, "_forward", lambda net, x, bounds: modes.append(net.training) or split_forward(
        net, x, bounds))
    build, make_loss, make_batch = ZOO["cnn"]
    model = build()
    x, y = make_batch(96, np.random.default_rng(3))
    trainer = Trainer(model, make_loss(), optim.SGD(model.parameters(), lr=0.01), (x[:64], y[:64]), (x[64:], y[64:]),
                      epochs=1, batch_size=32, test_data=(x[64:], y[64:]), eval_at_start=True, progress="none",
                      workers=2)
    trainer.fit()
    # eval at start (train subset, val), 2 steps, eval after the epoch (train subset, val), the test set
    assert modes == [False, False, True, True, False, False, False]


class GradFlag(nn.Module):
    """Outputs, for every row, whether the process that computed it keeps caches for backward."""

    def forward(self, x):
        return np.full((len(x), 1), float(handgrad.is_grad_enabled()))

    def backward(self, dout):
        return None


def test_workers_keep_nothing_for_backward_when_the_caller_is_under_no_grad():
    with DataParallel(nn.Sequential(GradFlag()), 2) as net:
        x = np.zeros((40, 3))
        np.testing.assert_array_equal(net(x), np.ones((40, 1)))
        with handgrad.no_grad():
            np.testing.assert_array_equal(net(x), np.zeros((40, 1)))
        assert len(multiprocessing.active_children()) == 1  # the worker computed rows of both passes
