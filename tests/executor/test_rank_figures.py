"""A data-parallel cell's memory and energy figures cover all its ranks."""
from benchbench.executor import ranks, runner


class _Comm:
    def __init__(self, rows):
        self.rows = rows

    def allgather_obj(self, obj):
        return [obj] + self.rows


def _cell(host, dev, joules, epochs=0):
    cell = runner.skeleton({"id": "w/gpu:0,1/r0", "workload": "w", "device": "gpu:0,1", "n_ranks": 2})
    cell["memory"].update(peak_host_bytes=host, peak_device_bytes=dev)
    cell["energy"].update(joules=joules, source="nvml" if joules is not None else None)
    cell["epoch_log"] = [{}] * epochs
    return cell


def test_energy_sums_over_ranks_and_memory_takes_the_largest_rank():
    cell = _cell(100, 1000, 5.0, epochs=2)
    ranks.combine_ranks(cell, _Comm([(300, 700, 7.0), (200, 2000, 3.0)]))
    assert cell["memory"] == {"peak_host_bytes": 300, "peak_device_bytes": 2000}
    assert cell["energy"] == {"joules": 15.0, "joules_per_epoch": 7.5, "source": "nvml, sum over 3 GPUs"}


def test_no_total_energy_when_a_rank_has_none():
    cell = _cell(100, None, 5.0)
    ranks.combine_ranks(cell, _Comm([(50, 800, None)]))
    assert cell["energy"] == {"joules": None, "joules_per_epoch": None, "source": None}
    assert cell["memory"] == {"peak_host_bytes": 100, "peak_device_bytes": 800}


def test_cpu_ranks_keep_no_energy():
    cell = _cell(100, None, None)
    ranks.combine_ranks(cell, _Comm([(400, None, None)]))
    assert cell["energy"]["joules"] is None and cell["memory"] == {"peak_host_bytes": 400, "peak_device_bytes": None}
