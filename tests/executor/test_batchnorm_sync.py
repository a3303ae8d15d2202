"""BatchNorm running statistics in data parallel: averaged over the ranks before validation."""
import numpy
import pytest

from benchbench.core import links as L
from benchbench.executor.launch import launcher
from benchbench.executor.cell.data_parallel import average_persistents


class TwoRanks:
    """Rank 0 of a 2-rank group whose other rank holds ``other`` for each buffer, in call order."""

    size, rank = 2, 0

    def __init__(self, others):
        self.others = list(others)

    def allreduce_mean(self, array):
        array += self.others.pop(0)
        array *= array.dtype.type(0.5)
        return array


def test_average_persistents_means_the_running_statistics():
    bn = L.BatchNormalization(2)
    bn.avg_mean[...] = [1.0, 2.0]
    bn.avg_var[...] = [1.0, 1.0]
    bn.N = 7
    names = average_persistents(bn, TwoRanks([numpy.array([3.0, 4.0], numpy.float32),   # avg_mean
                                              numpy.array([3.0, 5.0], numpy.float32)]))  # avg_var
    assert names == ["/avg_mean", "/avg_var"] or names == ["avg_mean", "avg_var"]
    numpy.testing.assert_allclose(bn.avg_mean, [2.0, 3.0])
    numpy.testing.assert_allclose(bn.avg_var, [2.0, 3.0])
    assert bn.N == 7  # counters are not averaged


def test_nothing_to_do_on_one_rank():
    assert average_persistents(L.BatchNormalization(2), None) == []


@pytest.mark.mpi
def test_data_parallel_resnet_validates_with_the_same_statistics_on_every_rank(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    desc = {"id": "resnet_cifar10/cpu:dp2/r0", "workload": "resnet_cifar10:depth=18", "workload_name": "resnet_cifar10",
            "params": {"depth": 18}, "dataset": "cifar10", "device": "cpu:dp2", "device_kind": "cpu", "indices": [],
            "n_ranks": 2, "communicator": "mpi", "scaling": "strong", "repeat": 0, "profile": "quick",
            "settings": {"warmup_steps": 0, "steps": 2, "val_batches": 1, "timeout_s": 600, "min_time_s": 0},
            "seed": 0, "data": "synthetic", "data_dir": None, "dtype": "float32", "deterministic": False,
            "timeout_s": 600.0, "collective_timeout_s": 300.0, "batch_size": 64}
    cell = launcher.run_one(desc)
    assert cell["status"] == "ok", cell["reason"]
    sync = cell["batchnorm_sync"]
    # Each rank saw its own shard, so the statistics differed before the averaging, and agree after it.
    assert sync["ranks_differed_before"] is True and sync["ranks_agree"] is True
    assert sync["buffers"] >= 2 * 20  # mean and variance of every BN layer
    assert cell["interconnect"]["ranks"] == 2 and len(cell["interconnect"]["points"]) >= 2
