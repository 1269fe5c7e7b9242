"""Verified downloads into the data cache.

Files are cached under ``$HANDGRAD_DATA`` (default ``~/.cache/handgrad``).
Every file is checked against its SHA-256 before it is used, both when it is
downloaded and when it is found in the cache. A download goes to a temporary
file in the destination directory, is verified, and only then renamed into
place, so a failed, interrupted or corrupted download leaves no file behind.
Mirrors are tried in order; the error of the last resort names every URL tried
and why each failed.

A download that stalls or crawls ends with an error instead of hanging: each read
waits at most ``timeout`` seconds, the whole file at most ``deadline`` seconds,
and over every ``window`` seconds at least ``min_rate`` bytes per second must
arrive (a server trickling a byte a second defeats a read timeout alone).

A download shows its bytes, rate and time left (:class:`handgrad.train.progress.Meter`:
a bar on a terminal, a log line every few seconds otherwise, nothing with
``progress='none'``).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request

from ..atomic import atomic_file
from .idx import DataError

_CHUNK = 1 << 20


def cache_dir(root=None) -> str:
    """The data directory: ``root`` if given, else ``$HANDGRAD_DATA``, else ``~/.cache/handgrad``."""
    if root is None:
        root = os.environ.get("HANDGRAD_DATA") or os.path.join("~", ".cache", "handgrad")
    return os.path.expanduser(os.fspath(root))


def sha256_file(path) -> str:
    """Hex SHA-256 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(filename: str, directory, mirrors, sha256: str, timeout: float = 60.0, deadline: float = 3600.0,
          min_rate: float = 1024.0, window: float = 60.0, progress: str = "auto") -> str:
    """Return the path of ``directory/filename``, downloading it from the first
    mirror that serves it with the expected ``sha256`` if the cached copy is
    missing or does not match. ``mirrors`` are base URLs; the file's URL is
    ``mirror.rstrip('/') + '/' + filename``. ``timeout``, ``deadline``, ``min_rate``
    and ``window`` bound a slow download (see the module docstring); ``progress`` is
    ``'auto'``, ``'bar'``, ``'log'`` or ``'none'``."""
    directory = os.fspath(directory)
    path = os.path.join(directory, filename)
    if os.path.isfile(path) and sha256_file(path) == sha256:
        return path
    if not mirrors:
        raise DataError(f"{path} is not cached and no download mirrors are configured")
    os.makedirs(directory, exist_ok=True)
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            _download(url, path, sha256, timeout, deadline, min_rate, window, progress)
            return path
        except DataError as exc:
            failures.append(str(exc))
    raise DataError(f"could not download {filename} into {directory}:\n  " + "\n  ".join(failures))


def _download(url: str, path: str, sha256: str, timeout: float, deadline: float = 3600.0,
              min_rate: float = 1024.0, window: float = 60.0, progress: str = "auto") -> None:
    from ..train.progress import Meter  # imported here: data/ sits above train/ and only borrows its meter

    digest = hashlib.sha256()
    size = 0
    start = time.monotonic()
    window_start, window_size = start, 0
    with atomic_file(path) as out:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                declared = response.headers.get("Content-Length")
                # read1 returns what has arrived; read(n) would wait for all n bytes
                read = getattr(response, "read1", response.read)
                with Meter(int(declared) if declared and declared.isdigit() else None,
                           f"downloading {url.rsplit('/', 1)[-1]}", "B", progress, interval=5.0) as meter:
                    for chunk in iter(lambda: read(_CHUNK), b""):
                        meter.update(len(chunk))
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        now = time.monotonic()
                        if now - start > deadline:
                            raise DataError(f"{url}: download too slow: {size} bytes in {now - start:.0f} s, "
                                            f"past the {deadline:g} s deadline; try again or another mirror")
                        if now - window_start >= window:
                            rate = (size - window_size) / (now - window_start)
                            if rate < min_rate:
                                raise DataError(f"{url}: download too slow: {rate:.0f} bytes/s over the last "
                                                f"{now - window_start:.0f} s, below {min_rate:g} bytes/s; "
                                                f"try again or another mirror")
                            window_start, window_size = now, size
        except DataError:
            raise
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise DataError(f"{url}: download failed: {_reason(exc)}") from None
        if declared is not None and size != int(declared):
            raise DataError(f"{url}: download incomplete: got {size} of {declared} bytes")
        got = digest.hexdigest()
        if got != sha256:
            raise DataError(f"{url}: SHA-256 mismatch: expected {sha256}, got {got} ({size} bytes)")


def _reason(exc: Exception):
    """'HTTP Error 404: Not Found' for HTTP errors, the socket error for a URLError."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return exc.reason
    return exc
