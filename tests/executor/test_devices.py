import dataclasses

import pytest

from benchbench import system
from benchbench.core import backend
from benchbench.executor.planning import devices
from benchbench.executor.planning.devices import DeviceSpec, DeviceSpecError


def _specs(text, n_gpus):
    return [s.spec for s in devices.parse_specs(text, n_gpus)[0]]


@pytest.mark.parametrize("text, n_gpus, expected", [
    ("cpu", 0, ["cpu"]),
    ("CPU", 0, ["cpu"]),
    ("cpu:dp2", 0, ["cpu:dp2"]),
    ("gpu:0", 1, ["gpu:0"]),
    ("gpu:1,0", 2, ["gpu:0,1"]),
    ("gpu:all", 1, ["gpu:0"]),
    ("gpu:all", 3, ["gpu:0,1,2"]),
    ("cpu,gpu:0,1", 2, ["cpu", "gpu:0,1"]),
    ("cpu gpu:0, 1", 2, ["cpu", "gpu:0,1"]),
    ("cpu, gpu:0 gpu:1", 2, ["cpu", "gpu:0", "gpu:1"]),
    ("gpu:0,gpu:1", 2, ["gpu:0", "gpu:1"]),
    ("cpu cpu:dp4 cpu", 0, ["cpu", "cpu:dp4"]),
    ("  all  ", 1, ["cpu", "gpu:0"]),
    ("all cpu:dp2", 2, ["cpu", "gpu:0", "gpu:1", "gpu:0,1", "cpu:dp2"]),
    (["cpu", "gpu:0"], 1, ["cpu", "gpu:0"]),
    (["gpu:0,1", "cpu"], 2, ["gpu:0,1", "cpu"]),
])
def test_parse_specs(text, n_gpus, expected):
    assert _specs(text, n_gpus) == expected


@pytest.mark.parametrize("spec, kind, indices, n_ranks, communicator", [
    ("cpu", "cpu", (), 1, "single"),
    ("cpu:dp3", "cpu", (), 3, "mpi"),
    ("gpu:1", "gpu", (1,), 1, "single"),
    ("gpu:0,1,2", "gpu", (0, 1, 2), 3, "nccl"),
])
def test_spec_fields(spec, kind, indices, n_ranks, communicator):
    s = devices.parse_specs(spec, 4)[0][0]
    assert s == DeviceSpec(spec, kind, indices, n_ranks, communicator)
    assert s.data_parallel == (n_ranks > 1) and str(s) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.spec = "other"


@pytest.mark.parametrize("n_gpus, expected", [
    (0, ["cpu"]),
    (1, ["cpu", "gpu:0"]),
    (2, ["cpu", "gpu:0", "gpu:1", "gpu:0,1"]),
    (3, ["cpu", "gpu:0", "gpu:1", "gpu:2", "gpu:0,1", "gpu:0,1,2"]),
    (4, ["cpu", "gpu:0", "gpu:1", "gpu:2", "gpu:3", "gpu:0,1", "gpu:0,1,2,3"]),
    (8, ["cpu"] + [f"gpu:{i}" for i in range(8)] + ["gpu:0,1", "gpu:0,1,2,3", "gpu:0,1,2,3,4,5,6,7"]),
])
def test_all_expansion(n_gpus, expected):
    specs, notices = devices.parse_specs("all", n_gpus)
    assert [s.spec for s in specs] == expected
    assert all(s.communicator == ("nccl" if len(s.indices) > 1 else "single") for s in specs)
    assert not any(s.spec.startswith("cpu:dp") for s in specs)
    if n_gpus == 0:
        assert len(notices) == 1 and "no GPU found" in notices[0] and "\n" not in notices[0]
    else:
        assert notices == []


def test_all_with_six_gpus_adds_the_full_set():
    specs = _specs("all", 6)
    assert specs[-3:] == ["gpu:0,1", "gpu:0,1,2,3", "gpu:0,1,2,3,4,5"]


@pytest.mark.parametrize("text, n_gpus, message", [
    ("gpu:1", 0, "gpu:1 not found; this machine has: cpu (no GPU found)"),
    ("gpu:0", 0, "gpu:0 not found; this machine has: cpu (no GPU found)"),
    ("gpu:2", 2, "gpu:2 not found; this machine has: cpu, gpu:0, gpu:1"),
    ("gpu:0,3", 2, "gpu:3 not found (in gpu:0,3); this machine has: cpu, gpu:0, gpu:1"),
    ("gpu:all", 0, "gpu:all: no GPU found; this machine has: cpu (no GPU found)"),
])
def test_missing_gpu_lists_the_devices_there_are(text, n_gpus, message):
    with pytest.raises(DeviceSpecError) as info:
        devices.parse_specs(text, n_gpus)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_missing_gpu_hint_is_appended():
    with pytest.raises(DeviceSpecError, match=r"not found; this machine has: cpu \(no GPU found\); install cupy"):
        devices.parse_specs("gpu:0", 0, hint="install cupy")


