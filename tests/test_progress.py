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
