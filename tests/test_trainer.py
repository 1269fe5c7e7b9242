import math

import numpy as np
import pytest

import handgrad
from handgrad import nn, optim
from handgrad.optim import SGD
from handgrad.train import Trainer, TrainingDiverged, evaluate, load_checkpoint
from trainer_helpers import blobs, make_trainer, mlp


def test_trainer_learns_synthetic_blobs():
    trainer = make_trainer(epochs=3)
    history = trainer.fit()
    assert len(history["iteration_loss"]) == 3 * math.ceil(600 / 32)
    assert np.mean(history["iteration_loss"][-5:]) < 0.5 * np.mean(history["iteration_loss"][:5])
    assert [r["epoch"] for r in history["eval"]] == [1, 2, 3]
    assert history["eval"][-1]["val_acc"] > 0.95
    assert set(history["eval"][0]) == {"epoch", "iteration", "samples", "train_loss", "train_acc", "val_loss", "val_acc",
                                       "test_loss", "test_acc"}
    assert history["eval"][0]["test_acc"] is None  # no eval_test


def test_eval_test_records_test_accuracy_at_every_evaluation_without_choosing_by_it():
    X_test, y_test = blobs(300, seed=7)
    curves = make_trainer(epochs=2, eval_every=400, test_data=(X_test, y_test), eval_test=True)
    history = curves.fit()
    assert [r["test_acc"] is not None for r in history["eval"]] == [True] * 3
    final = evaluate(curves.model, nn.CrossEntropyLoss(), (X_test, y_test), 64)
    assert history["eval"][-1]["test_acc"] == pytest.approx(final["accuracy"])  # the last eval is the best here
    plain = make_trainer(epochs=2, eval_every=400, test_data=(X_test, y_test))
    plain.fit()
    assert plain.best_val_acc == curves.best_val_acc and plain.test_accuracy == curves.test_accuracy
    with pytest.raises(ValueError, match="eval_test=True needs test_data"):
        make_trainer(eval_test=True)


@pytest.mark.parametrize("eval_every, expected", [(300, 4), (250, 5), (1000, 2)])
def test_eval_every_counts_training_samples(eval_every, expected):
    trainer = make_trainer(epochs=2, eval_every=eval_every)
    history = trainer.fit()
    samples = [r["samples"] for r in history["eval"]]
    assert len(samples) == expected
    assert samples[-1] == 1200  # the run always ends with an evaluation
    for k, s in enumerate(samples[: 1200 // eval_every], start=1):
        assert k * eval_every <= s < k * eval_every + 32


def test_lr_decay_multiplies_the_learning_rate_after_every_epoch():
    trainer = make_trainer(lr=0.1, epochs=3, lr_decay=0.5)
    trainer.fit()
    assert trainer.optimizer.lr == pytest.approx(0.1 * 0.5 ** 3)


def test_early_stopping_after_patience_evaluations_without_improvement():
    trainer = make_trainer(lr=0.0, epochs=10, patience=2)
    history = trainer.fit()
    assert trainer.stopped_early
    assert len(history["eval"]) == 3
    assert len(history["iteration_loss"]) == 3 * math.ceil(600 / 32)


def test_best_model_is_restored_at_the_end():
    def scramble_after_first_eval(trainer, record):
        if len(trainer.history["eval"]) == 1:
            rng = np.random.default_rng(0)
            for p in trainer.model.parameters():
                p.data[...] = rng.normal(0, 1, p.shape)
            trainer.optimizer.lr = 0.0

    trainer = make_trainer(epochs=3, on_eval=scramble_after_first_eval)
    history = trainer.fit()
    val_accs = [r["val_acc"] for r in history["eval"]]
    assert val_accs[0] > max(val_accs[1:])
    final = evaluate(trainer.model, nn.CrossEntropyLoss(), trainer.val_data)
    assert final["accuracy"] == val_accs[0]


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    saved = {}

    def blow_up(trainer, record):
        saved["bytes"] = (tmp_path / "checkpoint.npz").read_bytes()
        trainer.optimizer.lr = 1e30

    trainer = make_trainer(epochs=5, checkpoint_dir=tmp_path, on_eval=blow_up)
    ckpt = tmp_path / "checkpoint.npz"
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit()
    message = str(info.value)
    assert "iteration" in message and "learning rate 1e+30" in message and str(ckpt) in message
    assert ckpt.read_bytes() == saved["bytes"]
    state = load_checkpoint(ckpt)
    assert state["counters"]["epoch"] == 1
    assert all(np.isfinite(a).all() for a in state["model"].values())


def test_nan_loss_message_without_checkpoint():
    trainer = make_trainer(lr=1e30, epochs=2)
    with pytest.raises(TrainingDiverged, match=r"iteration \d+ \(epoch 1\) with learning rate 1e\+30.*no checkpoint"):
        trainer.fit()


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("options", [{}, {"adam": True, "lr": 0.01, "step_lr": True, "clip_grad_norm": 0.5}])
def test_resume_mid_epoch_reproduces_the_uninterrupted_run(tmp_path, options):
    kw = dict(epochs=3, dropout=0.3, eval_every=250, seed=7, **options)
    reference = make_trainer(checkpoint_dir=tmp_path / "a", **kw)
    ref_history = reference.fit()

    def stop_at_third_eval(trainer, record):
        if len(trainer.history["eval"]) == 3:
            raise Interrupt

    interrupted = make_trainer(checkpoint_dir=tmp_path / "b", on_eval=stop_at_third_eval, **kw)
    with pytest.raises(Interrupt):
        interrupted.fit()
    assert load_checkpoint(tmp_path / "b" / "checkpoint.npz")["counters"]["batch_in_epoch"] not in (0, 19)

    resumed = make_trainer(checkpoint_dir=tmp_path / "b", loader_seed=99, **kw)
    for p in resumed.model.parameters():
        p.data[...] = 0
    history = resumed.fit(resume_from=tmp_path / "b" / "checkpoint.npz")
    assert history == ref_history
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert np.array_equal(a, b), name


def test_trainer_rejects_bad_settings():
    with pytest.raises(ValueError, match="epochs"):
        make_trainer(epochs=0)
    with pytest.raises(ValueError, match="lr_decay"):
        make_trainer(lr_decay=1.5)
    with pytest.raises(ValueError, match="progress"):
        make_trainer(progress="fancy")
    X, y = blobs(10)
    with pytest.raises(ValueError, match="val_data has 10 inputs but 9 labels"):
        Trainer(None, None, None, make_trainer().loader, (X, y[:9]), epochs=1, batch_size=4)


def test_sequence_outputs_and_labels_train_unchanged():
    from trainer_helpers import PerStep, StepCrossEntropy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5, 4)).astype(np.float32)
    y = X[..., :3].argmax(axis=-1)  # (N, T) labels: which of the first three features is largest
    model = PerStep(4, 3)
    trainer = Trainer(model, StepCrossEntropy(), SGD(model.parameters(), lr=0.5, momentum=0.9),
                      (X[:240], y[:240]), (X[240:], y[240:]), epochs=5, batch_size=20, progress="none")
    history = trainer.fit()
    assert history["eval"][-1]["val_acc"] > 0.9
    assert evaluate(model, StepCrossEntropy(), (X[240:], y[240:]))["accuracy"] == max(
        r["val_acc"] for r in history["eval"])


