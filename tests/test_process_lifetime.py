"""Processes end with their parent: the data-parallel workers of a training run and
the joblib workers of a sweep stop when the run or the sweep is killed by a real
signal (SIGKILL included), and a training run leaves nothing in /dev/shm."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("threadpoolctl")
pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads processes from /proc (Linux)")

HERE = Path(__file__).parent
DEATH = 10  # seconds a process gets to go after its parent died (it takes milliseconds)


def stat(pid):
    """(state letter, parent pid) of process ``pid``, or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1])


def running(pid) -> bool:
    """Whether ``pid`` is a live process (a zombie has ended: only its exit status is left)."""
    found = stat(pid)
    return found is not None and found[0] != "Z"


def children(pid):
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and (stat(p) or ("", 0))[1] == pid}


def descendants(pid):
    found = children(pid)
    for child in list(found):
        found |= descendants(child)
    return found


def shm_files(pid):
    """The /dev/shm names process ``pid`` maps."""
    with open(f"/proc/{pid}/maps") as f:
        return {Path(line.split(maxsplit=5)[5].split(" (deleted)")[0].strip()).name for line in f
                if "/dev/shm/" in line}


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def end(pids) -> None:
    """Clean up after a failed test: SIGKILL the processes it left (by their pids), but
    for resource trackers, which exit by themselves after cleaning up what the dead left."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                tracker = b"resource_tracker" in f.read()
        except FileNotFoundError:
            continue
        if running(pid) and not tracker:
            os.kill(pid, signal.SIGKILL)


def test_a_child_whose_parent_died_before_it_asked_to_die_with_it_exits_at_once():
    """The parent may die between the fork and the prctl, and then no signal would come."""
    from handgrad.parallel.lifetime import die_with_parent

    pid = os.fork()
    if pid == 0:
        try:
            die_with_parent(os.getpid())  # not its parent: as if the parent were gone already
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1


TRAIN = """
import os, sys, time
import numpy as np
from handgrad import models, nn, optim
from handgrad.train import Trainer

def on_eval(trainer, record):
    if record["epoch"] == 1:  # the worker runs by now
        if sys.argv[1] == "bystander":
            # a child forked now (as subprocess or a loader could) holds a copy of every
            # pipe end: the worker sees no end-of-file when the trainer dies
            pid = os.fork()
            if pid == 0:
                time.sleep(120)
                os._exit(0)
            print("bystander", pid, flush=True)
        print("training", flush=True)

rng = np.random.default_rng(0)
X, y = rng.standard_normal((256, 20)), rng.integers(0, 3, 256)
model = models.mlp(20, [32], 3)
Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.01), (X, y), epochs=100000,
        batch_size=64, progress="none", workers=2, on_eval=on_eval).fit()
"""


@pytest.mark.parametrize("bystander", [False, True], ids=["alone", "bystander"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_training_run_takes_its_worker_along_and_leaves_no_shared_memory(sig, bystander):
    shm_before = set(os.listdir("/dev/shm"))
    run = subprocess.Popen([sys.executable, "-c", TRAIN, "bystander" if bystander else "alone"],
                           stdout=subprocess.PIPE, text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    others = set()
    try:
        lines = [run.stdout.readline().split()]
        if bystander:
            others.add(int(lines[0][1]))
            lines.append(run.stdout.readline().split())
        assert lines[-1] == ["training"], f"the training run did not start: exit code {run.poll()}"
        workers = children(run.pid) - others
        others |= workers
        assert len(workers) == 1  # the worker, and no resource tracker: the shared memory is anonymous
        mapped = set().union(*map(shm_files, {run.pid, *workers}))

        os.kill(run.pid, sig)
        assert run.wait(timeout=DEATH) == -sig
        assert wait_for(lambda: not any(running(pid) for pid in workers), DEATH), "the worker outlived its trainer"
        # a named segment of theirs left in /dev/shm would stay there until the machine restarts
        assert not (set(os.listdir("/dev/shm")) - shm_before) & mapped
    finally:
        run.kill()
        run.wait()
        end(others)


def sleepy(config, out_dir=None):
    """A sweep run that says it has started (a file named by its pid) and takes a minute."""
    Path(os.environ["HANDGRAD_TEST_PIDS"], str(os.getpid())).touch()
    time.sleep(60)
    return {"test_accuracy": 0.0}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_sweep_takes_its_joblib_workers_along(tmp_path, sig):
    pytest.importorskip("joblib")
    started = tmp_path / "started"
    started.mkdir()
    paths = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "HANDGRAD_TEST_PIDS": str(started)}
    sweep = subprocess.Popen([sys.executable, "-m", "handgrad", "sweep", "lr=[0.1, 0.2, 0.3, 0.4]", "--out", "out",
                              "--run", "test_process_lifetime:sleepy", "--jobs", "2"],
                             cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spawned = set()
    try:
        assert wait_for(lambda: len(os.listdir(started)) == 2 or sweep.poll() is not None, 120)
        assert sweep.poll() is None, f"the sweep ended early, exit code {sweep.returncode}"
        spawned = descendants(sweep.pid)  # the joblib workers, and the helpers joblib starts
        assert {int(pid) for pid in os.listdir(started)} <= spawned

        os.kill(sweep.pid, sig)
        assert sweep.wait(timeout=DEATH) == -sig
        assert wait_for(lambda: not any(running(pid) for pid in spawned), DEATH), \
            f"still running after the sweep was killed: {sorted(p for p in spawned if running(p))}"
    finally:
        sweep.kill()
        sweep.wait()
        end(spawned)
