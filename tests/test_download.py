"""MNIST download, verification and caching against a local HTTP server."""
import functools
import gzip
import hashlib
import http.server
import os
import socket
import threading
import time

import numpy as np
import pytest

from handgrad.data import DataError, load_dataset, write_idx
from handgrad.data.download import fetch
from handgrad.data.mnist import MNIST_SHA256, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1 (free port); yields (base URL, directory)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", www
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def dead_url():
    """A URL on a port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def _write_fake_mnist(www, n_train=12, n_test=5, seed=0):
    """Small MNIST-format files; returns {filename: sha256} and the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        TRAIN_IMAGES: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: rng.integers(0, 10, n_train, dtype=np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        TEST_LABELS: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(www / name, array)
    hashes = {name: hashlib.sha256((www / name).read_bytes()).hexdigest() for name in arrays}
    return hashes, arrays


def _cache_files(root):
    directory = root / "mnist"
    return sorted(os.listdir(directory)) if directory.exists() else []


def test_good_download_is_verified_cached_and_loaded(server, tmp_path):
    url, www = server
    hashes, arrays = _write_fake_mnist(www)
    root = tmp_path / "cache"
    ds = load_dataset("mnist", root=root, mirrors=[url], sha256=hashes)
    assert _cache_files(root) == sorted(hashes)
    X, y = ds.train
    assert X.shape == (12, 1, 28, 28) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(X[:, 0], arrays[TRAIN_IMAGES] / np.float32(255))
    np.testing.assert_array_equal(y, arrays[TRAIN_LABELS])
    assert ds.test[0].shape == (5, 1, 28, 28) and ds.classes == [str(d) for d in range(10)]
    # the second load reads the verified cache: no server needed
    for name in hashes:
        (www / name).unlink()
    again = load_dataset("mnist", root=root, mirrors=[url], sha256=hashes)
    np.testing.assert_array_equal(again.train[0], X)


def test_hash_mismatch_is_a_clear_error_and_leaves_no_file(server, tmp_path):
    url, www = server
    hashes, _ = _write_fake_mnist(www)
    hashes[TRAIN_IMAGES] = hashlib.sha256(b"something else").hexdigest()
    root = tmp_path / "cache"
    with pytest.raises(DataError, match="SHA-256 mismatch") as info:
        load_dataset("mnist", root=root, mirrors=[url], sha256=hashes)
    assert url + TRAIN_IMAGES in str(info.value)
    assert TRAIN_IMAGES not in _cache_files(root)
    assert not any(name.endswith(".tmp") for name in _cache_files(root))


def test_dead_server_error_names_the_url_and_leaves_no_file(dead_url, tmp_path):
    root = tmp_path / "cache"
    with pytest.raises(DataError, match="download failed") as info:
        load_dataset("mnist", root=root, mirrors=[dead_url])
    assert dead_url + TRAIN_IMAGES in str(info.value)
    assert _cache_files(root) == []


def test_next_mirror_is_tried_after_a_failure(server, dead_url, tmp_path):
    url, www = server
    hashes, _ = _write_fake_mnist(www)
    ds = load_dataset("mnist", root=tmp_path / "cache", mirrors=[dead_url, url], sha256=hashes)
    assert len(ds.train[1]) == 12


def test_missing_file_on_the_server_names_the_url(server, tmp_path):
    url, www = server
    hashes, _ = _write_fake_mnist(www)
    (www / TEST_LABELS).unlink()
    with pytest.raises(DataError, match="404") as info:
        load_dataset("mnist", root=tmp_path / "cache", mirrors=[url], sha256=hashes)
    assert url + TEST_LABELS in str(info.value)
    assert TEST_LABELS not in _cache_files(tmp_path / "cache")


def test_mirrors_from_the_environment(server, tmp_path, monkeypatch):
    url, www = server
    hashes, _ = _write_fake_mnist(www)
    monkeypatch.setenv("HANDGRAD_MNIST_MIRRORS", url)
    monkeypatch.setenv("HANDGRAD_DATA", str(tmp_path / "envcache"))
    load_dataset("mnist", sha256=hashes)
    assert _cache_files(tmp_path / "envcache") == sorted(hashes)


def test_corrupt_cached_file_is_downloaded_again(server, tmp_path):
    url, www = server
    hashes, _ = _write_fake_mnist(www)
    root = tmp_path / "cache"
    load_dataset("mnist", root=root, mirrors=[url], sha256=hashes)
    cached = root / "mnist" / TRAIN_LABELS
    cached.write_bytes(b"garbage")
    load_dataset("mnist", root=root, mirrors=[url], sha256=hashes)
    assert cached.read_bytes() == (www / TRAIN_LABELS).read_bytes()


def test_truncated_idx_with_matching_hash_is_rejected_by_the_reader(server, tmp_path):
    url, www = server
    hashes, _ = _write_fake_mnist(www)
    raw = (www / TRAIN_LABELS).read_bytes()
    truncated = gzip.compress(gzip.decompress(raw)[:-3])
    (www / TRAIN_LABELS).write_bytes(truncated)
    hashes[TRAIN_LABELS] = hashlib.sha256(truncated).hexdigest()
    with pytest.raises(DataError, match="truncated") as info:
        load_dataset("mnist", root=tmp_path / "cache", mirrors=[url], sha256=hashes)
    assert TRAIN_LABELS in str(info.value)


class _ShortHandler(http.server.BaseHTTPRequestHandler):
    """Promises more bytes than it sends, then closes the connection."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_interrupted_transfer_leaves_no_file(tmp_path):
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _ShortHandler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        with pytest.raises(DataError, match=f"{url}{TRAIN_IMAGES}"):
            load_dataset("mnist", root=tmp_path / "cache", mirrors=[url])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert _cache_files(tmp_path / "cache") == []


def test_the_real_mnist_digests_are_sha256_hex():
    assert sorted(MNIST_SHA256) == sorted([TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS])
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in MNIST_SHA256.values())


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Promises 100000 bytes, then sends ``chunk`` bytes every ``pause`` seconds
    (nothing at all when ``chunk`` is 0) until the client hangs up."""
    chunk, pause = 1, 0.02

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100000):
                if self.chunk:
                    self.wfile.write(b"x" * self.chunk)
                    self.wfile.flush()
                time.sleep(self.pause)
        except OSError:  # the client gave up: what these tests expect
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle():
    """Start a trickling server with the given (chunk, pause); yields its base URL."""
    servers = []

    def start(chunk, pause):
        handler = type("Handler", (_TrickleHandler,), {"chunk": chunk, "pause": pause})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((httpd, thread))
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield start
    for httpd, thread in servers:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize("chunk,pause,limits,match", [
    # one byte every 20 ms: 50 bytes/s, far below the 1000 bytes/s asked for
    (1, 0.02, {"min_rate": 1000.0, "window": 0.3, "deadline": 30.0}, r"download too slow: \d+ bytes/s over the last"),
    # a usable rate, but the whole file would take far longer than the deadline
    (200, 0.01, {"min_rate": 100.0, "window": 0.2, "deadline": 0.5}, r"past the 0.5 s deadline"),
    # nothing at all after the headers: the read timeout
    (0, 0.05, {"timeout": 0.3}, r"download failed: timed out"),
])
def test_a_stalled_or_crawling_download_ends_with_a_clear_error(trickle, tmp_path, chunk, pause, limits, match):
    url = trickle(chunk, pause)
    started = time.monotonic()
    with pytest.raises(DataError, match=match) as info:
        fetch("file.bin", tmp_path / "cache", [url], sha256="0" * 64, **limits)
    assert time.monotonic() - started < 5
    assert f"{url}file.bin" in str(info.value)
    assert os.listdir(tmp_path / "cache") == []  # the partial file is gone