def test_arrays_are_batched_by_the_data_loader_and_train_subset_is_fixed():
    from trainer_helpers import mlp

    X, y = blobs(500)
    model = mlp()
    trainer = Trainer(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), (X, y), blobs(100, seed=1),
                      epochs=2, batch_size=50, eval_train_fraction=0.2, progress="none", seed=3)
    assert len(trainer.train_eval_data[0]) == 100
    history = trainer.fit()
    assert len(history["iteration_loss"]) == 20
    assert history["eval"][-1]["train_acc"] > 0.9


def test_a_regression_keeps_the_weights_of_the_lowest_validation_loss(tmp_path):
    """MSELoss has no accuracy: the Trainer reports none and keeps the best validation
    loss's weights (it used to keep the first evaluation's, all accuracies being 0)."""
    from handgrad.plots import plot_curves

    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3)).astype(np.float32)
    y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
    handgrad.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 1))
    trainer = Trainer(net, nn.MSELoss(), optim.SGD(net.parameters(), lr=0.05), (X, y), (X[:50], y[:50]),
                      test_data=(X[50:100], y[50:100]), epochs=4, batch_size=32, progress="none", workers=1)
    history = trainer.fit()
    val_losses = [r["val_loss"] for r in history["eval"]]
    assert val_losses == sorted(val_losses, reverse=True)  # improving: the last evaluation is the best
    assert all(r["val_acc"] is None and r["train_acc"] is None for r in history["eval"])
    final = evaluate(trainer.model, nn.MSELoss(), (X[:50], y[:50]))
    assert final["loss"] == val_losses[-1] and final["accuracy"] is None
    assert trainer.test_accuracy is None and trainer.best_val_acc == -float("inf")
    plot_curves(history, path=tmp_path / "curves.png")  # a history without accuracies draws its losses


def test_distributions_as_targets_are_scored_by_their_argmax():
    """CrossEntropyLoss takes one-hot rows; evaluation compares the argmax of both."""
    X, y = blobs(300)
    handgrad.manual_seed(0)
    model = mlp()
    onehot = np.eye(int(y.max()) + 1, dtype=np.float32)[y]
    by_labels, by_rows = (evaluate(model, nn.CrossEntropyLoss(), (X, t)) for t in (y, onehot))
    assert by_rows["accuracy"] == by_labels["accuracy"]
    assert by_rows["loss"] == pytest.approx(by_labels["loss"], rel=1e-6)


def test_nan_in_the_training_data_is_named_as_the_data_not_the_learning_rate():
    X, y = blobs(300)
    X[37, 1] = np.nan
    model = mlp()
    trainer = Trainer(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), (X, y), epochs=1,
                      batch_size=50, progress="none", workers=1)
    with pytest.raises(ValueError, match=r"the training data holds NaN or inf: 1 of the 50 samples of the batch "
                                         r"of iteration \d+ \(epoch 1\)"):
        trainer.fit()


def test_plain_python_lists_are_refused_naming_what_to_pass():
    from handgrad.data import DataLoader

    with pytest.raises(TypeError, match=r"DataLoader: dataset\[1\] \(y\) must be an array \(np.asarray"):
        DataLoader((np.ones((3, 2)), [0, 1, 0]), 2)
    with pytest.raises(TypeError, match=r"Linear: expected an array input \(np.asarray\(...\)\), got list"):
        nn.Linear(4, 3)([[1.0, 2.0, 3.0, 4.0]])
    layer = nn.Linear(3, 4)
    layer(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"Linear.backward: dout must have the output's shape .* \(2, 4\), got \(5, 3\)"):
        layer.backward(np.ones((5, 3), np.float32))
