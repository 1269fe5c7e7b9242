"""Running the runs of a sweep: in this process, on local processes (joblib) or on a
Dask cluster, each run isolated so that one failure never loses the others.

Every run executes :func:`execute_run` wherever it is scheduled. That function
never raises: it returns a *record* (a JSON-able dict) saying either ``"ok"``
with the run function's result, or ``"error"`` with the exception and a short
traceback. The records come back to this process, which writes each into the
run's directory as soon as it arrives (``result.json`` or ``error.json``,
atomically), so an interrupted sweep keeps everything that finished and a
second call skips it (resume).

Backends:

- ``n_jobs=1``, no scheduler: the runs execute one after another in this process
  (needs nothing but NumPy).
- ``n_jobs=N``: joblib's process pool (``pip install "handgrad[sweep]"``).
  A worker process that dies takes the pool down; the runs that were still in
  flight are then recorded as errors and the finished ones are kept. The
  workers end with this process, however it ends (SIGKILL included): each
  starts by asking the kernel to kill it when its parent dies (see
  :mod:`handgrad.parallel.lifetime`), so a killed sweep leaves no run computing
  on for nobody.
- ``scheduler="tcp://host:8786"`` or ``client=dask.distributed.Client(...)``:
  every run is one Dask task (``pip install "handgrad[dask]"``). A worker that
  dies is retried by Dask on another worker; a run that keeps killing workers
  ends as ``KilledWorker`` and is recorded as an error while the others go on.
  Results travel back to this process, and so do the files each run wrote: the
  run executes in a temporary directory of its worker, which sends the files
  back with the record and removes them (:func:`execute_run_returning_files`);
  this process writes them into the run's directory. The workers need the same
  Python packages but not this file system.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import traceback
import uuid
from pathlib import Path

from ..parallel.lifetime import die_with_parent, watch_parent

TRACEBACK_FRAMES = 6


def read_json(path: Path):
    with open(path) as f:
        return json.load(f)


def _error(kind: str, exc: BaseException, frames) -> dict:
    return {
        "status": "error",
        "kind": kind,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(type(exc), exc, frames, limit=-TRACEBACK_FRAMES)),
    }


def execute_run(run_fn, config: dict, out_dir: str | None) -> dict:
    """Call ``run_fn(config, out_dir=out_dir)`` and return its record; never raises
    (except for KeyboardInterrupt and SystemExit, which are the user's, not the run's)."""
    start = time.perf_counter()
    try:
        result = run_fn(config, out_dir=out_dir)
    except Exception as exc:
        record = _error("exception", exc, exc.__traceback__)
    else:
        try:
            json.dumps(result, allow_nan=True)
            record = {"status": "ok", "result": result}
        except (TypeError, ValueError) as exc:
            record = _error("result-not-json", exc, None)
            record["error"] = f"the run function returned something JSON cannot hold: {record['error']}"
    record["wall_time"] = time.perf_counter() - start
    return record


def execute_run_returning_files(run_fn, config: dict) -> dict:
    """:func:`execute_run` in a fresh temporary directory of this machine, which is
    removed afterwards; the record's ``"files"`` hold what the run wrote there
    (path relative to its ``out_dir`` -> bytes), for :func:`write_returned_files`."""
    scratch = tempfile.mkdtemp(prefix="handgrad-run-")
    try:
        out_dir = os.path.join(scratch, "train")
        record = execute_run(run_fn, config, out_dir)
        record["files"] = {}
        for folder, _, names in os.walk(out_dir):
            for name in names:
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    record["files"][os.path.relpath(path, out_dir)] = f.read()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return record


def write_returned_files(record: dict, out_dir) -> None:
    """Write the files a remote run sent back (``record.pop("files")``) into ``out_dir``,
    replacing what an earlier attempt of the run left there."""
    from ..atomic import atomic_file

    files = record.pop("files")
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    for name, data in files.items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, "wb") as f:
            f.write(data)


def _lost(exc: BaseException, why: str) -> dict:
    record = _error("worker-died", exc, None)
    record["error"] = f"{why}: {record['error']}"
    record["wall_time"] = None
    return record


def _serial(run_fn, runs, out_dirs):
    for run, out_dir in zip(runs, out_dirs):
        yield run, execute_run(run_fn, run.config, out_dir)


def _joblib(run_fn, runs, out_dirs, n_jobs: int):
    try:
        from joblib import Parallel, delayed
    except ImportError:
        raise ImportError(
            f"handgrad sweep: running with n_jobs={n_jobs} needs joblib; install it with "
            "pip install \"handgrad[sweep]\" (or use n_jobs=1)"
        ) from None
    pending = {run.run_id: run for run in runs}
    tasks = (delayed(_tagged)(run_fn, run, out_dir) for run, out_dir in zip(runs, out_dirs))
    pool = Parallel(n_jobs=n_jobs, return_as="generator_unordered", initializer=_end_with_sweep,
                    initargs=(os.getpid(),))
    try:
        for run_id, record in pool(tasks):
            yield pending.pop(run_id), record
    except Exception as exc:
        # joblib stops the whole pool when a worker process dies (the run itself cannot
        # raise: execute_run catches everything): record what was still in flight.
        for run in pending.values():
            yield run, _lost(exc, "the joblib worker pool stopped before this run finished")


def _end_with_sweep(sweep_pid: int) -> None:
    """The first thing every joblib worker runs: end when the sweep process does; and
    as its runs share the cores with the other jobs', ``workers="auto"`` is one process."""
    from ..parallel.check import AUTO_ONE

    os.environ[AUTO_ONE] = "1"
    if not die_with_parent(sweep_pid):
        watch_parent(sweep_pid)


