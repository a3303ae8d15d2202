import gzip
import re

import numpy as np
import pytest

from benchbench.data import DataError, load_mnist
from benchbench.data.mnist import locate, parse_idx

from .conftest import idx_bytes, write_mnist


def _check(arrays, train, val):
    for (x, t), split in ((train, "train"), (val, "val")):
        images, labels = arrays[split]
        assert x.dtype == np.float32 and t.dtype == np.int32
        assert x.shape == (len(images), 1, 28, 28) and t.shape == (len(images),)
        np.testing.assert_allclose(x[:, 0], images / 255.0, rtol=1e-6)
        assert 0.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_array_equal(t, labels)


def test_load_compressed(tmp_path, mnist_fake):
    arrays, contents, hashes = mnist_fake
    write_mnist(tmp_path / "mnist", contents)
    _check(arrays, *load_mnist(tmp_path, hashes=hashes))


def test_load_uncompressed_torchvision_layout(tmp_path, mnist_fake):
    arrays, contents, hashes = mnist_fake
    write_mnist(tmp_path / "MNIST" / "raw", contents, compressed=False)
    _check(arrays, *load_mnist(tmp_path, hashes=hashes))


def test_recompressed_copy_verifies(tmp_path, mnist_fake):
    arrays, contents, hashes = mnist_fake
    paths = write_mnist(tmp_path, contents)
    path = paths["train-images-idx3-ubyte"]
    path.write_bytes(gzip.compress(contents["train-images-idx3-ubyte"], compresslevel=1, mtime=12345))
    _check(arrays, *load_mnist(tmp_path, hashes=hashes))


def test_published_hashes_reject_other_files(tmp_path, mnist_fake):
    _, contents, _ = mnist_fake
    write_mnist(tmp_path / "mnist", contents)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: SHA-256 mismatch \(expected ba891046"):
        load_mnist(tmp_path)


def test_wrong_hash_names_file_and_fix(tmp_path, mnist_fake):
    _, contents, hashes = mnist_fake
    paths = write_mnist(tmp_path / "mnist", contents)
    bad = dict(hashes, **{"t10k-labels-idx1-ubyte": "0" * 64})
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path, hashes=bad)
    msg = str(info.value)
    assert msg.startswith(f"{paths['t10k-labels-idx1-ubyte']}: SHA-256 mismatch")
    assert "delete it and run `benchbench data fetch mnist`" in msg and "\n" not in msg


def test_tampered_content_fails_checksum(tmp_path, mnist_fake):
    _, contents, hashes = mnist_fake
    data = bytearray(contents["train-images-idx3-ubyte"])
    data[100] ^= 0xFF
    write_mnist(tmp_path, dict(contents, **{"train-images-idx3-ubyte": bytes(data)}))
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        load_mnist(tmp_path, hashes=hashes)


def test_truncated_gzip(tmp_path, mnist_fake):
    _, contents, hashes = mnist_fake
    paths = write_mnist(tmp_path, contents)
    blob = paths["train-images-idx3-ubyte"].read_bytes()
    paths["train-images-idx3-ubyte"].write_bytes(blob[:-20])
    with pytest.raises(DataError, match=re.escape(str(paths["train-images-idx3-ubyte"])) + ": truncated"):
        load_mnist(tmp_path, hashes=hashes)


def test_truncated_uncompressed_is_size_error_without_checksum(tmp_path, mnist_fake):
    _, contents, _ = mnist_fake
    truncated = dict(contents, **{"train-images-idx3-ubyte": contents["train-images-idx3-ubyte"][:-28]})
    write_mnist(tmp_path, truncated, compressed=False)
    with pytest.raises(DataError, match="IDX size mismatch"):
        load_mnist(tmp_path, verify=False)


def test_wrong_magic(tmp_path, mnist_fake):
    arrays, contents, _ = mnist_fake
    swapped = dict(contents, **{"train-labels-idx1-ubyte": idx_bytes(2051, arrays["train"][1])})
    write_mnist(tmp_path, swapped)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: wrong IDX magic number 2051 \\(expected 2049\\)"):
        load_mnist(tmp_path, verify=False)


def test_label_count_and_range(tmp_path, mnist_fake):
    arrays, contents, _ = mnist_fake
    short = dict(contents, **{"train-labels-idx1-ubyte": idx_bytes(2049, arrays["train"][1][:-1])})
    write_mnist(tmp_path / "a", short)
    with pytest.raises(DataError, match="labels for"):
        load_mnist(tmp_path / "a", verify=False)
    labels = arrays["val"][1].copy()
    labels[0] = 10
    wrong = dict(contents, **{"t10k-labels-idx1-ubyte": idx_bytes(2049, labels)})
    write_mnist(tmp_path / "b", wrong)
    with pytest.raises(DataError, match="out of range"):
        load_mnist(tmp_path / "b", verify=False)


def test_missing_says_where_to_put_files(tmp_path, mnist_fake):
    _, contents, hashes = mnist_fake
    del contents["t10k-images-idx3-ubyte"]
    write_mnist(tmp_path, contents)
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path, hashes=hashes)
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte.gz not found" in msg
    assert str(tmp_path / "mnist") in msg and "benchbench data path" in msg and "benchbench data fetch mnist" in msg


def test_locate_prefers_dataset_folder(tmp_path, mnist_fake):
    _, contents, _ = mnist_fake
    write_mnist(tmp_path, contents, compressed=False)
    write_mnist(tmp_path / "mnist", contents)
    found = locate(tmp_path)
    assert found["train-images-idx3-ubyte"] == tmp_path / "mnist" / "train-images-idx3-ubyte.gz"


def test_parse_idx_header_errors():
    with pytest.raises(DataError, match="truncated IDX file"):
        parse_idx(b"\x00\x00\x08", "f", 2049, 1)
    data = idx_bytes(2049, np.arange(5, dtype=np.uint8))
    np.testing.assert_array_equal(parse_idx(data, "f", 2049, 1), np.arange(5))
    with pytest.raises(DataError, match="IDX size mismatch"):
        parse_idx(data + b"\x00", "f", 2049, 1)
