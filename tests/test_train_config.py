import io
import json

import pytest

from handgrad.train import ConfigError, train_from_config
from handgrad.train.config import DEFAULTS, check_config, resolve_config
from handgrad.train.progress import Progress, resolve_mode

TINY = {"data": "digits", "data_fraction": 0.4, "epochs": 2, "batch_size": 32}


def test_later_layers_win_over_model_data_and_global_defaults():
    cfg = resolve_config({"model": "cnn", "data": "digits"}, {"lr": 0.5})
    assert cfg["lr"] == 0.5                      # given
    assert cfg["lr_decay"] is not None           # cnn's own default
    assert cfg["epochs"] == resolve_config({"model": "cnn"})["epochs"]  # the model's beats the data set's
    assert cfg["batch_size"] == 32               # the data set's default
    assert cfg["weight_decay"] == DEFAULTS["weight_decay"]


@pytest.mark.parametrize("config, message", [
    ({"epoch": 3}, "unknown key 'epoch'"),
    ({"epochs": True}, "epochs must be a positive integer, got True"),
    ({"batch_size": 2.0}, "batch_size must be a positive integer"),
    ({"lr": 0}, "lr must be a positive number, got 0"),
    ({"lr": float("nan")}, "lr must be a positive number"),
    ({"val_fraction": 1.0}, "val_fraction must be a number in (0, 1)"),
    ({"eval_train_fraction": 0}, "eval_train_fraction must be a number in (0, 1]"),
    ({"lr_decay": 1.5}, "lr_decay must be a number in (0, 1]"),
    ({"model_kwargs": [1]}, "model_kwargs must be a table"),
    ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
    ({"init": "orthogonal"}, "unknown init 'orthogonal'"),
    ({"loss_reduction": "none"}, "unknown loss_reduction 'none'"),
    ({"seed": -1}, "seed must be an integer >= 0"),
])
def test_check_config_names_the_bad_key(config, message):
    with pytest.raises(ConfigError) as info:
        check_config(config)
    assert message in str(info.value)


def test_unknown_loss_model_and_data_fail_before_loading_anything():
    for config, message in [({"loss": "hinge"}, "unknown loss 'hinge'"), ({"model": "resnet"}, "unknown model"),
                            ({"data": "imagenet"}, "unknown data set 'imagenet'")]:
        with pytest.raises(ConfigError, match=message):
            train_from_config(config)


def test_train_from_config_is_deterministic_and_json_able():
    a = train_from_config({**TINY, "seed": 5, "model_kwargs": {"dropout": 0.2}})
    b = train_from_config({**TINY, "seed": 5, "model_kwargs": {"dropout": 0.2}})
    c = train_from_config({**TINY, "seed": 6, "model_kwargs": {"dropout": 0.2}})
    assert a["history"] == b["history"] and a["test_accuracy"] == b["test_accuracy"]
    assert a["history"]["iteration_loss"] != c["history"]["iteration_loss"]
    back = json.loads(json.dumps(a))
    assert set(back) == {"config", "history", "test_accuracy", "test_loss", "best_val_accuracy", "wall_time",
                         "seconds", "resumed"}
    assert back["best_val_accuracy"] == max(r["val_acc"] for r in a["history"]["eval"])


