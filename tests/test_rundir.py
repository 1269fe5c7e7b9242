"""A run directory belongs to one run: collisions, taken directories, foreign
checkpoints and leftovers, reproduced as a user meets them (subprocesses, real
signals), each refused with its message and the earlier run's files unchanged."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from handgrad.io import read_npz
from lock_helpers import held_by_another_process

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
QUICK = ["--data", "synth", "--epochs", "1", "--quiet"]
LONG = ["--data", "digits", "--epochs", "60", "--batch-size", "16", "--eval-every", "500", "--quiet"]


def handgrad(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "handgrad", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=600)


def start(*args, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "handgrad", *map(str, args)], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def files_of(folder):
    """Every file under ``folder`` (the lock file too) with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def wait_for(path, proc, count=1):
    deadline = time.monotonic() + 120
    while not (path.is_file() and len(path.read_text().splitlines()) >= count):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)


def one_line_error(proc, needle):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    proc = handgrad("train", *QUICK, "--seed", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_second_process_on_a_run_directory_in_use_fails_at_once(tmp_path):
    run = tmp_path / "run"
    first = start("train", *LONG, "--out", run)
    try:
        wait_for(run / "metrics.jsonl", first)
        before = files_of(run)
        second = handgrad("train", *LONG, "--out", run)
        one_line_error(second, f"run directory {run} is in use by another handgrad process")
        resume = handgrad("train", "--out", run, "--resume")
        one_line_error(resume, "is in use by another handgrad process")
        assert first.poll() is None
        assert set(files_of(run)) >= set(before)
    finally:
        first.kill()
        first.wait()
    # the kernel released the killed run's lock: it resumes, and finishes
    resumed = handgrad("train", "--out", run, "--resume", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "test accuracy:" in resumed.stdout


def test_a_fresh_run_refuses_a_directory_that_holds_a_run_and_touches_nothing(finished):
    before = files_of(finished)
    for args in (QUICK, ["--model", "small_cnn", "--data", "digits", "--epochs", "1", "--quiet"]):
        proc = handgrad("train", *args, "--out", finished)
        line = one_line_error(proc, f"run directory {finished} already holds a run")
        assert "--resume" in line and "another --out" in line
    assert files_of(finished) == before


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path):
    procs = [start("train", *QUICK, cwd=tmp_path) for _ in range(3)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    named = sorted(line.split(": ", 1)[1] for out, _ in outputs for line in out.splitlines()
                   if line.startswith("run directory: "))
    assert len(set(named)) == 3
    assert sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "runs").iterdir()) == named
    for name in named:
        assert (tmp_path / name / "model.npz").is_file()


def test_a_failed_start_leaves_no_auto_named_directory(tmp_path):
    proc = handgrad("train", "--model", "lenet5", "--data", "digits", cwd=tmp_path)
    one_line_error(proc, "model 'lenet5' cannot take data set 'digits'")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, finished):
    other = tmp_path / "other"
    assert handgrad("train", *QUICK, "--seed", "2", "--lr", "0.01", "--out", other).returncode == 0
    run = tmp_path / "run"
    run.mkdir()
    for name, data in files_of(finished).items():
        if "/" not in name:
            (run / name).write_bytes(data)
    (run / "checkpoint.npz").write_bytes((other / "checkpoint.npz").read_bytes())
    before = files_of(run)
    proc = handgrad("train", "--out", run, "--resume", "--epochs", "2")
    line = one_line_error(proc, "was written by another run than")
    assert "seed 2 there, 1 in config.json" in line and "lr 0.01 there, 0.001 in config.json" in line
    assert files_of(run) == before


def test_resume_refuses_a_changed_setting_and_says_to_start_a_new_run(finished):
    before = files_of(finished)
    proc = handgrad("train", "--out", finished, "--resume", "--lr", "10")
    line = one_line_error(proc, "'lr' differs from the saved run's config.json")
    assert "start a new run" in line
    assert files_of(finished) == before


