import importlib.metadata
import os
import subprocess
import sys
import types

import pytest

from benchbench import results, system
from benchbench.system import cpu as system_cpu
from benchbench.system import library_versions as system_library_versions
from benchbench.system import nvml as system_nvml


class _Err(Exception):
    """Stands in for pynvml.NVMLError_NotSupported."""


def _fake_nvml(n=2, energy=(1_000_000, 1_250_000), used=(1 << 30, 3 << 30, 2 << 30), init_fails=False):
    """A fake pynvml with ``n`` GPUs; energy counter and memory readings advance on every call."""
    calls = {"init": 0, "shutdown": 0}
    energy_iter, used_iter = iter(energy), iter(used)
    last = {"used": used[0]}

    def init():
        calls["init"] += 1
        if init_fails:
            raise _Err("NVML Shared Library Not Found")

    def shutdown():
        calls["shutdown"] += 1

    def unsupported(*_):
        raise _Err("Not Supported")

    def memory(h):
        last["used"] = next(used_iter, last["used"])
        return types.SimpleNamespace(total=80 << 30, used=last["used"], free=0)

    nv = types.SimpleNamespace(
        calls=calls, NVML_CLOCK_SM=1, NVML_CLOCK_MEM=2,
        nvmlInit=init, nvmlShutdown=shutdown,
        nvmlDeviceGetCount=lambda: n,
        nvmlSystemGetDriverVersion=lambda: b"550.54.15",
        nvmlSystemGetCudaDriverVersion_v2=lambda: 12040,
        nvmlDeviceGetHandleByIndex=lambda i: ("h", i),
        nvmlDeviceGetName=lambda h: f"Fake GPU {h[1]}",
        nvmlDeviceGetUUID=lambda h: f"GPU-{h[1]:04d}",
        nvmlDeviceGetPciInfo=lambda h: types.SimpleNamespace(busId=f"00000000:0{h[1]}:00.0"),
        nvmlDeviceGetMemoryInfo=memory,
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 700_000,
        nvmlDeviceGetMaxClockInfo=lambda h, kind: {1: 1980, 2: 2619}[kind],
        nvmlDeviceGetMaxPcieLinkGeneration=lambda h: 5,
        nvmlDeviceGetMaxPcieLinkWidth=unsupported,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=None),
                                                         types.SimpleNamespace(pid=-7, usedGpuMemory=5)],
        nvmlDeviceGetTotalEnergyConsumption=lambda h: next(energy_iter),
    )
    return nv


def test_fingerprint_has_schema_fields():
    fp = system.fingerprint()
    assert set(fp) >= {"id", "hostname", "os", "python", "cpu", "blas", "memory_bytes", "env", "gpus", "versions"}
    assert set(fp["cpu"]) == {"model", "arch", "cores_physical", "cores_logical", "flags", "max_mhz"}
    assert fp["cpu"]["model"] and fp["cpu"]["cores_logical"] >= 1
    assert set(fp["cpu"]["flags"]) <= set(system.ISA_FLAGS)
    assert set(fp["blas"]) == {"library", "version", "kernel", "threads", "warning"}
    assert set(fp["env"]) == set(system.PERF_ENV_VARS)
    assert fp["memory_bytes"] > 0
    assert fp["versions"]["benchbench"] and fp["versions"]["numpy"]
    assert fp["id"] == system.machine_id(fp)
    results.new_run(fp, {"profile": "quick", "devices": ["cpu"], "workloads": [], "repeat": 1}, "x")  # valid


def test_fingerprint_without_nvml_has_no_gpus(monkeypatch):
    monkeypatch.setattr(system_nvml, "pynvml", _fake_nvml(init_fails=True))
    assert system.gpu_list() == []
    assert system.fingerprint()["gpus"] == []
    monkeypatch.setattr(system_nvml, "pynvml", None)
    assert system.fingerprint()["gpus"] == []


