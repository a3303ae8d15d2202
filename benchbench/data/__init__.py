"""Datasets for the workloads: MNIST, CIFAR-10, a generated sine wave, learnable stand-ins.

``load(name, source="auto")`` returns a ``Dataset`` from the official files in the cache, or
a synthetic stand-in of the same shapes when they are not there; ``fetch(names)`` downloads the
official files; ``BatchIterator`` yields shuffled, sharded mini-batches. The generators
themselves are ``benchbench.data.sine.sine`` and ``benchbench.data.synthetic.synthetic``.
"""
from benchbench.data.cache import data_path, describe_layout, expected_files
from benchbench.data.cifar10 import load_cifar10
from benchbench.data.dataset import Dataset
from benchbench.data.download import fetch
from benchbench.data.errors import DataError
from benchbench.data.iterator import BatchIterator
from benchbench.data.loader import NAMES, load
from benchbench.data.mnist import load_mnist

__all__ = [
    "NAMES", "BatchIterator", "DataError", "Dataset", "data_path", "describe_layout", "expected_files", "fetch",
    "load", "load_cifar10", "load_mnist",
]
