"""Child processes that end with their parent, whatever ends the parent.

A parent that exits normally stops its children itself (``DataParallel.close``,
joblib's shutdown). One killed by a signal cannot, SIGKILL included, and an
orphaned child would compute on for nobody. So every child this package starts
calls :func:`die_with_parent` first thing after the fork: on Linux it asks the
kernel, through ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, to kill the child the
moment its parent dies. Elsewhere the child must watch ``os.getppid()`` itself
(:func:`parent_gone`, :func:`watch_parent`): an orphan is adopted by another
process, so its parent pid changes.

Linux sends the signal when the *thread* that forked the child ends, not only
the whole process: a worker started from a thread that exits early dies with it.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_EVERY = 0.5  # seconds between two looks at the parent pid, where prctl is missing


def die_with_parent(parent_pid: int) -> bool:
    """Have the kernel SIGKILL this process when its parent dies; True if it will.

    Call it in the child right after the fork, with the parent's pid read before
    the fork: if the parent died in between, the signal will never come, which
    ``getppid()`` tells, and the child exits at once.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if parent_gone(parent_pid):
        os._exit(1)
    return armed


def parent_gone(parent_pid: int) -> bool:
    """Whether the process that started this one has died (this one was adopted)."""
    return os.getppid() != parent_pid


def _watch(parent_pid: int) -> None:
    while not parent_gone(parent_pid):
        time.sleep(WATCH_EVERY)
    os._exit(1)


def watch_parent(parent_pid: int) -> None:
    """Exit this process within WATCH_EVERY seconds of its parent's death (a daemon thread)."""
    threading.Thread(target=_watch, args=(parent_pid,), daemon=True, name="handgrad-watch-parent").start()
