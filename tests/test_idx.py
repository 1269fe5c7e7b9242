import gzip
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handgrad.data import DataError, read_idx, write_idx

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


@given(
    dtype=st.sampled_from(DTYPES),
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    compressed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_round_trip(tmp_path_factory, dtype, shape, compressed, seed):
    rng = np.random.default_rng(seed)
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compressed else "a.idx")
    write_idx(path, array)
    with open(path, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == compressed
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_header_is_big_endian_mnist_layout(tmp_path):
    path = tmp_path / "images"
    write_idx(path, np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))
    raw = path.read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03"  # magic 0x00000803 of MNIST images
    assert raw[4:16] == b"\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04"
    assert raw[16:] == bytes(range(24))
    write_idx(path, np.array([1, 256], dtype=np.int32))
    assert path.read_bytes() == b"\x00\x00\x0c\x01\x00\x00\x00\x02" + b"\x00\x00\x00\x01\x00\x00\x01\x00"


def _valid(n=3):
    return b"\x00\x00\x08\x02" + (n).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes(i % 251 for i in range(2 * n))


CORRUPT = {
    "empty": (b"", "shorter than the 4-byte magic"),
    "not idx": (b"\x01\x02\x08\x01" + bytes(8), "does not start with 0000"),
    "unknown dtype": (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX dtype code 0x07"),
    "zero dims": (b"\x00\x00\x08\x00", "0 dimensions"),
    "truncated header": (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00", "truncated IDX header"),
    "truncated data": (_valid()[:-1], "truncated"),
    "trailing bytes": (_valid() + b"\x00", "trailing bytes"),
    "truncated gzip": (gzip.compress(_valid(100))[:-10], "gzip"),
    "gzip of a truncated file": (gzip.compress(_valid(100)[:-5]), "truncated"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_files_raise_data_error_naming_the_file(tmp_path, case):
    payload, message = CORRUPT[case]
    path = tmp_path / "broken-file.idx"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert "broken-file.idx" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_gzip_with_a_flipped_byte_is_rejected(tmp_path):
    data = bytearray(gzip.compress(_valid(1000)))
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "flipped.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="flipped.gz"):
        read_idx(path)


def test_write_idx_rejects_unsupported_dtype_and_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="no IDX code"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.int64))
    assert os.listdir(tmp_path) == []
