"""``handgrad train --model char_lstm --data text`` and ``handgrad generate``, run as a user would."""
import subprocess
import sys

import pytest

CORPUS = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
          "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 40


def handgrad(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "handgrad", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("char")
    corpus = root / "corpus.txt"
    corpus.write_text(CORPUS)
    out = root / "run"
    result = handgrad("train", "--model", "char_lstm", "--data", "text", "--text-file", str(corpus),
                      "--epochs", "3", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    (out / "stdout.txt").write_text(result.stdout)
    return out


def test_train_reports_loss_in_nats_per_character(run_dir):
    import json

    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    evals = [rec for rec in lines if rec.get("val_loss") is not None]
    assert evals, lines[:3]
    first, last = evals[0], evals[-1]
    assert last["val_loss"] < first["val_loss"] or last["val_loss"] < 2.5
    assert last["train_loss"] < 3.5
    results = json.loads((run_dir / "results.json").read_text())
    assert f"test loss: {results['test_loss']:.4f}" in (run_dir / "stdout.txt").read_text()
    assert 0 < results["test_loss"] < 3.5


def test_train_carries_the_state_of_a_stateful_model_in_its_checkpoint(run_dir):
    import json

    from handgrad.train import load_checkpoint

    assert json.loads((run_dir / "config.json").read_text())["model_kwargs"]["stateful"] is True
    state = load_checkpoint(run_dir / "checkpoint.npz")
    assert state["loader"]["batch_size"] == 32  # the StreamLoader's layout: 32 streams
    assert [tuple(a.shape) for a in state["carried_state"]] == [(1, 32, 256)] * 2


def test_same_seed_same_text(run_dir):
    args = ("generate", "--checkpoint", str(run_dir), "--prime", "First", "--length", "120",
            "--temperature", "0.8")
    a, b = handgrad(*args, "--seed", "1"), handgrad(*args, "--seed", "1")
    c = handgrad(*args, "--seed", "2")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout != c.stdout
    assert a.stdout.startswith("First") and len(a.stdout) == len("First") + 120 + 1


def test_greedy_is_deterministic_without_a_seed(run_dir):
    a = handgrad("generate", "--checkpoint", str(run_dir), "--prime", "All:", "--length", "60", "--greedy")
    b = handgrad("generate", "--checkpoint", str(run_dir), "--prime", "All:", "--length", "60", "--greedy",
                 "--seed", "9")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout


@pytest.mark.parametrize("args, message", [
    (("--prime", "First@#"), "--prime has characters the model was not trained on: '#@'"),
    (("--temperature", "0"), "--temperature must be > 0, got 0"),
    (("--temperature", "-1"), "--temperature must be > 0, got -1"),
    (("--length", "-3"), "--length must be >= 0, got -3"),
    (("--prime", ""), "--prime must not be empty"),
])
def test_bad_input_is_a_clear_error(run_dir, args, message):
    result = handgrad("generate", "--checkpoint", str(run_dir), *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_missing_checkpoint(tmp_path):
    result = handgrad("generate", "--checkpoint", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "no such run directory or model file" in result.stderr


def test_evaluate_reads_the_held_out_text_as_training_did(run_dir):
    """Streams with the state carried, as the run's own test evaluation: the same
    loss and accuracy as the run reported (model.npz holds the same best model)."""
    import json

    results = json.loads((run_dir / "results.json").read_text())
    result = handgrad("evaluate", "--checkpoint", str(run_dir), "--out", str(run_dir.parent / "eval-run"))
    assert result.returncode == 0, result.stderr
    assert f"loss: {results['test_loss']:.4f} nats per character" in result.stdout
    assert f"accuracy: {results['test_accuracy']:.4f}" in result.stdout
    # from the checkpoint (the last weights, perhaps not the best): the same way of reading
    result = handgrad("evaluate", "--checkpoint", str(run_dir / "checkpoint.npz"), "--out", str(run_dir.parent / "e2"))
    assert result.returncode == 0, result.stderr
    assert "nats per character" in result.stdout
