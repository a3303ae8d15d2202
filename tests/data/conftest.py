"""Writers of small dataset files in the official formats, for the data tests."""
import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

MNIST_CONTENTS = {
    "train-images-idx3-ubyte": (2051, "train", "x"),
    "train-labels-idx1-ubyte": (2049, "train", "t"),
    "t10k-images-idx3-ubyte": (2051, "val", "x"),
    "t10k-labels-idx1-ubyte": (2049, "val", "t"),
}
CIFAR_MEMBERS = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    """An IDX file: big-endian magic, big-endian dimensions, then the uint8 data."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def mnist_arrays(n_train=12, n_val=7, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "train": (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8)),
        "val": (rng.integers(0, 256, (n_val, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_val, dtype=np.uint8)),
    }


def mnist_contents(arrays) -> dict[str, bytes]:
    out = {}
    for content, (magic, split, which) in MNIST_CONTENTS.items():
        out[content] = idx_bytes(magic, arrays[split][0 if which == "x" else 1])
    return out


def write_mnist(directory: Path, contents: dict[str, bytes], compressed=True) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for content, data in contents.items():
        path = directory / (content + ".gz" if compressed else content)
        path.write_bytes(gzip.compress(data, mtime=0) if compressed else data)
        paths[content] = path
    return paths


def cifar_arrays(n_per_batch=4, seed=0):
    rng = np.random.default_rng(seed)
    return {m: (rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8), rng.integers(0, 10, n_per_batch).tolist())
            for m in CIFAR_MEMBERS}


def batch_bytes(data, labels, name="batch") -> bytes:
    """A CIFAR python batch: a pickled dict with bytes keys (protocol 3, no framing)."""
    batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    return pickle.dumps(batch, protocol=3)


def cifar_contents(arrays) -> dict[str, bytes]:
    out = {m: batch_bytes(x, t, m) for m, (x, t) in arrays.items()}
    out["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"] * 10, b"num_vis": 3072}, protocol=3)
    return out


def write_cifar_archive(path: Path, contents: dict[str, bytes], mode="w:gz") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for name, data in contents.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_cifar_folder(directory: Path, contents: dict[str, bytes]) -> Path:
    folder = directory / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def mnist_fake():
    """(arrays, contents, hashes) of a small MNIST in the IDX format."""
    arrays = mnist_arrays()
    contents = mnist_contents(arrays)
    return arrays, contents, {c: sha256(d) for c, d in contents.items()}


@pytest.fixture
def cifar_fake():
    """(arrays, contents, hashes) of a small CIFAR-10 in the python-batch format."""
    arrays = cifar_arrays()
    contents = cifar_contents(arrays)
    return arrays, contents, {c: sha256(d) for c, d in contents.items()}


@pytest.fixture(autouse=True)
def _no_cache_env(monkeypatch, tmp_path):
    """No test reads or writes the user's real cache."""
    monkeypatch.setenv("BENCHBENCH_DATA", str(tmp_path / "default-cache"))
