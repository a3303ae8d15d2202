import re

from benchbench.data.sources import CONTENT_SHA256, REMOTE_FILES


def test_published_hash_table_is_complete_and_well_formed():
    for files in REMOTE_FILES.values():
        for rf in files:
            assert re.fullmatch(r"[0-9a-f]{64}", rf.download_sha256)
            assert rf.urls and all(u.endswith(rf.fname) for u in rf.urls)
            for content in rf.contents:
                assert re.fullmatch(r"[0-9a-f]{64}", CONTENT_SHA256[content])
    assert REMOTE_FILES["mnist"][0].urls[0].startswith("https://ossci-datasets.s3.amazonaws.com/mnist/")


def test_mnist_mirrors_and_cifar_location():
    for rf in REMOTE_FILES["mnist"]:
        assert [u.rsplit("/", 1)[0] for u in rf.urls] == ["https://ossci-datasets.s3.amazonaws.com/mnist",
                                                           "http://yann.lecun.com/exdb/mnist"]
    assert REMOTE_FILES["cifar10"][0].urls == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
