"""A run directory belongs to one run: its lock, its manifest and its leftovers.

* **Lock.** A process that opens a run directory holds an OS file lock on its
  ``.lock`` file until it exits; a second process fails at once. The kernel
  releases the lock when the holder dies by any signal, so a killed run never
  blocks its own ``--resume``. It is a POSIX record lock (``fcntl.lockf``), which
  belongs to the process and is not inherited by forked children: a data-parallel
  worker that outlived its parent for a moment could not keep the directory locked.
* **One run per directory.** A fresh run refuses a directory that already holds
  a run (a manifest, a checkpoint or a model) and touches nothing in it; an
  auto-named directory is created exclusively and never collides.
* **The manifest** ``config.json``: the completed configuration (the keys of
  :data:`handgrad.train.config.DEFAULTS` at the top level, so the file is itself
  a config that ``--config`` accepts) and, under ``"handgrad"``, the handgrad
  version, the configuration's fingerprint and the data set's identity.
  ``config.toml`` is the same configuration as TOML (``handgrad train --config
  RUN_DIR/config.toml`` reproduces the run). Checkpoints embed the manifest and
  ``model.npz`` names its fingerprint, so ``--resume`` can refuse a checkpoint
  of another run.
* **Leftovers.** Temporary files of writes that a kill interrupted
  (``.NAME.XXXXXXXXXXXX.tmp``, see :mod:`handgrad.atomic`) are removed when the
  directory is opened.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import time
from pathlib import Path

from .. import __version__
from ..atomic import write_json, write_text
from .config import ConfigError, RunConfig

MANIFEST = "config.json"
CONFIG_TOML = "config.toml"
LOCK = ".lock"
CHECKPOINT = "checkpoint.npz"
MODEL = "model.npz"
RUN_FILES = (MANIFEST, CHECKPOINT, MODEL)  # any of them means: a run lives here
_TEMP = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


class RunDirError(ConfigError):
    """A run directory that cannot be used as asked (in use, taken, or not a run)."""


def _locked(path: Path):
    """An open file descriptor holding an exclusive lock on ``path`` (created), or
    None when another process holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd


