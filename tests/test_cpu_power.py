"""CPU frequency facts and RAPL energy, read from a sysfs tree the tests write."""
import os

import pytest

from benchbench import system
from benchbench.system.cpu_power import RaplCounter, cpu_energy, cpu_frequency


def _write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n")
    return path


@pytest.fixture
def sysfs(tmp_path):
    for cpu in (0, 1):
        base = f"sys/devices/system/cpu/cpu{cpu}/cpufreq/"
        _write(tmp_path, base + "scaling_governor", "powersave")
        _write(tmp_path, base + "scaling_cur_freq", 2_000_000 + 1_000_000 * cpu)
        _write(tmp_path, base + "cpuinfo_max_freq", 3_900_000)
        _write(tmp_path, base + "cpuinfo_min_freq", 800_000)
    _write(tmp_path, "sys/devices/system/cpu/intel_pstate/no_turbo", 0)
    _write(tmp_path, "sys/devices/system/cpu/smt/active", 1)
    for node in (0, 1):
        (tmp_path / f"sys/devices/system/node/node{node}").mkdir(parents=True)
    for pkg, energy in ((0, 1_000_000), (1, 2_000_000)):
        zone = f"sys/class/powercap/intel-rapl:{pkg}/"
        _write(tmp_path, zone + "name", f"package-{pkg}")
        _write(tmp_path, zone + "energy_uj", energy)
        _write(tmp_path, zone + "max_energy_range_uj", 262_143_328_850)
    _write(tmp_path, "sys/class/powercap/intel-rapl:0:0/name", "core")
    return tmp_path


def test_frequency_facts_and_warnings(sysfs):
    f = cpu_frequency(sysfs)
    assert f["governor"] == "powersave" and f["turbo"] is True and f["smt"] is True
    assert f["cur_mhz"] == 2500.0 and f["max_mhz"] == 3900.0 and f["min_mhz"] == 800.0 and f["numa_nodes"] == 2
    text = " ".join(f["warnings"])
    assert "not performance" in text and "turbo" in text and "SMT" in text
    _write(sysfs, "sys/devices/system/cpu/intel_pstate/no_turbo", 1)
    assert cpu_frequency(sysfs)["turbo"] is False


def test_a_machine_without_cpufreq_says_so(tmp_path):
    f = cpu_frequency(tmp_path)
    assert f["governor"] is None and f["cur_mhz"] is None and "no cpufreq" in f["warnings"][0]


def test_rapl_energy_with_wrap_around(sysfs):
    assert cpu_energy(sysfs) == {"available": True, "domains": ["intel-rapl:0", "intel-rapl:1"], "reason": None}
    counter = RaplCounter(sysfs).start()
    _write(sysfs, "sys/class/powercap/intel-rapl:0/energy_uj", 4_000_000)  # +3 J
    _write(sysfs, "sys/class/powercap/intel-rapl:1/energy_uj", 1_000_000)  # wrapped: +range - 1 J
    assert counter.stop() == pytest.approx(3.0 + (262_143_328_850 - 1_000_000) / 1e6)


def test_rapl_unreadable_or_absent_says_why(sysfs, tmp_path_factory):
    assert "no /sys/class/powercap" in cpu_energy(tmp_path_factory.mktemp("empty"))["reason"]
    if os.geteuid() != 0:
        os.chmod(sysfs / "sys/class/powercap/intel-rapl:1/energy_uj", 0)
        assert "not readable by this user" in cpu_energy(sysfs)["reason"]
    (sysfs / "sys/class/powercap/intel-rapl:1/energy_uj").unlink()
    energy = cpu_energy(sysfs)
    assert not energy["available"] and "intel-rapl:1" in energy["reason"]
    assert RaplCounter(sysfs).start().stop() is None


def test_info_shows_the_frequency_facts_and_energy(sysfs, monkeypatch):
    monkeypatch.setenv("BENCHBENCH_SYSFS_ROOT", str(sysfs))
    fp = system.fingerprint()
    text = system.format_fingerprint(fp)
    assert "governor powersave, turbo on, current 2500 MHz, max 3900 MHz, NUMA nodes 2, SMT on" in text
    assert "warning: CPU governor is powersave" in text
    assert "cpu energy RAPL readable (intel-rapl:0, intel-rapl:1)" in text
    assert fp["cpu_frequency"]["governor"] == "powersave" and fp["cpu_energy"]["available"]


def test_default_label_from_the_models():
    fp = {"cpu": {"model": "Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.0GHz"},
          "gpus": [{"name": "NVIDIA H100 80GB HBM3"}, {"name": "NVIDIA H100 80GB HBM3"}]}
    assert system.default_label(fp) == "2× H100 80GB HBM3 / Xeon 8480+"
    assert system.default_label({"cpu": {"model": "AMD EPYC 9654 96-Core Processor"}, "gpus": []}) == "AMD EPYC 9654 96-Core"


@pytest.mark.simgpu
def test_gpu_clocks_persistence_and_links_from_nvml(monkeypatch):
    pytest.importorskip("pynvml")
    import pynvml

    if not hasattr(pynvml, "nvmlDeviceGetNvLinkRemotePciInfo") or "simgpu" not in (pynvml.__file__ or ""):
        pytest.skip("needs the simulated NVML (PYTHONPATH=tests/simgpu)")
    monkeypatch.setenv("BENCHBENCH_SIM_GPUS", "4")
    gpus = system.gpu_list()
    assert gpus[0]["persistence_mode"] is True and gpus[0]["clocks_current_mhz"]["sm"] == 1980
    assert gpus[0]["pcie_current"] == {"gen": 5, "width": 16} and gpus[0]["nvlink"]["active_links"] == 0
    assert {p["link"] for p in system.gpu_topology(gpus)} == {"PCIe host bridge"}
    monkeypatch.setenv("BENCHBENCH_SIM_GPU_NVLINK", "4")  # a ring: two links to each neighbour
    gpus = system.gpu_list()
    links = {(p["a"], p["b"]): p["link"] for p in system.gpu_topology(gpus)}
    assert links[(0, 1)] == "NVLink x2" and links[(0, 3)] == "NVLink x2" and links[(0, 2)] == "PCIe host bridge"
    assert "gpu links 0-1: NVLink x2" in system.format_fingerprint(system.fingerprint())
