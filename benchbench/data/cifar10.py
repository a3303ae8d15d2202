"""CIFAR-10 from the official python batches, read with a restricted unpickler.

The batches are found as the published ``cifar-10-python.tar.gz`` (or the same archive
decompressed, ``cifar-10-python.tar``), or as the extracted ``cifar-10-batches-py/`` folder.
Each batch's SHA-256 is checked before it is unpickled, and the unpickler resolves only the
numpy globals an array needs, so a tampered file cannot run code.
"""
import io
import os
import pickle
import tarfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from benchbench.data import cache
from benchbench.data.errors import DataError

NAME = "cifar10"
N_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
FOLDER = "cifar-10-batches-py"
ARCHIVES = ("cifar-10-python.tar.gz", "cifar-10-python.tar")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
VAL_BATCHES = ("test_batch",)


def _allowed_globals() -> dict[tuple[str, str], object]:
    # numpy pickles an array as _reconstruct(ndarray, shape, dtype) + setstate; the module
    # holding _reconstruct moved from numpy.core to numpy._core in numpy 2. Take the function
    # from the array's own reduce so that neither private module has to be imported by name.
    reconstruct = np.empty(0).__reduce__()[0]
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allowed set."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a CIFAR-10 batch needs (no builtins)."""

    def find_class(self, module, name):
        allowed = _allowed_globals()
        if (module, name) not in allowed:
            raise ForbiddenGlobal(f"global '{module}.{name}' is not allowed in a CIFAR-10 batch")
        return allowed[(module, name)]


def unpickle_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one CIFAR-10 python batch.

    Args:
        data: the batch file's bytes.
        where: the path shown in error messages.

    Returns:
        ``(x, t)``: x uint8 shaped (N, 3, 32, 32), t int32 shaped (N,).

    Raises:
        DataError: the bytes are not a CIFAR-10 batch, or use a global that is not allowed.
    """
    fix = cache.fix_hint(NAME)
    try:
        batch = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except ForbiddenGlobal as err:
        raise DataError(f"{where}: not a valid CIFAR-10 batch ({err}); {fix}") from err
    except Exception as err:  # a corrupt pickle can fail in many ways; each one is a bad file
        raise DataError(f"{where}: truncated or corrupt CIFAR-10 batch ({type(err).__name__}: {err}); {fix}") from err
    if not isinstance(batch, dict):
        raise DataError(f"{where}: not a CIFAR-10 batch (a pickled {type(batch).__name__}, expected a dict); {fix}")
    images = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    n_pixels = int(np.prod(IMAGE_SHAPE))
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2
            and images.shape[1] == n_pixels):
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise DataError(f"{where}: 'data' is {got}, expected a uint8 array of shape (N, {n_pixels}); {fix}")
    try:
        t = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: 'labels' is not a list of integers; {fix}") from err
    if t.shape != (images.shape[0],):
        raise DataError(f"{where}: {t.size} labels for {images.shape[0]} images; {fix}")
    if t.size and (t.min() < 0 or t.max() >= N_CLASSES):
        raise DataError(f"{where}: labels out of range 0-9; {fix}")
    return images.reshape(-1, *IMAGE_SHAPE), t.astype(np.int32)


def locate(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The extracted batches folder or the archive found in the cache (None if neither).

    Args:
        data_dir: the cache directory (default: ``cache.data_path()``).
    """
    dirs = cache.search_dirs(NAME, data_dir)
    for d in dirs:
        if (d / FOLDER).is_dir():
            return d / FOLDER
    for d in dirs:
        for archive in ARCHIVES:
            if (d / archive).is_file():
                return d / archive
    return None


def _read_archive(path: Path, members: tuple[str, ...]) -> dict[str, bytes]:
    wanted = {f"{FOLDER}/{m}": m for m in members}
    out: dict[str, bytes] = {}
    data = cache.read_file(path, NAME)  # one gunzip in C: several times faster than a streamed tarfile
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                name = wanted.get(info.name.removeprefix("./"))
                if name is not None and info.isfile():
                    out[name] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"{path}: truncated or corrupt archive ({err}); {cache.fix_hint(NAME)}") from err
    missing = [m for m in members if m not in out]
    if missing:
        raise DataError(f"{path}: archive lacks {', '.join(f'{FOLDER}/{m}' for m in missing)}; "
                        f"{cache.fix_hint(NAME)}")
    return out


def read_batches(path: Path, members: tuple[str, ...], hashes: Mapping[str, str | None] | None = None,
                 verify: bool = True) -> dict[str, bytes]:
    """The checked bytes of ``members`` from the folder or archive at ``path``.

    Raises:
        DataError: a member is missing, unreadable, or has the wrong checksum.
    """
    if path.is_dir():
        out = {}
        for m in members:
            if not (path / m).is_file():
                raise DataError(f"{path / m}: not found (the folder is incomplete); {cache.missing_hint(NAME)}")
            out[m] = cache.read_verified(path / m, m, NAME, hashes, verify)
        return out
    out = _read_archive(path, members)
    for m, data in out.items():
        cache.verify_content(data, m, f"{path}:{FOLDER}/{m}", NAME, hashes, verify)
    return out


def _split(raw: dict[str, bytes], members: tuple[str, ...], path: Path) -> tuple[np.ndarray, np.ndarray]:
    parts = [unpickle_batch(raw[m], str(path / m) if path.is_dir() else f"{path}:{FOLDER}/{m}") for m in members]
    x = np.empty((sum(len(p[0]) for p in parts), *IMAGE_SHAPE), dtype=np.float32)
    start = 0
    for images, _ in parts:  # one pass per batch: uint8 -> float32 in [0, 1], no uint8 concatenation
        np.multiply(images, np.float32(1.0 / 255.0), out=x[start:start + len(images)])
        start += len(images)
    return x, np.concatenate([p[1] for p in parts])


def load_cifar10(data_dir: str | os.PathLike | None = None, hashes: Mapping[str, str | None] | None = None,
                 verify: bool = True) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Read CIFAR-10 from the official python batches in the cache (no download).

    Args:
        data_dir: the cache directory (default: ``cache.data_path()``).
        hashes: SHA-256 of each batch file, overriding the published ones
            (a missing or None entry skips that check).
        verify: False skips the checksum checks (the format is still checked).

    Returns:
        ``((x_train, t_train), (x_val, t_val))``: x float32 in [0, 1] shaped (N, 3, 32, 32),
        t int32; train is ``data_batch_1..5``, val the official ``test_batch``.

    Raises:
        DataError: the files are missing, truncated, corrupt, tampered with or have the wrong checksum.

    Example:
        >>> (x, t), (xv, tv) = load_cifar10()  # doctest: +SKIP
    """
    path = locate(data_dir)
    if path is None:
        raise DataError(f"CIFAR-10 ({ARCHIVES[0]} or {FOLDER}/) not found in {cache.data_path(data_dir)}; "
                        f"{cache.missing_hint(NAME, data_dir)}")
    raw = read_batches(path, TRAIN_BATCHES + VAL_BATCHES, hashes, verify)
    return _split(raw, TRAIN_BATCHES, path), _split(raw, VAL_BATCHES, path)