def test_gpu_list_from_nvml(monkeypatch):
    nv = _fake_nvml(n=2)
    monkeypatch.setattr(system_nvml, "pynvml", nv)
    gpus = system.gpu_list()
    assert [g["index"] for g in gpus] == [0, 1]
    g = gpus[1]
    assert g["name"] == "Fake GPU 1" and g["uuid"] == "GPU-0001" and g["pci_bus_id"] == "00000000:01:00.0"
    assert g["memory_bytes"] == 80 << 30 and g["driver"] == "550.54.15" and g["cuda"] == "12.4"
    assert g["power_limit_w"] == 700.0
    assert g["clocks_mhz"] == {"sm_max": 1980, "mem_max": 2619}
    assert g["pcie"] == {"gen": 5, "width": None}  # unsupported -> None
    assert g["processes"] == 1  # this process is not counted
    assert nv.calls["init"] == nv.calls["shutdown"] == 1


def test_gpu_list_when_count_fails(monkeypatch):
    nv = _fake_nvml()
    nv.nvmlDeviceGetCount = lambda: (_ for _ in ()).throw(_Err("Unknown Error"))
    monkeypatch.setattr(system_nvml, "pynvml", nv)
    assert system.gpu_list() == []
    assert nv.calls["shutdown"] == 1


def test_machine_id_stable_and_hardware_dependent(monkeypatch):
    fp = {"hostname": "My Host.local", "cpu": {"model": "CPU X"}, "gpus": []}
    a = system.machine_id(fp)
    assert a == system.machine_id(dict(fp)) and a.startswith("my-host-local-") and len(a.split("-")[-1]) == 8
    with_gpu = dict(fp, gpus=[{"name": "G", "uuid": "GPU-1"}])
    other_gpu = dict(fp, gpus=[{"name": "G", "uuid": "GPU-2"}])
    assert len({a, system.machine_id(with_gpu), system.machine_id(other_gpu)}) == 3
    assert system.machine_id(dict(fp, hostname="")).startswith("host-")
    with pytest.raises(ValueError, match="machine_id: fp"):
        system.machine_id({"hostname": "x"})


def test_fingerprint_with_fake_gpus_is_a_valid_results_machine(monkeypatch):
    monkeypatch.setattr(system_nvml, "pynvml", _fake_nvml(n=2))
    fp = system.fingerprint()
    assert [g["name"] for g in fp["gpus"]] == ["Fake GPU 0", "Fake GPU 1"]
    results.new_run(fp, {"profile": "quick", "devices": ["gpu:0"], "workloads": [], "repeat": 1}, "x")
    text = system.format_fingerprint(fp)
    assert "[1] Fake GPU 1, 80.0 GiB, driver 550.54.15, CUDA 12.4, 700 W, SM 1980 MHz, PCIe gen5" in text


# ---------------------------------------------------------------- BLAS warning

