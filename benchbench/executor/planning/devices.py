"""Devices of this machine and the device specs that name what a cell runs on.

Specs (case-insensitive; several separated by commas or spaces on the command line):

* ``cpu``: the CPU, one process.
* ``cpu:dpN``: data parallel over N >= 2 CPU processes (MPI).
* ``gpu:N``: GPU N alone.
* ``gpu:N,M,...``: data parallel over those GPUs (NCCL); ``gpu:all`` over every GPU.
* ``all``: the CPU, each GPU alone, then data parallel over the first 2, 4, 8 ... GPUs and
  over all N when N is not a power of two. CPU data parallel only runs when asked for.

A bare number after a GPU spec continues its list, so ``cpu,gpu:0,1`` is ``cpu`` and ``gpu:0,1``.
"""
from __future__ import annotations

import dataclasses
import re

from benchbench import system
from benchbench.core import backend
from benchbench.errors import UserError

VALID_FORMS = "cpu, cpu:dpN (N >= 2 CPU processes), gpu:N, gpu:N,M,... (data parallel), gpu:all, all"

_CPU_DP = re.compile(r"^cpu:dp(\d+)$")
_GPU = re.compile(r"^gpu:(all|\d+(?:,\d+)*)$")


class DeviceSpecError(UserError):
    """A device spec that is malformed or names a device this machine does not have."""


@dataclasses.dataclass(frozen=True)
class DeviceSpec:
    """What one cell runs on.

    Attributes:
        spec: the canonical spec, e.g. ``cpu``, ``cpu:dp2``, ``gpu:0``, ``gpu:0,1``.
        kind: ``cpu`` or ``gpu``.
        indices: the GPU indices (``()`` for the CPU).
        n_ranks: the number of processes (1 for a single device).
        communicator: ``single``, ``mpi`` (CPU data parallel) or ``nccl`` (GPU data parallel).
        named: the user named this spec (False when only ``all`` brought it in); not part of equality.
    """

    spec: str
    kind: str
    indices: tuple[int, ...]
    n_ranks: int
    communicator: str
    named: bool = dataclasses.field(default=True, compare=False)

    @property
    def data_parallel(self) -> bool:
        """True when the cell runs on more than one process."""
        return self.n_ranks > 1

    def __str__(self) -> str:
        return self.spec


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """A device found on this machine.

    Attributes:
        spec: ``cpu`` or ``gpu:N`` (N the CUDA index cupy uses).
        kind: ``cpu`` or ``gpu``.
        index: the GPU index, or None for the CPU.
        name: the model name.
        memory_bytes: its memory (host memory for the CPU), None where unknown.
        usable: whether benchbench can run on it (a GPU needs cupy and a working CUDA).
        note: why a device is not usable, or None.
    """

    spec: str
    kind: str
    index: int | None
    name: str
    memory_bytes: int | None
    usable: bool = True
    note: str | None = None


def cpu_spec() -> DeviceSpec:
    """The spec of the CPU alone."""
    return DeviceSpec("cpu", "cpu", (), 1, "single")


