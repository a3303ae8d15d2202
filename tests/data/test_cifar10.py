import os
import pickle
import re

import numpy as np
import pytest

from benchbench.data import DataError, load_cifar10
from benchbench.data.cifar10 import RestrictedUnpickler, locate, unpickle_batch

from .conftest import CIFAR_MEMBERS, batch_bytes, write_cifar_archive, write_cifar_folder


def _check(arrays, train, val):
    x, t = train
    images = np.concatenate([arrays[m][0] for m in CIFAR_MEMBERS[:5]])
    labels = np.concatenate([arrays[m][1] for m in CIFAR_MEMBERS[:5]])
    assert x.dtype == np.float32 and t.dtype == np.int32
    assert x.shape == (len(images), 3, 32, 32)
    np.testing.assert_allclose(x, images.reshape(-1, 3, 32, 32) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(t, labels)
    xv, tv = val
    np.testing.assert_allclose(xv, arrays["test_batch"][0].reshape(-1, 3, 32, 32) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(tv, arrays["test_batch"][1])


@pytest.mark.parametrize("archive, mode", [("cifar-10-python.tar.gz", "w:gz"), ("cifar-10-python.tar", "w")])
def test_load_archive(tmp_path, cifar_fake, archive, mode):
    arrays, contents, hashes = cifar_fake
    write_cifar_archive(tmp_path / "cifar10" / archive, contents, mode)
    _check(arrays, *load_cifar10(tmp_path, hashes=hashes))


def test_load_extracted_folder(tmp_path, cifar_fake):
    arrays, contents, hashes = cifar_fake
    write_cifar_folder(tmp_path, contents)
    _check(arrays, *load_cifar10(tmp_path, hashes=hashes))


def test_published_hashes_reject_other_files(tmp_path, cifar_fake):
    _, contents, _ = cifar_fake
    path = write_cifar_archive(tmp_path / "cifar10" / "cifar-10-python.tar.gz", contents)
    with pytest.raises(DataError, match=re.escape(f"{path}:cifar-10-batches-py/data_batch_1: SHA-256 mismatch")):
        load_cifar10(tmp_path)


def test_tampered_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    data = pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=3)
    with pytest.raises(DataError, match="is not allowed in a CIFAR-10 batch"):
        unpickle_batch(data, "f")
    assert not marker.exists()


def test_tampered_batch_in_archive_is_rejected_before_unpickling(tmp_path, cifar_fake):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    _, contents, hashes = cifar_fake
    contents = dict(contents, data_batch_3=pickle.dumps({b"data": Evil()}))
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", contents)
    with pytest.raises(DataError, match="data_batch_3: SHA-256 mismatch"):
        load_cifar10(tmp_path, hashes=hashes)
    with pytest.raises(DataError, match="data_batch_3: not a valid CIFAR-10 batch"):
        load_cifar10(tmp_path, verify=False)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("os", "system"), ("subprocess", "Popen"),
                                          ("numpy", "load"), ("_codecs", "encode")])
def test_restricted_unpickler_refuses(module, name):
    import io
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        RestrictedUnpickler(io.BytesIO(b""), encoding="bytes").find_class(module, name)


def test_numpy1_module_name_is_accepted():
    x = np.arange(3072 * 2, dtype=np.uint8).reshape(2, 3072) % 251
    data = batch_bytes(x, [1, 2])
    assert b"numpy._core.multiarray\n_reconstruct" in data or b"numpy.core.multiarray\n_reconstruct" in data
    old = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    for blob in (data, old):
        images, labels = unpickle_batch(blob, "f")
        np.testing.assert_array_equal(images.reshape(2, -1), x)
        np.testing.assert_array_equal(labels, [1, 2])


def test_batch_format_errors():
    with pytest.raises(DataError, match="truncated or corrupt CIFAR-10 batch"):
        unpickle_batch(batch_bytes(np.zeros((2, 3072), np.uint8), [0, 1])[:-10], "f")
    with pytest.raises(DataError, match="expected a dict"):
        unpickle_batch(pickle.dumps([1, 2], protocol=3), "f")
    with pytest.raises(DataError, match="expected a uint8 array"):
        unpickle_batch(batch_bytes(np.zeros((2, 100), np.uint8), [0, 1]), "f")
    with pytest.raises(DataError, match="1 labels for 2 images"):
        unpickle_batch(batch_bytes(np.zeros((2, 3072), np.uint8), [0]), "f")
    with pytest.raises(DataError, match="out of range"):
        unpickle_batch(batch_bytes(np.zeros((2, 3072), np.uint8), [0, 10]), "f")


def test_truncated_archive(tmp_path, cifar_fake):
    _, contents, hashes = cifar_fake
    path = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", contents)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=re.escape(str(path)) + ": truncated or corrupt"):
        load_cifar10(tmp_path, hashes=hashes)


def test_archive_missing_member(tmp_path, cifar_fake):
    _, contents, hashes = cifar_fake
    del contents["test_batch"]
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", contents)
    with pytest.raises(DataError, match="archive lacks cifar-10-batches-py/test_batch"):
        load_cifar10(tmp_path, hashes=hashes)


def test_incomplete_folder(tmp_path, cifar_fake):
    _, contents, hashes = cifar_fake
    del contents["data_batch_4"]
    write_cifar_folder(tmp_path / "cifar10", contents)
    with pytest.raises(DataError, match="data_batch_4: not found"):
        load_cifar10(tmp_path, hashes=hashes)


def test_missing(tmp_path):
    with pytest.raises(DataError, match="not found in .*benchbench data fetch cifar10.*benchbench data path"):
        load_cifar10(tmp_path)


def test_locate_prefers_folder(tmp_path, cifar_fake):
    _, contents, _ = cifar_fake
    write_cifar_archive(tmp_path / "cifar10" / "cifar-10-python.tar.gz", contents)
    assert locate(tmp_path) == tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    folder = write_cifar_folder(tmp_path, contents)
    assert locate(tmp_path) == folder


def test_truncated_uncompressed_archive(tmp_path, cifar_fake):
    _, contents, hashes = cifar_fake
    path = write_cifar_archive(tmp_path / "cifar-10-python.tar", contents, mode="w")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 3])
    with pytest.raises(DataError, match=re.escape(str(path)) + ": (truncated or corrupt archive|archive lacks)"):
        load_cifar10(tmp_path, hashes=hashes)
