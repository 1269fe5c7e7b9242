"""Progress of long steps: log lines with rate and time left, the evaluation loops' hook, --quiet."""
import io

import numpy as np
import pytest

from handgrad import nn
from handgrad.train.evaluate import evaluate, predict
from handgrad.train.progress import Meter, format_duration, track, tracker

from trainer_helpers import blobs, mlp


@pytest.mark.parametrize("seconds, text", [(0.42, "0.4 s"), (12.34, "12.3 s"), (245, "4 min 5 s"),
                                           (7380, "2 h 3 min"), (None, "-")])
def test_durations_carry_their_units(seconds, text):
    assert format_duration(seconds) == text


def test_log_lines_give_the_count_the_rate_and_the_time_left():
    stream = io.StringIO()
    meter = Meter(4, "evaluating", mode="log", stream=stream, interval=0.0)
    meter.update(1)
    meter.set_postfix("1 failed")
    meter.update(3)
    meter.close()
    first, *_, last = stream.getvalue().splitlines()
    assert first.startswith("evaluating: 1/4 batch (25%), ") and " batch/s, " in first and first.endswith(" s left")
    assert last.startswith("evaluating: 4/4 batch (100%), ") and ", done in " in last and last.endswith("; 1 failed")


def test_bytes_are_counted_in_binary_units_and_quick_steps_print_nothing():
    stream = io.StringIO()
    with Meter(3 << 20, "downloading x", "B", "log", stream, interval=0.0) as meter:
        meter.update(1 << 20)
    assert stream.getvalue().startswith("downloading x: 1.0/3.0 MiB (33%), ")
    quiet = io.StringIO()
    assert list(track(range(5), 5, "quick", mode="log", stream=quiet)) == list(range(5))
    assert quiet.getvalue() == ""  # under the interval: no line
    assert tracker("x", "none") is None


def test_evaluation_passes_report_every_batch_through_the_hook():
    X, y = blobs(70)
    model, seen = mlp(), []

    def progress(batches, total):
        for b in batches:
            seen.append(total)
            yield b

    plain = evaluate(model, nn.CrossEntropyLoss(), (X, y), batch_size=32)
    tracked = evaluate(model, nn.CrossEntropyLoss(), (X, y), batch_size=32, progress=progress)
    assert tracked == plain and seen == [3, 3, 3]
    assert np.array_equal(predict(model, X, 32, progress=progress), predict(model, X, 32)) and len(seen) == 6


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    from handgrad.train import train_from_config

    out = tmp_path_factory.mktemp("progress") / "run"
    train_from_config({"model": "mlp", "data": "digits", "epochs": 1, "seed": 0}, out_dir=out)
    return out


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_show_their_passes_unless_quiet(digits_model, tmp_path, monkeypatch, capsys, command):
    import functools

    from handgrad.cli import main
    from handgrad.train import progress

    # a log line for every batch (the real interval, 10 s, is longer than this pass)
    monkeypatch.setattr(progress, "tracker", functools.partial(progress.tracker, interval=0.0))
    args = [command, "--checkpoint", str(digits_model), "--batch-size", "100"]
    args += ["--data", "digits", "--out", str(tmp_path / "p.csv")] if command == "predict" else []
    assert main(args) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("predicting: 1/") and " batch/s, " in lines[0] and lines[0].endswith(" s left")
    assert lines[-1].startswith("predicting: ") and "(100%)" in lines[-1] and ", done in " in lines[-1]
    assert main(args + ["--quiet"]) == 0
    assert capsys.readouterr().err == ""
