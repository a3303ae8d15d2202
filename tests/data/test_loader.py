import numpy as np
import pytest

from benchbench.data import DataError, Dataset, load

from .conftest import write_cifar_archive, write_mnist


def test_auto_without_files_is_synthetic_with_note(tmp_path):
    ds = load("mnist", data_dir=tmp_path, n_train=50, n_val=20)
    assert isinstance(ds, Dataset) and ds.source == "synthetic" and ds.n_classes == 10
    assert ds.train[0].shape == (50, 1, 28, 28) and ds.val[0].shape == (20, 1, 28, 28)
    assert ds.train[0].dtype == np.float32 and ds.train[1].dtype == np.int32
    assert "synthetic stand-in for MNIST" in ds.note and str(tmp_path) in ds.note
    assert "benchbench data fetch mnist" in ds.note and "\n" not in ds.note


def test_synthetic_cifar10_shapes(tmp_path):
    ds = load("cifar10", source="synthetic", data_dir=tmp_path, n_train=30, n_val=10, seed=3)
    assert ds.train[0].shape == (30, 3, 32, 32) and ds.val[1].shape == (10,)
    assert ds.source == "synthetic" and "asked for" in ds.note


def test_auto_uses_real_files_when_present(tmp_path, mnist_fake):
    arrays, contents, hashes = mnist_fake
    write_mnist(tmp_path / "mnist", contents)
    ds = load("mnist", data_dir=tmp_path, hashes=hashes)
    assert ds.source == "real" and ds.note.startswith("real MNIST")
    np.testing.assert_array_equal(ds.train[1], arrays["train"][1])
    sub = load("mnist", source="real", data_dir=tmp_path, hashes=hashes, n_train=5, n_val=3)
    assert len(sub.train[0]) == 5 and len(sub.val[0]) == 3
    # a seeded draw from the whole training set (not its first rows): whole rows, each once, reproducible
    rows = [next(i for i in range(len(ds.train[0])) if np.array_equal(ds.train[0][i], x)) for x in sub.train[0]]
    assert len(set(rows)) == 5 and [int(ds.train[1][i]) for i in rows] == sub.train[1].tolist()
    again = load("mnist", source="real", data_dir=tmp_path, hashes=hashes, n_train=5, n_val=3)
    np.testing.assert_array_equal(again.train[0], sub.train[0])


def test_auto_does_not_fall_back_on_corrupt_file(tmp_path, mnist_fake):
    _, contents, _ = mnist_fake
    write_mnist(tmp_path / "mnist", contents)
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        load("mnist", data_dir=tmp_path)  # the published hashes: these files are not MNIST


def test_auto_refuses_incomplete_mnist(tmp_path, mnist_fake):
    _, contents, hashes = mnist_fake
    del contents["train-labels-idx1-ubyte"]
    write_mnist(tmp_path / "mnist", contents)
    with pytest.raises(DataError, match="incomplete.*missing train-labels-idx1-ubyte"):
        load("mnist", data_dir=tmp_path, hashes=hashes)


def test_real_missing_is_an_error(tmp_path):
    with pytest.raises(DataError, match="benchbench data path"):
        load("cifar10", source="real", data_dir=tmp_path)


def test_auto_cifar10_real(tmp_path, cifar_fake):
    _, contents, hashes = cifar_fake
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", contents)
    ds = load("cifar10", data_dir=tmp_path, hashes=hashes)
    assert ds.source == "real" and ds.train[0].shape[1:] == (3, 32, 32)


def test_sine_is_generated_for_every_source(tmp_path):
    for source in ("auto", "real", "synthetic"):
        ds = load("sine", source=source, data_dir=tmp_path, n_train=10, n_val=4)
        assert ds.source == "generated" and ds.n_classes is None
        assert ds.train[0].shape == (10, 50, 1) and ds.val[0].shape == (4, 50, 1)
        assert "period" in ds.note and "noise" in ds.note


def test_load_validates_arguments():
    with pytest.raises(ValueError, match="load: unknown dataset 'svhn'"):
        load("svhn")
    with pytest.raises(ValueError, match="load: source must be one of"):
        load("mnist", source="internet")
    with pytest.raises(ValueError, match="load: n_train must be >= 1, got 0"):
        load("mnist", n_train=0)
    with pytest.raises(TypeError, match="load: n_val must be an int or None, got float"):
        load("mnist", n_val=2.5)