def _held_elsewhere(path: Path) -> bool:
    """Whether another process holds the lock at ``path`` (the file is not created)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def auto_name(parent, stem: str) -> Path:
    """A new, empty directory ``parent/stem-YYYYmmdd-HHMMSS`` (``-2``, ``-3``, ... when
    taken), created exclusively so that two runs started in the same second differ."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    for k in range(1, 10_000):
        path = parent / (base if k == 1 else f"{base}-{k}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RunDirError(f"{parent}: no free run directory name for {base}")


# what a run writes before its first checkpoint (temp files aside, see remove_leftovers)
_BEFORE_CHECKPOINT = (MANIFEST, CONFIG_TOML, "metrics.jsonl", "plots")


def clear_unsaved_run(path) -> None:
    """Empty the run directory ``path`` if its run was stopped before it saved a
    checkpoint or a model: it holds a handgrad manifest and nothing besides what a
    run writes before its first checkpoint, so the run can only start again.
    Anything else is left alone: a directory without a handgrad manifest, one with a
    checkpoint, a model or any other file, and one that another process holds (the
    checks are made again under the lock)."""
    path = Path(path)
    if not _unsaved_run(path):
        return
    fd = _locked(path / LOCK)
    if fd is None:
        return  # a run lives here: RunDir says so
    try:
        if _unsaved_run(path):
            _empty(path)
    finally:
        os.close(fd)


def _empty(path: Path, keep=()) -> None:
    """Remove everything in a run directory but its lock (the caller holds it) and the
    names in ``keep``; a linked folder loses its link, never what it points to."""
    for entry in path.iterdir():
        if entry.name == LOCK or entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _unsaved_run(path: Path) -> bool:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        names = [entry.name for entry in path.iterdir()]
    except (OSError, ValueError):
        return False
    if not (isinstance(manifest, dict) and isinstance(manifest.get("handgrad"), dict)):
        return False
    if (path / "plots").is_symlink():
        return False
    return all(n in _BEFORE_CHECKPOINT or n == LOCK or _TEMP.match(n) for n in names)


class RunDir:
    """An open run directory: ``RunDir(path, resume=False)`` locks it (see the
    module docstring); ``close()`` (or leaving a ``with`` block) unlocks it."""

    def __init__(self, path, resume: bool = False):
        self.path, self.resume = Path(path), resume
        self._fd, self._made = None, []
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"run directory {self.path}: exists and is not a directory")
        if _held_elsewhere(self.path / LOCK):
            raise self._in_use()
        if not resume:
            self._refuse_a_run()
        elif not (self.path / MANIFEST).is_file() or not (self.path / CHECKPOINT).is_file():
            missing = [n for n in (MANIFEST, CHECKPOINT) if not (self.path / n).is_file()]
            hint = ("; its run stopped before its first checkpoint: delete the directory to start it again"
                    if _unsaved_run(self.path) else "")
            raise RunDirError(f"resume: {self.path} has no {' and no '.join(missing)} to resume from{hint}")
        # the folders this run makes, deepest first: a run that leaves nothing removes them
        self._made = [p for p in (self.path, *self.path.parents) if not p.exists()]
        self.path.mkdir(parents=True, exist_ok=True)
        self._found = {entry.name for entry in self.path.iterdir()}  # a failed run removes only what it wrote
        self._fd = _locked(self.path / LOCK)
        if self._fd is None:
            raise self._in_use()
        if not resume:
            self._refuse_a_run()  # another process may have run here between the checks
        self.remove_leftovers()

    def _in_use(self):
        return RunDirError(f"run directory {self.path} is in use by another handgrad process; "
                           f"wait for it to finish or choose another --out")

    def _refuse_a_run(self) -> None:
        found = [n for n in RUN_FILES if (self.path / n).exists()]
        if found:
            if self._fd is not None:
                self.close()
            if _unsaved_run(self.path):  # a run stopped (killed) before it saved anything: no --resume
                raise RunDirError(f"run directory {self.path} holds a run that stopped before its first "
                                  f"checkpoint ({', '.join(found)}); delete the directory to start it again, "
                                  f"or choose another --out")
            raise RunDirError(f"run directory {self.path} already holds a run ({', '.join(found)}); "
                              f"continue it with --resume, or choose another --out")

    def remove_leftovers(self) -> list:
        """Delete temporary files that interrupted atomic writes left; returns their names."""
        removed = []
        for folder in (self.path, self.path / "plots"):
            if folder.is_dir():
                for entry in folder.iterdir():
                    if _TEMP.match(entry.name) and entry.is_file():
                        entry.unlink()
                        removed.append(str(entry.relative_to(self.path)))
        return removed

    def close(self, failed: bool = False) -> None:
        """Release the lock. A run that wrote nothing leaves nothing: not the lock file,
        nor the folders it made. ``failed``: the run stopped on an error; a fresh run
        that had saved no checkpoint yet (its manifest, at most metrics and plots) removes
        what it wrote, since it could neither be resumed nor started again in its place;
        what was in the directory before it opened stays."""
        if self._fd is None:
            return
        saved = any((self.path / name).exists() for name in (CHECKPOINT, MODEL))
        if failed and not self.resume and not saved:
            _empty(self.path, keep=self._found)
        left = {entry.name for entry in self.path.iterdir()} - {LOCK}
        if left <= self._found:  # nothing of this run's: neither its lock file nor the folders it made
            if LOCK not in self._found:
                (self.path / LOCK).unlink()
            for folder in self._made:
                try:
                    folder.rmdir()
                except OSError:  # another process put something there meanwhile
                    break
        os.close(self._fd)  # closing the descriptor releases the lock
        self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the manifest ----------------------------------------------------------
    def write_manifest(self, config: RunConfig, data_identity: dict) -> dict:
        manifest = make_manifest(config, data_identity)
        write_json(self.path / MANIFEST, manifest)
        header = (f"handgrad {__version__} run configuration (fingerprint {manifest['handgrad']['fingerprint'][:16]})\n"
                  f"handgrad train --config {self.path / CONFIG_TOML} --out NEW_DIR reproduces the run")
        write_text(self.path / CONFIG_TOML, config.to_toml(header))
        return manifest

    def read_manifest(self) -> RunConfig:
        return read_manifest(self.path / MANIFEST)


def make_manifest(config: RunConfig, data_identity: dict) -> dict:
    """The JSON manifest of a run: the configuration's keys, plus ``handgrad``:
    version, fingerprint, the data set's identity and the model's revision
    (:func:`handgrad.models.revision`)."""
    from ..models import revision

    return {**config.to_dict(), "handgrad": {"version": __version__, "fingerprint": config.fingerprint(),
                                             "data": data_identity, "model_revision": revision(config["model"])}}


def manifest_revision(manifest: dict):
    """The model revision a manifest records, or None (a run from before revisions were recorded)."""
    about = manifest.get("handgrad")
    return about.get("model_revision") if isinstance(about, dict) else None


def manifest_config(manifest, source: str) -> RunConfig:
    """The :class:`RunConfig` in a manifest (a dict read from JSON); errors name ``source``."""
    if not isinstance(manifest, dict):
        raise RunDirError(f"{source}: not a run manifest (a JSON object), got a {type(manifest).__name__}")
    values = {k: v for k, v in manifest.items() if k != "handgrad"}
    return RunConfig(values, source)


def read_manifest(path) -> RunConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    try:
        manifest = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: not valid JSON ({exc})") from None
    return manifest_config(manifest, str(path))
