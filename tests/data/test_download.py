import gzip
from pathlib import Path

import pytest

from benchbench.data import DataError, fetch, load_cifar10, load_mnist
from benchbench.data.sources import REMOTE_FILES, RemoteFile

from .conftest import sha256, write_cifar_archive, write_mnist


class FakeServer:
    """A pooch downloader serving bytes by URL; unknown URLs fail like a dead mirror."""

    def __init__(self, files):
        self.files = files
        self.calls = []

    def __call__(self, url, output_file, pooch):
        self.calls.append(url)
        if url not in self.files:
            raise ConnectionError(f"cannot reach {url}")
        Path(output_file).write_bytes(self.files[url])


@pytest.fixture
def mnist_remote(monkeypatch, mnist_fake):
    """Publish the fake MNIST on two fake mirrors; return (server files, content hashes, arrays)."""
    arrays, contents, hashes = mnist_fake
    files, remote = {}, []
    for content, data in contents.items():
        blob = gzip.compress(data, mtime=0)
        fname = content + ".gz"
        urls = (f"https://primary.invalid/{fname}", f"https://fallback.invalid/{fname}")
        remote.append(RemoteFile(fname, urls, sha256(blob), (content,)))
        files[urls[0]] = blob
    monkeypatch.setitem(REMOTE_FILES, "mnist", tuple(remote))
    return files, hashes, arrays


def test_fetch_mnist_downloads_into_cache_and_loads(tmp_path, mnist_remote):
    files, hashes, arrays = mnist_remote
    server = FakeServer(files)
    out = fetch("mnist", tmp_path, downloader=server, hashes=hashes)
    assert [p.name for p in out["mnist"]] == [rf.fname for rf in REMOTE_FILES["mnist"]]
    assert all(p.parent == tmp_path / "mnist" and p.is_file() for p in out["mnist"])
    (x, t), _ = load_mnist(tmp_path, hashes=hashes)
    assert x.shape == (len(arrays["train"][0]), 1, 28, 28)
    server.calls.clear()
    fetch(["mnist"], tmp_path, downloader=server, hashes=hashes)
    assert server.calls == []  # present and verified: nothing downloaded again


def test_fetch_uses_env_cache(tmp_path, monkeypatch, mnist_remote):
    files, hashes, _ = mnist_remote
    monkeypatch.setenv("BENCHBENCH_DATA", str(tmp_path / "env"))
    fetch("mnist", downloader=FakeServer(files), hashes=hashes)
    assert (tmp_path / "env" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_fetch_falls_back_to_second_mirror(tmp_path, mnist_remote):
    files, hashes, _ = mnist_remote
    moved = {url.replace("primary", "fallback"): blob for url, blob in files.items()}
    server = FakeServer(moved)
    fetch("mnist", tmp_path, downloader=server, hashes=hashes)
    assert sum("primary" in u for u in server.calls) == 4 and sum("fallback" in u for u in server.calls) == 4


def test_fetch_all_mirrors_down(tmp_path, mnist_remote):
    _, hashes, _ = mnist_remote
    with pytest.raises(DataError) as info:
        fetch("mnist", tmp_path, downloader=FakeServer({}), hashes=hashes)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz: download failed" in msg
    assert "primary.invalid" in msg and "fallback.invalid" in msg and "\n" not in msg


def test_fetch_rejects_bad_download_and_keeps_nothing(tmp_path, mnist_remote):
    files, hashes, _ = mnist_remote
    corrupted = {url: blob[:20] + bytes([blob[20] ^ 0xFF]) + blob[21:] for url, blob in files.items()}
    with pytest.raises(DataError, match="download failed"):
        fetch("mnist", tmp_path, downloader=FakeServer(corrupted), hashes=hashes)
    assert not list((tmp_path / "mnist").glob("*.gz"))


def test_fetch_never_replaces_a_bad_present_file(tmp_path, mnist_remote, mnist_fake):
    files, hashes, _ = mnist_remote
    _, contents, _ = mnist_fake
    paths = write_mnist(tmp_path / "mnist", contents)
    paths["train-labels-idx1-ubyte"].write_bytes(gzip.compress(b"not mnist"))
    before = paths["train-labels-idx1-ubyte"].read_bytes()
    server = FakeServer(files)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: SHA-256 mismatch"):
        fetch("mnist", tmp_path, downloader=server, hashes=hashes)
    assert server.calls == [] and paths["train-labels-idx1-ubyte"].read_bytes() == before


def test_fetch_completes_partial_mnist(tmp_path, mnist_remote, mnist_fake):
    files, hashes, _ = mnist_remote
    _, contents, _ = mnist_fake
    write_mnist(tmp_path, {"train-images-idx3-ubyte": contents["train-images-idx3-ubyte"]}, compressed=False)
    server = FakeServer(files)
    out = fetch("mnist", tmp_path, downloader=server, hashes=hashes)
    assert out["mnist"][0] == tmp_path / "train-images-idx3-ubyte"
    assert len(server.calls) == 3


def test_fetch_cifar10(tmp_path, monkeypatch, cifar_fake):
    arrays, contents, hashes = cifar_fake
    blob = write_cifar_archive(tmp_path / "src" / "c.tar.gz", contents).read_bytes()
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    rf = REMOTE_FILES["cifar10"][0]
    monkeypatch.setitem(REMOTE_FILES, "cifar10", (RemoteFile(rf.fname, (url,), sha256(blob), rf.contents),))
    out = fetch(["cifar10", "sine"], tmp_path / "cache", downloader=FakeServer({url: blob}), hashes=hashes)
    assert out == {"cifar10": [tmp_path / "cache" / "cifar10" / "cifar-10-python.tar.gz"], "sine": []}
    (x, t), (xv, tv) = load_cifar10(tmp_path / "cache", hashes=hashes)
    assert x.shape == (5 * len(arrays["data_batch_1"][1]), 3, 32, 32)


def test_fetch_validates_names(tmp_path):
    with pytest.raises(ValueError, match="fetch: unknown dataset 'imagenet'"):
        fetch(["mnist", "imagenet"], tmp_path)
    with pytest.raises(TypeError, match="fetch: names"):
        fetch(3, tmp_path)
