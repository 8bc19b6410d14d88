import gzip

import numpy as np
import pytest

from starquad.data import build_dataset, read_idx, write_idx
from starquad.data.idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC
from starquad.errors import DatasetError


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", ["x-idx3-ubyte.gz", "x-idx3-ubyte"])
def test_round_trip(tmp_path, images, name):
    write_idx(tmp_path / name, images)
    out = read_idx(tmp_path / name, expected_magic=IDX_IMAGES_MAGIC)
    assert out.dtype == np.uint8 and out.shape == (5, 4, 3)
    np.testing.assert_array_equal(out, images)


def test_header_is_big_endian(tmp_path, images):
    write_idx(tmp_path / "x.gz", images)
    raw = gzip.decompress((tmp_path / "x.gz").read_bytes())
    assert raw[:4] == b"\x00\x00\x08\x03"
    assert raw[4:16] == (5).to_bytes(4, "big") + (4).to_bytes(4, "big") + (3).to_bytes(4, "big")


def test_wrong_magic(tmp_path, images):
    write_idx(tmp_path / "labels.gz", images)
    with pytest.raises(DatasetError, match=r"labels\.gz: wrong magic number 2051.*expected 2049"):
        read_idx(tmp_path / "labels.gz", expected_magic=IDX_LABELS_MAGIC)


def test_not_idx(tmp_path):
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(DatasetError, match="junk: not an IDX file"):
        read_idx(tmp_path / "junk")


def test_truncated_gzip(tmp_path, images):
    write_idx(tmp_path / "x.gz", images)
    raw = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "x.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=r"x\.gz: truncated gzip"):
        read_idx(tmp_path / "x.gz")


def test_corrupt_gzip(tmp_path, images):
    write_idx(tmp_path / "x.gz", images)
    raw = bytearray((tmp_path / "x.gz").read_bytes())
    raw[12:-8] = bytes(b ^ 0xFF for b in raw[12:-8])  # garble the deflate stream, keep the header
    (tmp_path / "x.gz").write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"x\.gz: (corrupt|truncated) gzip"):
        read_idx(tmp_path / "x.gz")


def test_truncated_payload(tmp_path, images):
    write_idx(tmp_path / "x", images)
    raw = (tmp_path / "x").read_bytes()
    (tmp_path / "x.gz").write_bytes(gzip.compress(raw[:-7]))  # valid gzip of a short IDX file
    with pytest.raises(DatasetError, match=r"truncated: header shape \(5, 4, 3\) needs 60 data bytes, file has 53"):
        read_idx(tmp_path / "x.gz")


def test_trailing_bytes(tmp_path, images):
    write_idx(tmp_path / "x", images)
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes() + b"\x00\x00")
    with pytest.raises(DatasetError, match="has trailing bytes"):
        read_idx(tmp_path / "x")


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"nope\.gz: file not found"):
        read_idx(tmp_path / "nope.gz")


def _fake_fashion(folder, n_images, n_labels, size=(28, 28)):
    rng = np.random.default_rng(0)
    for stem in ("train", "t10k"):
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n_images, *size), dtype=np.uint8))
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n_labels, dtype=np.uint8))


def test_image_label_count_mismatch(tmp_path):
    _fake_fashion(tmp_path, 5, 4)
    with pytest.raises(DatasetError, match=r"has 5 images but .*train-labels-idx1-ubyte\.gz has 4 labels"):
        build_dataset("fashion-mnist", "train", data_dir=tmp_path)


def test_wrong_split_count(tmp_path):
    _fake_fashion(tmp_path, 6, 6)
    with pytest.raises(DatasetError, match="6 images; the Fashion-MNIST test split has 10000"):
        build_dataset("fashion-mnist", "test", data_dir=tmp_path)


def test_wrong_image_size(tmp_path):
    _fake_fashion(tmp_path, 6, 6, size=(32, 32))
    with pytest.raises(DatasetError, match=r"images are \(32, 32\), Fashion-MNIST images are 28×28"):
        build_dataset("fashion-mnist", "train", data_dir=tmp_path)