def test_a_run_says_where_its_time_went(tmp_path):
    result = train_from_config({**TINY, "epochs": 2}, out_dir=tmp_path / "run")
    seconds = result["seconds"]
    assert set(seconds) == {"training steps", "evaluation: training set", "evaluation: validation set",
                            "checkpoints", "test set (best weights)"}
    # rounded to the millisecond: a phase of this tiny run (a checkpoint, the test pass) may be 0.0
    assert seconds["training steps"] > 0 and all(t >= 0 for t in seconds.values())
    assert sum(seconds.values()) <= result["wall_time"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["seconds"] == seconds
    assert "training steps" in (tmp_path / "run" / "report.html").read_text()


def test_a_resumed_run_counts_the_time_of_its_earlier_sessions(tmp_path):
    """A run resumed for more epochs reports the phases of all its sessions; its wall
    time is this session's, and the report says so."""
    from handgrad.train.checkpoint import load_checkpoint

    first = train_from_config({**TINY, "epochs": 2}, out_dir=tmp_path / "run")
    saved = load_checkpoint(tmp_path / "run" / "checkpoint.npz")["seconds"]["training steps"]
    assert saved == pytest.approx(first["seconds"]["training steps"], abs=1e-3)  # all its steps came before
    resumed = train_from_config({"epochs": 3}, out_dir=tmp_path / "run", resume=True)
    assert resumed["resumed"] and not first["resumed"]
    assert resumed["seconds"]["training steps"] > saved > 0
    page = (tmp_path / "run" / "report.html").read_text()
    assert "(this session)" in page and "every session" in page


@pytest.mark.parametrize("extra", [
    {"init": "xavier", "optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
    {"init": "he", "optimizer": "rmsprop", "lr": 1e-3},
    {"weight_scale": 1e-2, "optimizer": "adagrad", "lr": 0.05},
    {"loss_reduction": "sum", "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "lr_decay": 0.5},
    {"optimizer": "adamw", "eval_every": 300, "eval_train_fraction": 0.5, "clip_grad_norm": 1.0,
     "model_kwargs": {"hidden": [40, 20], "activation": "tanh"}},
])
def test_config_options_train(extra):
    result = train_from_config({**TINY, **extra})
    assert result["test_accuracy"] > 0.5
    if "eval_every" in extra:
        total = result["history"]["eval"][-1]["samples"]
        assert len(result["history"]["eval"]) == total // 300 + (total % 300 > 0)


def test_progress_modes():
    assert resolve_mode("auto", io.StringIO()) == "log"
    stream = io.StringIO()
    log = Progress("log", 2, stream)
    for i in range(1, 5):
        log.step(i, 0, 0.5, 0.1)
    assert stream.getvalue().count("iteration") == 2
    stream = io.StringIO()
    bar = Progress("bar", 2, stream)
    bar.start_epoch(0, 3, 10, 0)
    bar.step(1, 0, 0.5, 0.1)
    bar.message("evaluated")
    bar.end_epoch()
    assert "epoch 1/3" in stream.getvalue() and "evaluated" in stream.getvalue()
    with pytest.raises(ValueError, match="progress must be one of"):
        Progress("fancy", 1)


def test_resume_accepts_the_same_model_kwargs_and_rejects_different_ones(tmp_path):
    """The saved model_kwargs also hold what the data set filled in (in_features,
    out_features); giving the run's own model_kwargs again must still resume."""
    config = {"model": "mlp", "data": "synth", "epochs": 1, "model_kwargs": {"hidden": [8]}, "seed": 1}
    first = train_from_config(config, out_dir=tmp_path / "run")
    assert first["config"]["model_kwargs"]["in_features"] > 0
    resumed = train_from_config({**config, "epochs": 2}, out_dir=tmp_path / "run", resume=True)
    assert len(resumed["history"]["eval"]) == 2
    with pytest.raises(ConfigError, match="'model_kwargs' differs"):
        train_from_config({**config, "epochs": 3, "model_kwargs": {"hidden": [9]}}, out_dir=tmp_path / "run",
                          resume=True)


def test_the_run_record_names_every_model_argument_defaults_included(tmp_path):
    import inspect

    from handgrad.models import cnn

    train_from_config({**TINY, "model": "cnn", "epochs": 1, "model_kwargs": {"hidden": 12}}, out_dir=tmp_path / "run")
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["model_kwargs"]
    defaults = {k: p.default for k, p in inspect.signature(cnn).parameters.items() if k != "rng"}
    assert set(recorded) == set(defaults)
    assert recorded["hidden"] == 12 and recorded["shift"] == defaults["shift"]  # given, and the builder's
    assert recorded["input_shape"] == [1, 8, 8] and recorded["num_classes"] == 10  # from the data


def test_a_run_of_e_epochs_is_the_first_e_epochs_of_a_longer_one():
    """What lets one long run stand for the shorter settings of an epochs axis
    (experiments/search_table.py): same seed, same shuffles, the same per-epoch decay."""
    config = {**TINY, "optimizer": "sgd", "lr": 0.05, "lr_decay": 0.9, "eval_test": True}
    short, long = train_from_config({**config, "epochs": 2}), train_from_config({**config, "epochs": 4})
    steps = len(short["history"]["iteration_loss"])
    assert long["history"]["iteration_loss"][:steps] == short["history"]["iteration_loss"]
    assert long["history"]["eval"][:2] == short["history"]["eval"]
    assert short["final_test_accuracy"] == short["history"]["eval"][-1]["test_acc"]
