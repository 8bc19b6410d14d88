"""Reader for the IDX format of (Fashion-)MNIST, gzip-compressed or plain, with validation.

IDX layout: a 4-byte magic ``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian uint32 sizes, then
the data in C order. Every way a file can be wrong (missing, not gzip, truncated, bad magic, wrong
size) becomes a :class:`~starquad.errors.DatasetError` that names the file and the problem.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from starquad.errors import DatasetError

__all__ = ["IDX_IMAGES_MAGIC", "IDX_LABELS_MAGIC", "read_idx", "write_idx"]

# dtype code -> numpy dtype (IDX stores multi-byte values big-endian)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_IMAGES_MAGIC = 0x00000803  # 2051: uint8, 3 dims (N, rows, cols)
IDX_LABELS_MAGIC = 0x00000801  # 2049: uint8, 1 dim (N,)


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # not gzip: accept an uncompressed IDX file as it is
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as e:
        raise DatasetError(f"{path}: truncated gzip stream ({e}); re-install or re-download the file") from e
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DatasetError(f"{path}: corrupt gzip data ({e}); re-install or re-download the file") from e


def read_idx(path: str | Path, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into a numpy array of its declared shape.

    Args:
        path: the file.
        expected_magic: if given, the 4-byte magic number the file must carry (e.g. 2051 for images).

    Raises:
        DatasetError: the file is missing, not valid gzip, truncated, or its header does not fit its data.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: only {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DatasetError(f"{path}: wrong magic number {magic} (0x{magic:08x}); expected {expected_magic}")
    zero, dtype_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype_code not in _IDX_DTYPES or ndim == 0:
        raise DatasetError(f"{path}: not an IDX file (magic 0x{magic:08x})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: header declares {ndim} dimensions but the file ends after {len(data)} bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[dtype_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise DatasetError(f"{path}: {what}: header shape {shape} needs {expected} data bytes, file has {got}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip-compressed when the name ends in ``.gz``). Used by tests."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
