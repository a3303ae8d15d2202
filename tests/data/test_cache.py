import gzip
import re

import platformdirs
import pytest

from benchbench.data import DataError, cache
from benchbench.data.sources import CONTENT_SHA256

from .conftest import sha256


def test_data_path_order(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCHBENCH_DATA", str(tmp_path / "env"))
    assert cache.data_path() == tmp_path / "env"
    assert cache.data_path(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("BENCHBENCH_DATA")
    assert cache.data_path() == cache.Path(platformdirs.user_cache_dir("benchbench")) / "data"


def test_data_path_rejects_non_path():
    with pytest.raises(TypeError, match="data_path: data_dir"):
        cache.data_path(3)


def test_data_path_does_not_create(tmp_path):
    cache.data_path(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_read_file_compressed_and_plain_give_same_bytes(tmp_path):
    data = b"\x00\x00\x08\x01" + bytes(range(200))
    (tmp_path / "a.gz").write_bytes(gzip.compress(data))
    (tmp_path / "a").write_bytes(data)
    assert cache.read_file(tmp_path / "a.gz", "mnist") == data
    assert cache.read_file(tmp_path / "a", "mnist") == data


def test_read_file_truncated_gzip(tmp_path):
    blob = gzip.compress(bytes(range(256)) * 100)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*truncated or corrupt gzip"):
        cache.read_file(path, "mnist")


def test_read_file_gz_suffix_but_not_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"plain")
    with pytest.raises(DataError, match="not a gzip file"):
        cache.read_file(path, "mnist")


def test_read_file_unreadable(tmp_path):
    with pytest.raises(DataError, match="cannot be read"):
        cache.read_file(tmp_path / "absent", "mnist")


def test_verify_content_mismatch_message():
    data = b"abc"
    with pytest.raises(DataError) as info:
        cache.verify_content(data, "train-images-idx3-ubyte", "/some/train-images-idx3-ubyte.gz", "mnist")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("/some/train-images-idx3-ubyte.gz: SHA-256 mismatch")
    assert CONTENT_SHA256["train-images-idx3-ubyte"] in msg and sha256(data) in msg
    assert "benchbench data fetch mnist" in msg


def test_verify_content_overrides_and_skips():
    data = b"abc"
    cache.verify_content(data, "c", "w", "mnist", hashes={"c": sha256(data)})
    cache.verify_content(data, "c", "w", "mnist", hashes={"c": sha256(data).upper()})
    cache.verify_content(data, "c", "w", "mnist", hashes={"c": None})
    cache.verify_content(data, "c", "w", "mnist", hashes={})
    cache.verify_content(data, "train-images-idx3-ubyte", "w", "mnist", verify=False)
    with pytest.raises(DataError):
        cache.verify_content(data, "c", "w", "mnist", hashes={"c": sha256(b"other")})


def test_expected_files_and_layout(tmp_path):
    files = cache.expected_files(tmp_path)
    assert [p.name for p in files["mnist"]] == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert files["cifar10"] == [tmp_path / "cifar10" / "cifar-10-python.tar.gz"]
    assert all(p.parent == tmp_path / "mnist" for p in files["mnist"])
    text = cache.describe_layout(tmp_path)
    assert str(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz") in text
    assert "cifar-10-batches-py" in text


def test_check_dataset_name():
    with pytest.raises(ValueError, match="f: unknown dataset 'imagenet'"):
        cache.check_dataset_name("f", "imagenet")
    with pytest.raises(TypeError, match="f: name must be a str"):
        cache.check_dataset_name("f", 1)


def test_hashes_must_be_a_mapping():
    with pytest.raises(TypeError, match="hashes must be a mapping"):
        cache.verify_content(b"", "c", "w", "mnist", hashes=["c"])
