"""The data cache: where dataset files live, and reading them with their checksum checked.

The cache directory is ``$BENCHBENCH_DATA`` when set, else
``platformdirs.user_cache_dir("benchbench")/data``; a ``data_dir`` argument overrides both.
Each dataset has its own folder in it (``mnist/``, ``cifar10/``); files placed by hand are
also found directly in the cache directory (and MNIST in torchvision's ``MNIST/raw/``).
"""
import gzip
import hashlib
import io
import os
import stat
import zlib
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from benchbench.data.errors import DataError
from benchbench.data.sources import CONTENT_SHA256, DATASETS, REMOTE_FILES

ENV_VAR = "BENCHBENCH_DATA"

_GZIP_MAGIC = b"\x1f\x8b"


def data_path(data_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory that holds the dataset files (it may not exist yet).

    Args:
        data_dir: an explicit directory; overrides ``$BENCHBENCH_DATA`` and the default.

    Returns:
        ``data_dir``, else ``$BENCHBENCH_DATA``, else ``user_cache_dir("benchbench")/data``.

    Example:
        >>> data_path("datasets").as_posix()
        'datasets'
    """
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(f"data_path: data_dir must be a path or None, got {type(data_dir).__name__}")
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("benchbench")) / "data"


def check_dataset_name(func: str, name: str, allowed=DATASETS) -> str:
    """Validate a dataset name for ``func``; return it."""
    if not isinstance(name, str):
        raise TypeError(f"{func}: name must be a str, got {type(name).__name__}")
    if name not in allowed:
        raise ValueError(f"{func}: unknown dataset {name!r}; expected one of {', '.join(allowed)}")
    return name


def dataset_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder that ``fetch`` downloads ``name``'s files into."""
    return data_path(data_dir) / check_dataset_name("dataset_dir", name)


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for ``name``'s files, in order of preference."""
    root = data_path(data_dir)
    dirs = [root / check_dataset_name("search_dirs", name), root]
    if name == "mnist":
        dirs.append(root / "MNIST" / "raw")
    return dirs


def fix_hint(name: str) -> str:
    """What to do about a bad file of dataset ``name``."""
    return f"delete it and run `benchbench data fetch {name}`, or place the official file there"


def missing_hint(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """What to do when dataset ``name``'s files are not there."""
    return (f"run `benchbench data fetch {name}`, or put the official files in {dataset_dir(name, data_dir)} "
            f"(see `benchbench data path`)")


def expected_hash(content: str, hashes: Mapping[str, str | None] | None) -> str | None:
    """The SHA-256 ``content`` must have: from ``hashes`` when given, else the published one."""
    if hashes is None:
        return CONTENT_SHA256.get(content)
    if not isinstance(hashes, Mapping):
        raise TypeError(f"hashes must be a mapping of file name to SHA-256 or None, got {type(hashes).__name__}")
    return hashes.get(content)


def verify_content(data: bytes, content: str, where: str, name: str,
                   hashes: Mapping[str, str | None] | None = None, verify: bool = True) -> None:
    """Raise ``DataError`` unless the SHA-256 of ``data`` is the one expected for ``content``.

    Args:
        data: the uncompressed bytes.
        content: the uncompressed file's name, a key of the hash table.
        where: the path shown in the message.
        name: the dataset, for the fix in the message.
        hashes: a table overriding the published one; a missing or None entry skips the check.
        verify: False skips the check.
    """
    if not verify:
        return
    want = expected_hash(content, hashes)
    if want is None:
        return
    got = hashlib.sha256(data).hexdigest()
    if got != want.lower():
        raise DataError(f"{where}: SHA-256 mismatch (expected {want}, got {got}); {fix_hint(name)}")


MAX_FILE_BYTES = 512 << 20  # the largest official file, uncompressed, is under 200 MiB
_HEADER_BYTES = 64          # enough for any header size_from_header reads


def read_file(path: Path, name: str, limit: int = MAX_FILE_BYTES, size_from_header=None) -> bytes:
    """The uncompressed bytes of ``path``, gunzipped when it is gzip-compressed.

    The file must be a regular file; it is read, and decompressed as a stream, up to
    ``limit`` bytes, so a device, a FIFO, a sparse giant or a decompression bomb is
    refused quickly and in bounded memory. ``size_from_header(first_bytes)`` may give the
    exact size the format's header promises (None when it cannot tell): decompression
    then stops just past that size.

    Raises:
        DataError: the file cannot be read, is not a regular file, is larger than ``limit``
            (compressed or not), or is a truncated or corrupt gzip stream.
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err}); {fix_hint(name)}") from err
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file (a folder, device or FIFO); {fix_hint(name)}")
    if st.st_size > limit:
        raise DataError(f"{path}: {st.st_size} bytes, more than any {name} file; {fix_hint(name)}")
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err}); {fix_hint(name)}") from err
    if not raw.startswith(_GZIP_MAGIC):
        if path.suffix == ".gz":
            raise DataError(f"{path}: not a gzip file; {fix_hint(name)}")
        return raw
    promised = None
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(_HEADER_BYTES)
            promised = size_from_header(data) if size_from_header is not None else None
            if promised is not None and promised > limit:
                raise DataError(f"{path}: its header promises {promised} bytes, more than any {name} file; "
                                f"{fix_hint(name)}")
            cap = limit if promised is None else promised
            data += stream.read(max(cap - len(data), 0) + 1)
    except (EOFError, OSError, zlib.error) as err:
        raise DataError(f"{path}: truncated or corrupt gzip file ({err}); {fix_hint(name)}") from err
    if promised is not None and len(data) > promised:
        raise DataError(f"{path}: decompresses to more than the {promised} bytes its header promises; "
                        f"{fix_hint(name)}")
    if len(data) > limit:
        raise DataError(f"{path}: decompresses to more than {limit >> 20} MiB, more than any {name} file "
                        f"(a corrupt or hostile file); {fix_hint(name)}")
    return data


def read_verified(path: Path, content: str, name: str, hashes: Mapping[str, str | None] | None = None,
                  verify: bool = True, size_from_header=None) -> bytes:
    """``read_file`` followed by ``verify_content``."""
    data = read_file(path, name, size_from_header=size_from_header)
    verify_content(data, content, str(path), name, hashes, verify)
    return data


def expected_files(data_dir: str | os.PathLike | None = None) -> dict[str, list[Path]]:
    """Per dataset, the exact files expected and where ``fetch`` puts them.

    Args:
        data_dir: the cache directory (default: ``data_path()``).

    Returns:
        ``{"mnist": [.../mnist/train-images-idx3-ubyte.gz, ...], "cifar10": [...]}``.
    """
    return {name: [dataset_dir(name, data_dir) / rf.fname for rf in files] for name, files in REMOTE_FILES.items()}


def describe_layout(data_dir: str | os.PathLike | None = None) -> str:
    """A few lines for people: the cache directory, the files expected and the forms accepted."""
    root = data_path(data_dir)
    lines = [f"data directory: {root} (set {ENV_VAR} or pass a data directory to change it)"]
    for name, paths in expected_files(data_dir).items():
        lines.append(f"{name}: `benchbench data fetch {name}` downloads, or place by hand:")
        lines.extend(f"  {p}" for p in paths)
    lines.append("MNIST files may also be decompressed (train-images-idx3-ubyte, ...), "
                 f"or in {root / 'MNIST' / 'raw'}; CIFAR-10 may also be the extracted "
                 f"{root / 'cifar10' / 'cifar-10-batches-py'} folder. Files directly in {root} are found too.")
    return "\n".join(lines)
