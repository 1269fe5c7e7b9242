"""Atomic file writes: write to a temporary file next to the target, then rename.

:func:`atomic_file` is the primitive; :func:`write_text` and :func:`write_json`
are the one text writer and the one JSON writer of the package (run and
sweep directories, reports, results).

A reader never sees a half-written file, and a crash or error leaves the
previous version (or no file) in place. The temporary file is created with
the normal permissions (umask applies), so the result looks like any other file.
"""
from __future__ import annotations

import contextlib
import json
import os
import uuid


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb"):
    """``with atomic_file(path) as f: f.write(...)``: ``path`` appears, complete,
    only when the block finishes without an exception."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file: mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, mode.replace("w", "x")) as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_file(path, "w") as f:
        f.write(text)


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON (NaN and inf allowed, as Python's json writes them)
    to ``path`` atomically, creating its folder."""
    write_text(path, json.dumps(obj, indent=2) + "\n")
