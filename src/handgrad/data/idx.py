"""The IDX file format of MNIST and Fashion-MNIST, read and written with NumPy.

An IDX file is a header followed by the array, row-major, big-endian::

    bytes 0-1   0x00 0x00
    byte  2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                            0x0D float32, 0x0E float64
    byte  3     number of dimensions k
    4 * k       the dimensions, each a big-endian uint32
    rest        prod(dims) items of the dtype, exactly

MNIST images are ``(N, 28, 28)`` uint8 (magic 0x00000803), labels ``(N,)``
uint8 (magic 0x00000801). Files may be gzip-compressed (detected from their
first bytes, not from the name).
"""
from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from ..atomic import atomic_file

_CODES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class DataError(ValueError):
    """A data file that is missing, truncated, corrupt or fails its checksum,
    or a download that failed. The message names the file or URL."""


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian NumPy array.

    Raises :class:`DataError` naming the file when the header is not IDX, the
    dtype code is unknown, the file is shorter or longer than its header says,
    or the gzip stream is damaged.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: damaged or truncated gzip data ({exc})") from None
    return _parse(raw, path)


def _parse(raw: bytes, path: str) -> np.ndarray:
    if len(raw) < 4:
        raise DataError(f"{path}: not an IDX file: {len(raw)} bytes, shorter than the 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file: magic number {raw[:4].hex()} does not start with 0000")
    code, ndim = raw[2], raw[3]
    if code not in _CODES:
        known = ", ".join(f"0x{c:02X}" for c in _CODES)
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, file has {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _CODES[code]
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(
            f"{path}: IDX file {what}: header says {dims} of {dtype.name}, "
            f"which is {expected} bytes, file has {len(raw)}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.
    The file is written atomically (temporary file, then rename)."""
    path = os.fspath(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in _CODES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX code (use uint8, int8, int16, int32, float32 or float64)")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: expected 1 to 255 dimensions, got shape {array.shape}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=_CODES[code]).tobytes()
    if path.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    with atomic_file(path) as f:
        f.write(payload)