@pytest.mark.parametrize("kernel, flags, env, arch, expected", [
    ("Haswell", ["avx", "avx2", "fma", "avx512f"], {"OPENBLAS_CORETYPE": "Haswell"}, "x86_64",
     "OPENBLAS_CORETYPE=Haswell forces the Haswell kernel; this CPU supports avx512f; "
     "BLAS figures may be lower than the hardware allows"),
    ("Sandybridge", ["avx", "avx2", "fma"], {"OPENBLAS_CORETYPE": "sandybridge"}, "x86_64",
     "OPENBLAS_CORETYPE=sandybridge forces the Sandybridge kernel; this CPU supports avx2 + fma; "
     "BLAS figures may be lower than the hardware allows"),
    ("Prescott", ["avx"], {"OPENBLAS_CORETYPE": "Prescott"}, "x86_64",
     "OPENBLAS_CORETYPE=Prescott forces the Prescott kernel; this CPU supports avx;"),
    ("Haswell", ["avx", "avx2", "fma"], {"OPENBLAS_CORETYPE": "Haswell"}, "x86_64", None),  # as wide as the CPU
    ("SkylakeX", ["avx", "avx2", "fma", "avx512f"], {"OPENBLAS_CORETYPE": "SkylakeX"}, "x86_64", None),
    ("Haswell", ["avx", "avx2", "fma", "avx512f"], {}, "x86_64", None),  # nothing forced
    ("Mystery", ["avx512f"], {"OPENBLAS_CORETYPE": "Mystery"}, "x86_64", None),  # unknown kernel: no claim
    ("ARMV8", ["asimd", "sve"], {"OPENBLAS_CORETYPE": "ARMV8"}, "aarch64",
     "OPENBLAS_CORETYPE=ARMV8 forces the ARMV8 kernel; this CPU supports sve;"),
    ("NEOVERSEV1", ["asimd", "sve"], {"OPENBLAS_CORETYPE": "NEOVERSEV1"}, "aarch64", None),
    (None, ["avx", "avx2", "fma", "avx512f"], {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, "x86_64",
     "MKL_ENABLE_INSTRUCTIONS=AVX2 limits MKL to AVX2; this CPU supports avx512f;"),
])
def test_blas_warning(kernel, flags, env, arch, expected):
    warning = system.blas_warning(kernel, flags, env, arch)
    if expected is None:
        assert warning is None
    else:
        assert warning is not None and warning.startswith(expected)


def test_blas_info_from_threadpoolctl(monkeypatch):
    info = [{"user_api": "openmp", "internal_api": "openmp", "num_threads": 8},
            {"user_api": "blas", "internal_api": "openblas", "version": "0.3.27", "num_threads": 4,
             "architecture": "Haswell"}]
    monkeypatch.setattr(system_cpu, "_threadpool_info", lambda: info)
    cpu = {"flags": ["avx", "avx2", "fma", "avx512f"], "arch": "x86_64"}
    out = system.blas_info(cpu, {"OPENBLAS_CORETYPE": "Haswell"})
    assert (out["library"], out["version"], out["kernel"], out["threads"]) == ("openblas", "0.3.27", "Haswell", 4)
    assert "forces the Haswell kernel" in out["warning"]
    assert system.blas_info(cpu, {})["warning"] is None
    monkeypatch.setattr(system_cpu, "_threadpool_info", lambda: [])
    assert system.blas_info(cpu, {}) == {"library": None, "version": None, "kernel": None, "threads": None,
                                         "warning": None}


def test_blas_info_on_this_machine_sees_numpy_blas():
    out = system.blas_info()
    assert out["library"] is not None and out["threads"] >= 1


def test_cpu_info_reads_arm_features(monkeypatch):
    monkeypatch.setattr(system_cpu, "_read_cpuinfo", lambda: {"Features": "fp asimd sve sve2 bf16 i8mm crc32"})
    monkeypatch.setattr(system.platform, "processor", lambda: "")
    monkeypatch.setattr(system.platform, "machine", lambda: "aarch64")
    cpu = system.cpu_info()
    assert cpu["flags"] == ["asimd", "bf16", "i8mm", "sve", "sve2"]
    assert cpu["model"] == "aarch64" and cpu["arch"] == "aarch64"
    monkeypatch.setattr(system_cpu, "_read_cpuinfo", lambda: {"Features": "asimd sve2", "CPU implementer": "0x41",
                                                          "CPU part": "0xd4f"})
    assert system.cpu_info()["model"] == "ARM Neoverse-V2"


def test_fingerprint_records_env_and_warning(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.setattr(system_cpu, "_threadpool_info", lambda: [
        {"user_api": "blas", "internal_api": "openblas", "version": "0.3", "num_threads": 3,
         "architecture": "Prescott"}])
    monkeypatch.setattr(system_cpu, "_read_cpuinfo", lambda: {"model name": "Big  CPU", "flags": "avx avx2 fma avx512f"})
    fp = system.fingerprint()
    assert fp["env"]["OMP_NUM_THREADS"] == "3" and fp["env"]["OPENBLAS_CORETYPE"] is None
    assert fp["cpu"]["model"] == "Big CPU" and fp["blas"]["warning"] is None
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")
    fp = system.fingerprint()
    assert "this CPU supports avx512f" in fp["blas"]["warning"]
    text = system.format_fingerprint(fp)
    assert "warning: OPENBLAS_CORETYPE=Prescott" in text and "OMP_NUM_THREADS=3" in text


def test_format_fingerprint_without_gpu(monkeypatch):
    monkeypatch.setattr(system_nvml, "pynvml", None)
    text = system.format_fingerprint(system.fingerprint())
    assert "gpus      none found" in text and "versions  benchbench" in text
    with pytest.raises(ValueError, match="format_fingerprint"):
        system.format_fingerprint(None)


# ---------------------------------------------------------------- versions

def test_versions_read_metadata_without_importing_optional_layers():
    code = ("import sys, benchbench.system as s; v = s.versions(); "
            "print(v['mpi4py'] is not None, v['mpi'], 'mpi4py' in sys.modules, 'pandas' in sys.modules, "
            "'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["True", "mpich"]  # "mpich <version>", from the package metadata
    assert out[-3:] == ["False", "False", "False"]
    assert system.versions()["mpi4py"] == importlib.metadata.version("mpi4py")


@pytest.mark.parametrize("code, text", [(22703, "2.27.3"), (2708, "2.7.8"), (21805, "2.18.5")])
def test_nccl_version_text(code, text):
    fake_cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(
        nccl=types.SimpleNamespace(available=True, get_version=lambda: code)))
    assert system_library_versions._nccl_version(fake_cupy) == text


# ---------------------------------------------------------------- GpuMonitor

def test_gpu_monitor_energy_and_peak_memory(monkeypatch):
    nv = _fake_nvml(energy=(5_000_000, 5_750_500), used=(1 << 30, 3 << 30, 2 << 30))
    monkeypatch.setattr(system_nvml, "pynvml", nv)
    with system.GpuMonitor(1) as mon:
        mon.sample()
    r = mon.result
    assert r["energy_j"] == pytest.approx(750.5)
    assert r["peak_memory_bytes"] == 3 << 30 and r["memory_scope"] == "device"
    assert r["source"] == "nvml" and r["index"] == 1
    assert nv.calls["init"] == nv.calls["shutdown"] == 1


def test_gpu_monitor_prefers_this_process_memory(monkeypatch):
    nv = _fake_nvml()
    nv.nvmlDeviceGetComputeRunningProcesses = lambda h: [types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=42)]
    monkeypatch.setattr(system_nvml, "pynvml", nv)
    r = system.GpuMonitor(0).start().stop()
    assert (r["peak_memory_bytes"], r["memory_scope"]) == (42, "process")


def test_gpu_monitor_background_sampling(monkeypatch):
    nv = _fake_nvml(used=tuple(range(1, 10_000)))
    monkeypatch.setattr(system_nvml, "pynvml", nv)
    mon = system.GpuMonitor(0, interval_s=0.001).start()
    while mon._peak is not None and mon._peak < 5:
        mon._stop_event.wait(0.001)
    r = mon.stop()
    assert r["peak_memory_bytes"] >= 5 and mon._thread is None


@pytest.mark.parametrize("nvml", [None, "fails", "unsupported"])
def test_gpu_monitor_without_nvml_gives_none(monkeypatch, nvml):
    fake = None if nvml is None else _fake_nvml(init_fails=(nvml == "fails"))
    if nvml == "unsupported":
        def unsupported(*_):
            raise _Err("Not Supported")
        fake.nvmlDeviceGetTotalEnergyConsumption = unsupported
        fake.nvmlDeviceGetMemoryInfo = unsupported
        fake.nvmlDeviceGetComputeRunningProcesses = unsupported
    monkeypatch.setattr(system_nvml, "pynvml", fake)
    with system.GpuMonitor(0) as mon:
        pass
    assert mon.result["energy_j"] is None and mon.result["peak_memory_bytes"] is None
    assert mon.result["source"] == (None if nvml != "unsupported" else "nvml")


@pytest.mark.parametrize("kw", [{"index": -1}, {"index": "0"}, {"index": 0, "interval_s": 0}])
def test_gpu_monitor_rejects_bad_arguments(kw):
    with pytest.raises(ValueError, match="GpuMonitor"):
        system.GpuMonitor(**kw)


@pytest.mark.gpu
def test_gpu_list_and_monitor_on_a_real_gpu():
    gpus = system.gpu_list()
    assert gpus and gpus[0]["name"] and gpus[0]["memory_bytes"] > 0
    with system.GpuMonitor(0) as mon:
        pass
    assert mon.result["source"] == "nvml"