@pytest.mark.parametrize("text, needle", [("[1, 2]", "not a run manifest (a JSON object), got a list"),
                                          ("", "not valid JSON"), ("{", "not valid JSON")])
def test_a_damaged_manifest_is_named_on_resume(finished, tmp_path, text, needle):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.npz").write_bytes((finished / "checkpoint.npz").read_bytes())
    (run / "config.json").write_text(text)
    proc = handgrad("train", "--out", run, "--resume")
    line = one_line_error(proc, needle)
    assert str(run / "config.json") in line


def test_resume_without_a_checkpoint_names_only_what_is_missing(finished, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_bytes((finished / "config.json").read_bytes())
    line = one_line_error(handgrad("train", "--out", run, "--resume"), "has no checkpoint.npz to resume from")
    assert "config.json" not in line


def test_a_kill_leaves_temp_files_that_the_next_run_in_the_directory_removes(tmp_path):
    run = tmp_path / "run"
    proc = start("train", *LONG, "--out", run)
    wait_for(run / "metrics.jsonl", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    leftovers = [run / ".checkpoint.npz.0123456789ab.tmp", run / "plots" / ".loss.png.ba9876543210.tmp"]
    (run / "plots").mkdir(exist_ok=True)
    for path in leftovers:
        path.write_bytes(b"x" * 1000)
    keep = run / ".notes.tmp"  # not a name an atomic write makes: not ours to delete
    keep.write_text("mine")
    assert handgrad("train", "--out", run, "--resume", "--epochs", "1").returncode == 0
    assert not any(path.exists() for path in leftovers)
    assert keep.read_text() == "mine"


def test_the_config_a_run_writes_reproduces_it_bitwise(tmp_path):
    first = tmp_path / "first"
    proc = handgrad("train", "--data", "digits", "--epochs", "2", "--optimizer", "sgd", "--lr", "0.05",
                    "--set", "momentum=0.5", "--set", "model_kwargs.hidden=[24]", "--seed", "4", "--quiet",
                    "--out", first)
    assert proc.returncode == 0, proc.stderr
    toml = (first / "config.toml").read_text()
    assert 'recipe = "none"' in toml and "momentum = 0.5" in toml and "hidden = [24]" in toml
    again = tmp_path / "again"
    proc = handgrad("train", "--config", first / "config.toml", "--quiet", "--out", again)
    assert proc.returncode == 0, proc.stderr
    from_json = tmp_path / "from_json"
    assert handgrad("train", "--config", first / "config.json", "--quiet", "--out", from_json).returncode == 0
    reference, _ = read_npz(first / "model.npz")
    for out in (again, from_json):
        arrays, _ = read_npz(out / "model.npz")
        assert reference.keys() == arrays.keys()
        assert all(np.array_equal(reference[k], arrays[k]) for k in reference)
        manifest = json.loads((out / "config.json").read_text())
        assert manifest["handgrad"]["fingerprint"] == json.loads((first / "config.json").read_text())["handgrad"][
            "fingerprint"]


@pytest.mark.parametrize("model, workers", [("lenet5", 2)])
def test_sigkill_and_resume_is_bitwise_the_uninterrupted_run_with_workers(tmp_path, model, workers):
    """Kill a run that shares each batch between processes after a checkpoint, resume
    it: metrics and weights equal an uninterrupted run's, bit for bit."""
    args = ["train", "--model", model, "--data", "fashion-mnist", "--data-fraction", "0.05", "--epochs", "3",
            "--batch-size", "64", "--eval-every", "1000", "--workers", workers, "--seed", "5", "--quiet"]
    reference = tmp_path / "reference"
    assert handgrad(*args, "--out", reference).returncode == 0
    run = tmp_path / "killed"
    proc = start(*args, "--out", run)
    wait_for(run / "metrics.jsonl", proc, count=2)
    time.sleep(0.05)  # past the checkpoint: those steps are lost and must be replayed
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "model.npz").exists()
    resumed = handgrad("train", "--out", run, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (run / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    expected, _ = read_npz(reference / "model.npz")
    arrays, _ = read_npz(run / "model.npz")
    assert all(np.array_equal(expected[k], arrays[k]) for k in expected)


def test_only_a_run_stopped_before_saving_anything_is_cleared_for_a_fresh_start(tmp_path, finished):
    from handgrad.train.rundir import clear_unsaved_run

    def unsaved(name):
        run = tmp_path / name
        (run / "plots").mkdir(parents=True)
        for file in ("config.json", "config.toml", "metrics.jsonl", "plots/loss.png"):
            (run / file).write_bytes((finished / "config.json").read_bytes())
        return run

    cleared = unsaved("cleared")
    clear_unsaved_run(cleared)
    assert set(files_of(cleared)) <= {".lock"} and not (cleared / "plots").exists()

    before = files_of(finished)  # a checkpoint and a model: resumable, kept
    clear_unsaved_run(finished)
    assert files_of(finished) == before

    not_ours = tmp_path / "not_ours"  # a config.json that no handgrad run wrote
    not_ours.mkdir()
    (not_ours / "config.json").write_text("{}")
    extra = unsaved("extra")  # a file no run writes before its first checkpoint
    (extra / "notes.txt").write_text("mine")
    linked = unsaved("linked")  # plots/ a link to somewhere else
    (linked / "plots" / "loss.png").unlink()
    (linked / "plots").rmdir()
    (linked / "plots").symlink_to(tmp_path / "cleared", target_is_directory=True)
    for kept in (not_ours, extra, linked):
        before = files_of(kept)
        clear_unsaved_run(kept)
        assert files_of(kept) == before, kept.name

    held = unsaved("held")  # another process holds it: it may be running there
    with held_by_another_process(held / ".lock"):
        before = files_of(held)
        clear_unsaved_run(held)
        assert files_of(held) == before


def test_a_fresh_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path):
    """A diverged run, a model that cannot take the data: no run directory, not even the
    folders --out named, so the same command can run again once fixed."""
    diverged = handgrad("train", "--data", "digits", "--optimizer", "sgd", "--lr", "1e8", "--out", "a/b/run",
                        cwd=tmp_path)
    assert diverged.returncode == 1 and "training diverged" in diverged.stderr
    unfit = handgrad("train", "--model", "lenet5", "--data", "digits", "--out", "c/run", cwd=tmp_path)
    one_line_error(unfit, "model 'lenet5' cannot take data set 'digits'")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert handgrad("train", *QUICK, "--out", "a/b/run", cwd=tmp_path).returncode == 0


def test_a_run_killed_before_its_first_checkpoint_says_to_delete_it(finished, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "config.toml"):
        (run / name).write_bytes((finished / name).read_bytes())
    before = files_of(run)
    one_line_error(handgrad("train", *QUICK, "--out", run), "holds a run that stopped before its first checkpoint")
    line = one_line_error(handgrad("train", "--out", run, "--resume"), "has no checkpoint.npz to resume from")
    assert "delete the directory to start it again" in line
    assert files_of(run) == before


def test_a_failed_run_in_a_directory_that_held_files_removes_only_its_own(tmp_path):
    """--out a folder that already holds the config file (and plots) of the user: a run
    that diverges there removes what it wrote and leaves what was there."""
    exp = tmp_path / "exp"
    (exp / "plots").mkdir(parents=True)
    (exp / "plots" / "mine.png").write_bytes(b"not the run's")
    (exp / "notes.toml").write_text('model = "mlp"\ndata = "digits"\noptimizer = "sgd"\nlr = 1e30\n')
    before = files_of(exp)
    proc = handgrad("train", "--config", exp / "notes.toml", "--out", exp, "--quiet")
    assert proc.returncode == 1 and "training diverged" in proc.stderr
    assert files_of(exp) == before
