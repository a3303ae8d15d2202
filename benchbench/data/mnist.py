"""MNIST from the official IDX files (gzip-compressed as published, or decompressed)."""
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from benchbench.data import cache
from benchbench.data.errors import DataError

NAME = "mnist"
N_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# (images, labels) content names of the two splits; val is the official test set.
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CONTENTS = tuple(c for pair in SPLITS.values() for c in pair)


def _candidates(content: str) -> tuple[str, ...]:
    # As published, decompressed, and the dotted names some archives use.
    dotted = content.replace("-idx", ".idx")
    return (content + ".gz", content, dotted + ".gz", dotted)


def locate(data_dir: str | os.PathLike | None = None) -> dict[str, Path | None]:
    """Where each MNIST file was found (None where it was not).

    Args:
        data_dir: the cache directory (default: ``cache.data_path()``).

    Returns:
        ``{"train-images-idx3-ubyte": Path or None, ...}`` for the four files.
    """
    dirs = cache.search_dirs(NAME, data_dir)
    found: dict[str, Path | None] = {}
    for content in CONTENTS:
        found[content] = next((d / c for d in dirs for c in _candidates(content) if (d / c).is_file()), None)
    return found


def parse_idx(data: bytes, where: str, magic: int, ndim: int) -> np.ndarray:
    """The uint8 array held by an IDX file (a read-only view of ``data``).

    Args:
        data: the uncompressed file content.
        where: the path shown in error messages.
        magic: the expected magic number (2051 for images, 2049 for labels).
        ndim: the expected number of dimensions.

    Raises:
        DataError: wrong magic number, truncated header, or size not matching the dimensions.
    """
    header = 4 + 4 * ndim
    fix = cache.fix_hint(NAME)
    if len(data) < header:
        raise DataError(f"{where}: truncated IDX file ({len(data)} bytes, header needs {header}); {fix}")
    got_magic = int.from_bytes(data[:4], "big")
    if got_magic != magic:
        raise DataError(f"{where}: wrong IDX magic number {got_magic} (expected {magic}); {fix}")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    size = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != size:
        raise DataError(f"{where}: IDX size mismatch ({len(data) - header} data bytes, dimensions {dims} "
                        f"need {size}); {fix}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def idx_size(header: bytes, magic: int | None = None) -> int | None:
    """The exact size of an IDX file from its first bytes (magic and dimensions), or None.

    With ``magic``, a header with another magic number gives None (``parse_idx`` then says
    what is wrong with it).

    Example:
        >>> idx_size(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big"))
        18
    """
    if len(header) < 4 or header[:2] != b"\0\0" or header[2] != 0x08:
        return None
    if magic is not None and int.from_bytes(header[:4], "big") != magic:
        return None
    ndim = header[3]
    if ndim == 0 or len(header) < 4 + 4 * ndim:
        return None
    dims = [int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    size = 1
    for d in dims:
        size *= d
    return 4 + 4 * ndim + size


def _read_split(images_path: Path, labels_path: Path, images_content: str, labels_content: str,
                hashes, verify) -> tuple[np.ndarray, np.ndarray]:
    images = parse_idx(cache.read_verified(images_path, images_content, NAME, hashes, verify,
                                          size_from_header=lambda h: idx_size(h, IMAGES_MAGIC)),
                       str(images_path), IMAGES_MAGIC, 3)
    labels = parse_idx(cache.read_verified(labels_path, labels_content, NAME, hashes, verify,
                                          size_from_header=lambda h: idx_size(h, LABELS_MAGIC)),
                       str(labels_path), LABELS_MAGIC, 1)
    fix = cache.fix_hint(NAME)
    if images.shape[1:] != IMAGE_SHAPE[1:]:
        raise DataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28; {fix}")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in "
                        f"{images_path.name}; {fix}")
    if labels.size and labels.max() >= N_CLASSES:
        raise DataError(f"{labels_path}: label {int(labels.max())} out of range 0-9; {fix}")
    x = np.multiply(images.reshape(-1, *IMAGE_SHAPE), np.float32(1.0 / 255.0), dtype=np.float32)
    return x, labels.astype(np.int32)


def load_mnist(data_dir: str | os.PathLike | None = None, hashes: Mapping[str, str | None] | None = None,
               verify: bool = True) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Read MNIST from the official IDX files in the cache (no download).

    Args:
        data_dir: the cache directory (default: ``cache.data_path()``).
        hashes: SHA-256 of each decompressed file, overriding the published ones
            (a missing or None entry skips that check).
        verify: False skips the checksum checks (the format is still checked).

    Returns:
        ``((x_train, t_train), (x_val, t_val))``: x float32 in [0, 1] shaped (N, 1, 28, 28),
        t int32; val is the official 10,000-image test set.

    Raises:
        DataError: a file is missing, unreadable, truncated, corrupt or has the wrong checksum.

    Example:
        >>> (x, t), (xv, tv) = load_mnist()  # doctest: +SKIP
    """
    found = locate(data_dir)
    missing = [c for c, p in found.items() if p is None]
    if missing:
        raise DataError(f"MNIST file(s) {', '.join(m + '.gz' for m in missing)} not found in "
                        f"{cache.data_path(data_dir)}; {cache.missing_hint(NAME, data_dir)}")
    train, val = (_read_split(found[i], found[t], i, t, hashes, verify) for i, t in SPLITS.values())
    return train, val