def _tagged(run_fn, run, out_dir):
    return run.run_id, execute_run(run_fn, run.config, out_dir)


def dask_client(scheduler: str):
    """A ``dask.distributed.Client`` connected to ``scheduler`` (e.g. ``tcp://host:8786``)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError(
            f"handgrad sweep: the scheduler {scheduler} needs Dask distributed; install it with "
            "pip install \"handgrad[dask]\""
        ) from None
    return Client(scheduler)


def _dask(run_fn, runs, out_dirs, client):
    """Submit the runs as Dask tasks, never more at a time than the cluster has threads.

    Dask blames every task queued on a worker that dies; keeping no run waiting in a
    worker's queue means a run that kills its worker does not use up the retries of
    the runs that happen to sit behind it.
    """
    from dask.distributed import as_completed

    todo = list(zip(runs, out_dirs))
    in_flight = {}

    def submit():
        run, out_dir = todo.pop(0)
        # a fresh key per submission: a key seen before would return that earlier result
        future = client.submit(execute_run_returning_files, run_fn, run.config,
                               key=f"handgrad-sweep-{run.run_id}-{uuid.uuid4().hex}")
        in_flight[future.key] = run, out_dir
        return future

    threads = max(1, sum(client.nthreads().values()))
    pending = as_completed([submit() for _ in range(min(threads, len(todo)))])
    for future in pending:
        run, out_dir = in_flight.pop(future.key)
        try:
            record = future.result()
        except Exception as exc:
            # KilledWorker (the run took down its worker, more than the allowed number of
            # times) or a lost connection: the run is reported, the others carry on.
            record = _lost(exc, "the Dask worker running this run died or was lost")
        else:
            write_returned_files(record, out_dir)
        future.release()
        threads = max(1, sum(client.nthreads().values()))
        while todo and len(in_flight) < threads:
            pending.add(submit())
        yield run, record


def execute(run_fn, runs, out_dirs, n_jobs: int = 1, scheduler: str | None = None, client=None):
    """Yield ``(run, record)`` for every run, in order of completion."""
    if client is not None or scheduler is not None:
        own = client is None
        client = dask_client(scheduler) if own else client
        try:
            yield from _dask(run_fn, runs, out_dirs, client)
        finally:
            if own:
                client.close()
    elif n_jobs == 1:
        yield from _serial(run_fn, runs, out_dirs)
    else:
        yield from _joblib(run_fn, runs, out_dirs, n_jobs)