def cpu_dp_spec(n: int) -> DeviceSpec:
    """The spec of data parallel over ``n`` >= 2 CPU processes."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise DeviceSpecError(f"cpu:dp{n}: data parallel needs at least 2 CPU processes; use cpu for one")
    return DeviceSpec(f"cpu:dp{n}", "cpu", (), n, "mpi")


def gpu_spec(indices) -> DeviceSpec:
    """The spec of one GPU (``gpu:N``) or data parallel over several (``gpu:N,M``, sorted)."""
    idx = tuple(sorted(int(i) for i in indices))
    if not idx:
        raise DeviceSpecError("gpu: at least one GPU index is needed, e.g. gpu:0")
    if len(set(idx)) != len(idx):
        raise DeviceSpecError(f"gpu:{','.join(map(str, indices))}: a GPU is listed twice")
    text = "gpu:" + ",".join(str(i) for i in idx)
    if len(idx) == 1:
        return DeviceSpec(text, "gpu", idx, 1, "single")
    return DeviceSpec(text, "gpu", idx, len(idx), "nccl")


def expand_all(n_gpus: int) -> list[DeviceSpec]:
    """What ``all`` means on a machine with ``n_gpus`` GPUs.

    The CPU, each GPU alone, then data parallel over the first 2, 4, 8 ... GPUs, and
    over all of them when ``n_gpus`` is not a power of two.
    """
    _check_n_gpus("expand_all", n_gpus)
    specs = [cpu_spec()] + [gpu_spec([i]) for i in range(n_gpus)]
    k = 2
    while k <= n_gpus:
        specs.append(gpu_spec(range(k)))
        k *= 2
    if n_gpus > 2 and n_gpus & (n_gpus - 1):
        specs.append(gpu_spec(range(n_gpus)))
    return specs


def machine_devices_text(n_gpus: int) -> str:
    """The devices a machine with ``n_gpus`` GPUs has, for error messages."""
    if n_gpus == 0:
        return "cpu (no GPU found)"
    return ", ".join(["cpu"] + [f"gpu:{i}" for i in range(n_gpus)])


def _check_n_gpus(func: str, n_gpus) -> None:
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or n_gpus < 0:
        raise TypeError(f"{func}: n_gpus must be an integer >= 0, got {n_gpus!r}")


def _tokens(text: str) -> list[str]:
    """Split on commas and spaces, gluing bare numbers to the GPU list before them."""
    tokens: list[str] = []
    for part in re.split(r"[\s,]+", text.strip().lower()):
        if not part:
            continue
        if part.isdigit() and tokens and re.match(r"^gpu:\d+(,\d+)*$", tokens[-1]):
            tokens[-1] += "," + part
        else:
            tokens.append(part)
    return tokens


def _parse_token(token: str, n_gpus: int, hint: str | None, notices: list[str]) -> list[DeviceSpec]:
    def missing(what: str) -> DeviceSpecError:
        extra = f"; {hint}" if hint else ""
        return DeviceSpecError(f"{what}; this machine has: {machine_devices_text(n_gpus)}{extra}")

    if token == "all":
        if n_gpus == 0:
            notices.append("--device all: no GPU found; running on the CPU only")
        return expand_all(n_gpus)
    if token == "cpu":
        return [cpu_spec()]
    m = _CPU_DP.match(token)
    if m:
        return [cpu_dp_spec(int(m.group(1)))]
    m = _GPU.match(token)
    if m is None:
        raise DeviceSpecError(f"device spec {token!r} is not valid; valid forms: {VALID_FORMS}")
    if m.group(1) == "all":
        if n_gpus == 0:
            raise missing("gpu:all: no GPU found")
        return [gpu_spec(range(n_gpus))]
    idx = [int(i) for i in m.group(1).split(",")]
    if len(set(idx)) != len(idx):
        raise DeviceSpecError(f"{token}: a GPU is listed twice")
    absent = [i for i in idx if i >= n_gpus]
    if absent:
        what = ", ".join(f"gpu:{i}" for i in absent)
        raise missing(f"{what} not found" if len(idx) == 1 else f"{what} not found (in {token})")
    return [gpu_spec(idx)]


def parse_specs(text_or_list, n_gpus: int, *, hint: str | None = None) -> tuple[list[DeviceSpec], list[str]]:
    """Parse device specs against a machine with ``n_gpus`` GPUs.

    Args:
        text_or_list: a string (``"cpu gpu:0,1"``, ``"all"``) or a list of such strings
            (a list item never continues the GPU list of the item before it).
        n_gpus: the number of GPUs benchbench can use (``backend.gpu_count()``).
        hint: an extra clause for "not found" errors, e.g. from :func:`gpu_hint`.

    Returns:
        ``(specs, notices)``: the specs in order without repeats, and one-line notices
        for the user (e.g. ``all`` on a machine without GPUs).

    Raises:
        DeviceSpecError: a malformed spec (the message lists the valid forms), or a GPU
            that is not there (the message lists the devices there are).
        TypeError: the arguments have the wrong types.

    Example:
        >>> [s.spec for s in parse_specs("all", 3)[0]]
        ['cpu', 'gpu:0', 'gpu:1', 'gpu:2', 'gpu:0,1', 'gpu:0,1,2']
    """
    _check_n_gpus("parse_specs", n_gpus)
    if isinstance(text_or_list, str):
        items = [text_or_list]
    elif isinstance(text_or_list, (list, tuple)) and all(isinstance(t, str) for t in text_or_list):
        items = list(text_or_list)
    else:
        raise TypeError(f"parse_specs: text_or_list must be a string or a list of strings, got {text_or_list!r}")
    specs: list[DeviceSpec] = []
    notices: list[str] = []
    for item in items:
        for token in _tokens(item):
            for spec in _parse_token(token, n_gpus, hint, notices):
                spec = dataclasses.replace(spec, named=token != "all")
                if spec not in specs:
                    specs.append(spec)
                elif spec.named:  # named as well as brought in by ``all``: named
                    specs[specs.index(spec)] = spec
    if not specs:
        raise DeviceSpecError(f"no device spec given; valid forms: {VALID_FORMS}")
    return specs, notices


def discover() -> list[DeviceInfo]:
    """The CPU and every NVIDIA GPU of this machine.

    cupy (``backend.gpu_count()``) decides which GPUs benchbench can use; NVML adds names,
    memory, and GPUs that cupy cannot use (listed with ``usable=False`` and a note).
    """
    fp_cpu = system.cpu_info()
    devices = [DeviceInfo("cpu", "cpu", None, fp_cpu["model"], system.memory_bytes())]
    nvml = system.gpu_list()
    n_cuda = backend.gpu_count()
    by_bus = {(g.get("pci_bus_id") or "").lower(): g for g in nvml if g.get("pci_bus_id")}
    used = set()
    for i in range(n_cuda):
        entry = _cuda_nvml_match(i, nvml, by_bus)
        name, mem = _cuda_name_memory(i)
        if entry is not None:
            used.add(entry["index"])
            name = entry.get("name") or name
            mem = entry.get("memory_bytes") or mem
        devices.append(DeviceInfo(f"gpu:{i}", "gpu", i, name or "unknown GPU", mem))
    if n_cuda == 0 and nvml:
        note = gpu_hint(nvml_count=len(nvml), cuda_count=0)
        for g in nvml:
            devices.append(DeviceInfo(f"gpu:{g['index']}", "gpu", g["index"], g.get("name") or "unknown GPU",
                                      g.get("memory_bytes"), usable=False, note=note))
    return devices


def gpu_hint(nvml_count: int | None = None, cuda_count: int | None = None) -> str | None:
    """A clause explaining why GPUs that NVML sees cannot be used, or None when nothing is amiss."""
    nvml_count = len(system.gpu_list()) if nvml_count is None else nvml_count
    cuda_count = backend.gpu_count() if cuda_count is None else cuda_count
    if nvml_count == 0 or cuda_count > 0:
        return None
    if not backend.cupy_available():
        return (f"NVML sees {nvml_count} GPU(s) but {backend.cupy_missing_text()}; "
                "install it with `pip install 'benchbench[gpu]'`")
    why = backend.cuda_unavailable_reason() or "CUDA reports none"
    return f"NVML sees {nvml_count} GPU(s) but {why}; check CUDA_VISIBLE_DEVICES and the driver"


def _cuda_nvml_match(i: int, nvml: list[dict], by_bus: dict) -> dict | None:
    bus = system.cuda_pci_bus_id(i)
    if bus and bus.lower() in by_bus:
        return by_bus[bus.lower()]
    return nvml[i] if i < len(nvml) else None


def _cuda_name_memory(i: int) -> tuple[str | None, int | None]:
    try:
        props = backend.cupy.cuda.runtime.getDeviceProperties(i)
        name = props.get("name")
        return (name.decode() if isinstance(name, bytes) else name), int(props.get("totalGlobalMem"))
    except Exception:
        return None, None
