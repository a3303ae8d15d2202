"""A data-parallel cell's memory figures cover all its ranks (energy: see test_gpu_figures / window)."""
from benchbench.executor.cell import ranks
from benchbench.cell_record import skeleton


class _Comm:
    def __init__(self, rows):
        self.rows = rows

    def allgather_obj(self, obj):
        return [obj] + self.rows


def _cell(host, dev, joules=None):
    cell = skeleton({"id": "w/gpu:0,1/r0", "workload": "w", "device": "gpu:0,1", "n_ranks": 2})
    cell["memory"].update(peak_host_bytes=host, peak_device_bytes=dev)
    cell["energy"].update(joules=joules, source="nvml" if joules is not None else None)
    return cell


def test_memory_takes_the_largest_rank_and_energy_is_left_to_the_timed_window():
    cell = _cell(100, 1000, joules=5.0)
    ranks.combine_ranks(cell, _Comm([(300, 700), (200, 2000)]))
    assert cell["memory"]["peak_host_bytes"] == 300 and cell["memory"]["peak_device_bytes"] == 2000
    assert cell["energy"]["joules"] == 5.0  # already the sum over ranks (window.combine): not summed again


def test_a_rank_without_device_memory_figure():
    cell = _cell(100, None)
    ranks.combine_ranks(cell, _Comm([(50, 800)]))
    assert cell["memory"]["peak_host_bytes"] == 100 and cell["memory"]["peak_device_bytes"] == 800


def test_cpu_ranks_keep_no_device_figure():
    cell = _cell(100, None)
    ranks.combine_ranks(cell, _Comm([(400, None)]))
    assert cell["energy"]["joules"] is None and cell["memory"]["peak_host_bytes"] == 400
    assert cell["memory"]["peak_device_bytes"] is None
