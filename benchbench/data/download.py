"""Downloading the official dataset files into the cache with pooch."""
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pooch

from benchbench.data import cache, cifar10, mnist
from benchbench.data.errors import DataError
from benchbench.data.sources import DATASETS, REMOTE_FILES, RemoteFile


def _download(rf: RemoteFile, name: str, target: Path, downloader: Callable | None, progressbar: bool) -> Path:
    errors = []
    for url in rf.urls:
        try:
            path = pooch.retrieve(url, known_hash=f"sha256:{rf.download_sha256}", fname=rf.fname, path=target,
                                  downloader=downloader, progressbar=progressbar)
            return Path(path)
        except Exception as err:  # network, HTTP or checksum failure: try the next mirror
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            errors.append(f"{url}: {first_line}")
    raise DataError(f"{target / rf.fname}: download failed ({'; '.join(errors)}); check the network and run "
                    f"`benchbench data fetch {name}` again, or place the official file there (see `benchbench data path`)")


def _fetch_mnist(target: Path, data_dir, downloader, progressbar, hashes) -> list[Path]:
    found = mnist.locate(data_dir)
    paths = []
    for rf in REMOTE_FILES["mnist"]:
        content = rf.contents[0]
        path = found[content]
        if path is None:
            path = _download(rf, "mnist", target, downloader, progressbar)
        cache.read_verified(path, content, "mnist", hashes)
        paths.append(path)
    return paths


def _fetch_cifar10(target: Path, data_dir, downloader, progressbar, hashes) -> list[Path]:
    path = cifar10.locate(data_dir)
    if path is None:
        path = _download(REMOTE_FILES["cifar10"][0], "cifar10", target, downloader, progressbar)
    cifar10.read_batches(path, cifar10.TRAIN_BATCHES + cifar10.VAL_BATCHES, hashes)
    return [path]


_FETCHERS = {"mnist": _fetch_mnist, "cifar10": _fetch_cifar10}


def fetch(names: str | Iterable[str], data_dir: str | os.PathLike | None = None, *,
          downloader: Callable | None = None, progressbar: bool = False,
          hashes: Mapping[str, str | None] | None = None) -> dict[str, list[Path]]:
    """Download the official files of each dataset into the cache, checking their SHA-256.

    Files already present (in any accepted form) are checked, not downloaded again; a present
    file that fails the check is an error, never replaced.

    Args:
        names: ``"mnist"``, ``"cifar10"`` or a list of them (``"sine"`` is generated: nothing to fetch).
        data_dir: the cache directory (default: ``cache.data_path()``).
        downloader: a pooch downloader (``callable(url, output_file, pooch)``); default: pooch's.
        progressbar: show pooch's progress bar (needs tqdm).
        hashes: SHA-256 of the uncompressed contents, overriding the published ones.

    Returns:
        Per dataset, the paths of its files in the cache.

    Raises:
        DataError: a download failed on every mirror, or a file fails its check.

    Example:
        >>> fetch(["mnist", "cifar10"])  # doctest: +SKIP
    """
    if isinstance(names, str):
        names = [names]
    try:
        names = list(names)
    except TypeError:
        raise TypeError(f"fetch: names must be a str or an iterable of str, got {type(names).__name__}") from None
    for name in names:
        cache.check_dataset_name("fetch", name, DATASETS + ("sine",))
    out: dict[str, list[Path]] = {}
    for name in names:
        if name == "sine":
            out[name] = []
            continue
        target = cache.dataset_dir(name, data_dir)
        out[name] = _FETCHERS[name](target, data_dir, downloader, progressbar, hashes)
    return out
