"""Save and load a Link's parameters and persistent buffers as a numpy ``.npz`` file.

Keys are the full names without the leading slash (``l1/W``, ``bn1/avg_mean``),
as Chainer writes them. Saving writes a temporary file beside the target and
renames it into place, so a crash never leaves a half-written file. Loading
copies the values into the existing arrays (parameters packed by an optimizer
stay packed) and checks every name and shape first, so a mismatch changes
nothing.
"""
from __future__ import annotations

import os
import tempfile

import numpy

from . import backend
from .link import Link


def _key(full_name):
    return full_name.lstrip("/")


def _check_link(fname, link):
    if not isinstance(link, Link):
        raise TypeError(f"{fname}: link must be a Link, got {type(link).__name__}")


def save_npz(path, link, compression=False):
    """Write every initialised parameter and every persistent of ``link`` to ``path``.

    Args:
        path: the file to write (an existing file is replaced atomically).
        link: the Link to save.
        compression: write a compressed archive.

    Raises:
        TypeError: ``link`` is not a Link.

    Example:
        >>> save_npz("model.npz", model)
    """
    _check_link("save_npz", link)
    arrays = {}
    for name, p in link.namedparams(include_uninit=False):
        arrays[_key(name)] = backend.as_numpy(p.array)
    for name, (owner, attr) in link.namedpersistents():
        value = getattr(owner, attr)
        if value is None:
            continue
        arrays[_key(name)] = backend.as_numpy(value) if backend.is_array(value) else numpy.asarray(value)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            (numpy.savez_compressed if compression else numpy.savez)(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_npz(path, link, strict=True):
    """Load values saved by :func:`save_npz` into ``link``.

    Parameters are copied into their existing arrays (cast to their dtype, on their device);
    a parameter still awaiting lazy initialisation is created from the file. Persistent
    scalars come back as Python numbers.

    Args:
        path: the ``.npz`` file.
        link: the Link to fill (same structure as the saved one).
        strict: also reject keys in the file that ``link`` does not have.

    Raises:
        TypeError: ``link`` is not a Link.
        FileNotFoundError: no file at ``path``.
        ValueError: a key missing from the file, a shape that differs, or (strict) an
            unexpected key; the message names the key and both shapes. Nothing is loaded then.

    Example:
        >>> load_npz("model.npz", model)
    """
    _check_link("load_npz", link)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_npz: no file at {path!r}")
    with numpy.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    params = list(link.namedparams())
    persistents = list(link.namedpersistents())
    expected = set()
    for name, p in params:
        key = _key(name)
        expected.add(key)
        if key not in data:
            if p.array is None:
                continue  # never initialised on either side
            raise ValueError(f"load_npz: {path!r} has no entry {key!r} (parameter of shape {p.array.shape})")
        if p.array is not None and data[key].shape != p.array.shape:
            raise ValueError(
                f"load_npz: shape mismatch for {key!r}: the file has {data[key].shape}, "
                f"the link expects {p.array.shape}"
            )
    for name, (owner, attr) in persistents:
        key = _key(name)
        expected.add(key)
        value = getattr(owner, attr)
        if key not in data:
            if value is None:
                continue
            raise ValueError(f"load_npz: {path!r} has no entry {key!r} (persistent of {type(owner).__name__})")
        want = value.shape if backend.is_array(value) else ()
        if value is not None and data[key].shape != want:
            raise ValueError(
                f"load_npz: shape mismatch for {key!r}: the file has {data[key].shape}, the link expects {want}"
            )
    if strict:
        extra = sorted(set(data) - expected)
        if extra:
            raise ValueError(f"load_npz: {path!r} holds entries the link does not have: {extra}")

    for name, p in params:
        key = _key(name)
        if key not in data:
            continue
        if p.array is None:
            p.array = backend.to_device(data[key].copy(), _owner_device(link, name))
        else:
            p.array[...] = backend.to_device(data[key].astype(p.array.dtype, copy=False), backend.get_device_from_array(p.array))
    for name, (owner, attr) in persistents:
        key = _key(name)
        if key not in data:
            continue
        value = getattr(owner, attr)
        if backend.is_array(value):
            value[...] = backend.to_device(data[key].astype(value.dtype, copy=False), backend.get_device_from_array(value))
        else:
            owner.__dict__[attr] = data[key].item()


def _owner_device(link, full_name):
    owner = link
    for part in full_name.strip("/").split("/")[:-1]:
        owner = getattr(owner, part)
    return owner.device
