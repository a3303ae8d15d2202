"""Where the official dataset files come from and the checksums they must have.

Two kinds of checksum are kept per dataset:

* ``download_sha256``: the SHA-256 of each file exactly as published (the ``.gz`` or
  ``.tar.gz``), which ``pooch`` checks while downloading;
* ``CONTENT_SHA256``: the SHA-256 of the *uncompressed* content of every file the loaders
  read (each MNIST IDX file, each CIFAR-10 batch inside the archive). The loaders check
  these, so a file placed by hand verifies whether it is compressed as published,
  decompressed (as torchvision and other caches keep it) or re-compressed.
"""
from dataclasses import dataclass

_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


@dataclass(frozen=True)
class RemoteFile:
    """One file as published.

    Attributes:
        fname: file name as published, e.g. ``"train-images-idx3-ubyte.gz"``.
        urls: where to download it from, tried in order.
        download_sha256: SHA-256 of the published (compressed) bytes.
        contents: names of the uncompressed files it holds (keys of ``CONTENT_SHA256``).
    """

    fname: str
    urls: tuple[str, ...]
    download_sha256: str
    contents: tuple[str, ...]


def _mnist_file(fname: str, sha256: str) -> RemoteFile:
    return RemoteFile(fname, tuple(m + fname for m in _MNIST_MIRRORS), sha256, (fname[: -len(".gz")],))


REMOTE_FILES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": (
        _mnist_file("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        _mnist_file("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        _mnist_file("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        _mnist_file("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
    "cifar10": (
        RemoteFile(
            "cifar-10-python.tar.gz",
            (_CIFAR10_URL,),
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
             "batches.meta"),
        ),
    ),
}

# SHA-256 of the uncompressed content of every file the loaders read.
CONTENT_SHA256: dict[str, str] = {
    # MNIST IDX files, decompressed.
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    # CIFAR-10 python batches, members of cifar-10-python.tar.gz under cifar-10-batches-py/.
    "data_batch_1": "54636561a3ce25bd3e19253c6b0d8538147b0ae398331ac4a2d86c6d987368cd",
    "data_batch_2": "766b2cef9fbc745cf056b3152224f7cf77163b330ea9a15f9392beb8b89bc5a8",
    "data_batch_3": "0f00d98ebfb30b3ec0ad19f9756dc2630b89003e10525f5e148445e82aa6a1f9",
    "data_batch_4": "3f7bb240661948b8f4d53e36ec720d8306f5668bd0071dcb4e6c947f78e9682b",
    "data_batch_5": "d91802434d8376bbaeeadf58a737e3a1b12ac839077e931237e0dcd43adcb154",
    "test_batch": "f53d8d457504f7cff4ea9e021afcf0e0ad8e24a91f3fc42091b8adef61157831",
    "batches.meta": "f962466ef690d46b226450fb9aadc74ba4bc64a76aa526b5827fe4bc5c7125cb",
}

DATASETS = tuple(REMOTE_FILES)
