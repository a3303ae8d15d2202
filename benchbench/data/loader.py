"""``load``: one entry point for every dataset, real files or a stand-in."""
import os
from collections.abc import Mapping

import numpy as np

from benchbench.data import cache, cifar10, mnist
from benchbench.data.dataset import Dataset
from benchbench.data.errors import DataError
from benchbench.data.sine import sine
from benchbench.data.synthetic import synthetic

NAMES = ("mnist", "cifar10", "sine")
SOURCE_CHOICES = ("auto", "real", "synthetic")

# name -> (module, full train size, full val size, display name)
_REAL = {
    "mnist": (mnist, 60000, 10000, "MNIST"),
    "cifar10": (cifar10, 50000, 10000, "CIFAR-10"),
}
_SINE_SIZES = (2000, 400)


def _check_size(name: str, value, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"load: {name} must be an int or None, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"load: {name} must be >= {minimum}, got {value}")
    return int(value)


def _present(name: str, data_dir) -> bool:
    module = _REAL[name][0]
    found = module.locate(data_dir)
    if isinstance(found, dict):
        present = [c for c, p in found.items() if p is not None]
        if present and len(present) < len(found):
            missing = [c for c, p in found.items() if p is None]
            raise DataError(f"{found[present[0]].parent}: MNIST is incomplete (found {', '.join(present)}; missing "
                            f"{', '.join(missing)}); {cache.missing_hint(name, data_dir)}")
        return bool(present)
    return found is not None


def sample(split: tuple[np.ndarray, np.ndarray], n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples of ``split`` drawn by a seeded shuffle of the whole split (all of it when ``n`` is
    None or not smaller): a file stored in class order still gives every class its share.

    Example:
        >>> x = np.arange(100); t = x // 50  # class-ordered: fifty of class 0, then fifty of class 1
        >>> xs, ts = sample((x, t), 10, seed=0)
        >>> len(xs), sorted(set(ts.tolist()))
        (10, [0, 1])
    """
    if n is None or n >= len(split[0]):
        return split
    idx = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5A3])).permutation(len(split[0]))[:n]
    return split[0][idx], split[1][idx]


def load(name: str, source: str = "auto", data_dir: str | os.PathLike | None = None, seed: int = 0,
         n_train: int | None = None, n_val: int | None = None, *,
         hashes: Mapping[str, str | None] | None = None) -> Dataset:
    """Load a dataset: the official files when they are there, else a learnable stand-in.

    Args:
        name: ``"mnist"``, ``"cifar10"`` or ``"sine"``.
        source: ``"real"`` (the official files; an error if missing), ``"synthetic"`` (a
            learnable stand-in of the same shapes) or ``"auto"`` (real when the files are in the
            cache, else synthetic; a file that is present but bad is still an error). Never
            downloads: see ``fetch``. Sine is generated whatever the source.
        data_dir: the cache directory (default: ``data_path()``).
        seed: seed of synthetic and generated data, and of the shuffle that draws ``n_train`` / ``n_val``
            samples from the real files.
        n_train: use only ``n_train`` training samples, drawn by a seeded shuffle of the whole
            training set (never its first rows, which may be one class); synthetic data generates
            only that many.
        n_val: likewise for validation samples.
        hashes: SHA-256 of the uncompressed files, overriding the published ones.

    Returns:
        A ``Dataset`` whose ``source`` and ``note`` say what was used.

    Raises:
        DataError: real data was asked for and is missing, or a present file is bad.

    Example:
        >>> ds = load("mnist", source="synthetic", n_train=100, n_val=10)
        >>> ds.train[0].shape, ds.source
        ((100, 1, 28, 28), 'synthetic')
    """
    cache.check_dataset_name("load", name, NAMES)
    if source not in SOURCE_CHOICES:
        raise ValueError(f"load: source must be one of {', '.join(SOURCE_CHOICES)}, got {source!r}")
    n_train = _check_size("n_train", n_train, 1)
    n_val = _check_size("n_val", n_val, 0)
    if name == "sine":
        train, val, note = sine(n_train=n_train or _SINE_SIZES[0], n_val=_SINE_SIZES[1] if n_val is None else n_val,
                                seed=seed)
        return Dataset(name, train, val, "generated", note, None)
    module, full_train, full_val, display = _REAL[name]
    root = cache.data_path(data_dir)
    if source == "real" or (source == "auto" and _present(name, data_dir)):
        loader = mnist.load_mnist if name == "mnist" else cifar10.load_cifar10
        train, val = loader(data_dir, hashes=hashes)
        note = f"real {display}: official files in {root}, SHA-256 verified"
        return Dataset(name, sample(train, n_train, seed), sample(val, n_val, seed + 1), "real", note, module.N_CLASSES)
    train, val = synthetic(name, n_train or full_train, full_val if n_val is None else n_val, seed=seed)
    why = "asked for" if source == "synthetic" else f"real files not found in {root}"
    note = f"synthetic stand-in for {display} (seed {seed}): {why}; run `benchbench data fetch {name}` for the real data"
    return Dataset(name, train, val, "synthetic", note, module.N_CLASSES)
