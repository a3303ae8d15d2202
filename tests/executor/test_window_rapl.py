"""A CPU cell's timed window reads the RAPL package counters where sysfs has them readable."""
from benchbench.executor.cell.window import TimedWindow, combine


def _tree(root, uj):
    zone = root / "sys/class/powercap/intel-rapl:0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text(f"{uj}\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    return zone / "energy_uj"


def test_cpu_window_energy_from_rapl(tmp_path, monkeypatch):
    counter = _tree(tmp_path, 5_000_000)
    monkeypatch.setenv("BENCHBENCH_SYSFS_ROOT", str(tmp_path))
    window = TimedWindow()
    window.start()
    counter.write_text("7000000\n")  # 2 J over the first span
    window.pause()
    counter.write_text("9000000\n")  # validation: not counted
    window.resume()
    counter.write_text("10000000\n")  # 1 J more
    window.stop()
    assert window.rapl_j == 3.0
    _, energy = combine([window.as_dict(), window.as_dict()], threads_per_rank=1, probes=None, steps=10, samples=600)
    assert energy["source"] == "rapl" and energy["joules"] == 3.0  # machine-wide: not summed over ranks
    assert energy["samples_per_joule"] == 200.0 and "whole machine" in energy["scope"]


def test_no_rapl_no_cpu_energy(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHBENCH_SYSFS_ROOT", str(tmp_path))
    window = TimedWindow()
    window.start()
    window.stop()
    _, energy = combine([window.as_dict()], threads_per_rank=1, probes=None, steps=10, samples=600)
    assert energy["joules"] is None and energy["source"] is None