@pytest.mark.parametrize("text", ["gpux", "gpu", "gpu:", "gpu:a", "gpu:0;1", "cpu:dp", "cpu:2", "tpu:0", "1",
                                  "cpu,1", "gpu:-1", "cpu:dpx"])
def test_malformed_spec_names_it_and_the_valid_forms(text):
    with pytest.raises(DeviceSpecError) as info:
        devices.parse_specs(text, 2)
    msg = str(info.value)
    assert "valid forms: cpu, cpu:dpN" in msg and "gpu:all" in msg
    assert repr(text.split(",")[-1]) in msg or repr(text) in msg


@pytest.mark.parametrize("text, message", [
    ("cpu:dp1", "cpu:dp1: data parallel needs at least 2 CPU processes"),
    ("cpu:dp0", "cpu:dp0: data parallel needs at least 2 CPU processes"),
    ("gpu:0,0", "gpu:0,0: a GPU is listed twice"),
    ("", "no device spec given"),
    (" , ", "no device spec given"),
    ([], "no device spec given"),
])
def test_other_spec_errors(text, message):
    with pytest.raises(DeviceSpecError, match=message):
        devices.parse_specs(text, 2)


@pytest.mark.parametrize("text, n_gpus", [(None, 0), (3, 0), (["cpu", 1], 0), ("cpu", -1), ("cpu", 1.0),
                                          ("cpu", True)])
def test_bad_argument_types(text, n_gpus):
    with pytest.raises(TypeError, match="parse_specs"):
        devices.parse_specs(text, n_gpus)


# ---------------------------------------------------------------- discovery

def _nvml_gpus(n):
    return [{"index": i, "name": f"Fake GPU {i}", "memory_bytes": (i + 1) << 30, "pci_bus_id": None}
            for i in range(n)]


def test_discover_this_machine_starts_with_the_cpu():
    found = devices.discover()
    assert found[0].spec == "cpu" and found[0].kind == "cpu" and found[0].index is None
    assert found[0].name and found[0].usable
    assert len([d for d in found if d.kind == "gpu" and d.usable]) == backend.gpu_count()


def test_discover_uses_cupy_count_and_nvml_names(monkeypatch):
    monkeypatch.setattr(system, "gpu_list", lambda: _nvml_gpus(2))
    monkeypatch.setattr(backend, "gpu_count", lambda: 2)
    monkeypatch.setattr(system, "cuda_pci_bus_id", lambda i: None)
    found = devices.discover()
    assert [(d.spec, d.name, d.memory_bytes, d.usable) for d in found[1:]] == [
        ("gpu:0", "Fake GPU 0", 1 << 30, True), ("gpu:1", "Fake GPU 1", 2 << 30, True)]


def test_discover_matches_nvml_by_pci_bus_id(monkeypatch):
    gpus = _nvml_gpus(2)
    gpus[0]["pci_bus_id"], gpus[1]["pci_bus_id"] = "00000000:01:00.0", "00000000:02:00.0"
    monkeypatch.setattr(system, "gpu_list", lambda: gpus)
    monkeypatch.setattr(backend, "gpu_count", lambda: 1)  # e.g. CUDA_VISIBLE_DEVICES=1
    monkeypatch.setattr(system, "cuda_pci_bus_id", lambda i: "00000000:02:00.0")
    found = devices.discover()
    assert [(d.spec, d.name) for d in found[1:]] == [("gpu:0", "Fake GPU 1")]


def test_discover_lists_gpus_cupy_cannot_use(monkeypatch):
    monkeypatch.setattr(system, "gpu_list", lambda: _nvml_gpus(1))
    monkeypatch.setattr(backend, "gpu_count", lambda: 0)
    monkeypatch.setattr(backend, "cupy_available", lambda: False)
    monkeypatch.setattr(backend, "_cupy_import_error", ModuleNotFoundError("No module named 'cupy'", name="cupy"))
    found = devices.discover()
    assert len(found) == 2 and not found[1].usable and "cupy is not installed" in found[1].note
    hint = devices.gpu_hint()
    assert hint.startswith("NVML sees 1 GPU(s) but cupy is not installed")
    with pytest.raises(DeviceSpecError, match="gpu:0 not found; this machine has: cpu .*; NVML sees 1 GPU"):
        devices.parse_specs("gpu:0", backend.gpu_count(), hint=hint)


def test_gpu_hint_none_when_nothing_is_amiss():
    assert devices.gpu_hint(nvml_count=0, cuda_count=0) is None
    assert devices.gpu_hint(nvml_count=2, cuda_count=2) is None


@pytest.mark.gpu
def test_discover_finds_the_gpus_cupy_sees():
    n = backend.gpu_count()
    gpus = [d for d in devices.discover() if d.kind == "gpu"]
    assert [d.spec for d in gpus] == [f"gpu:{i}" for i in range(n)] and all(d.usable for d in gpus)
    assert _specs("all", n)[:2] == ["cpu", "gpu:0"]
