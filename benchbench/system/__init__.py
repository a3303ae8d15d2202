"""Machine fingerprint: CPU, BLAS and threads, memory, GPUs via NVML, performance settings, versions.

The parts live in submodules: ``cpu`` (CPU, BLAS, memory, performance
variables), ``nvml`` (GPU list and ``GpuMonitor``; the only importer of
``pynvml``) and ``library_versions`` (library versions). This module assembles them into
``fingerprint()``, derives ``machine_id`` and formats the block for ``benchbench
info``; it re-exports the public names of the parts.
"""
from __future__ import annotations

import hashlib
import os
import platform
import re
import socket

from benchbench.system.cpu import (ISA_FLAGS, PERF_ENV_VARS, blas_info, blas_warning, cpu_info,
                                   memory_bytes)
from benchbench.system.cpu_power import RaplCounter, cpu_energy, cpu_frequency
from benchbench.system.nvml import GpuMonitor, cuda_pci_bus_id, gpu_list, gpu_topology
from benchbench.system.library_versions import versions

__all__ = ["ISA_FLAGS", "PERF_ENV_VARS", "GpuMonitor", "RaplCounter", "blas_info", "cpu_energy", "cpu_frequency", "default_label", "blas_warning", "cpu_info",
           "cuda_pci_bus_id", "fingerprint", "format_fingerprint", "gpu_list", "gpu_topology", "machine_id", "memory_bytes",
           "versions"]

def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")
    return slug or "host"


def machine_id(fp: dict) -> str:
    """A stable id for the hardware: ``<hostname slug>-<8 hex>``, the hex a SHA-256 of CPU model and GPUs.

    Raises:
        ValueError: ``fp`` is not a fingerprint dict.
    """
    if not isinstance(fp, dict) or not isinstance(fp.get("cpu"), dict):
        raise ValueError(f"machine_id: fp must be a fingerprint() dict, got {type(fp).__name__}")
    parts = [str(fp["cpu"].get("model", ""))] + (["simulated GPUs"] if fp.get("simulated_gpus") else [])
    for gpu in fp.get("gpus") or ():
        parts += [str(gpu.get("name", "")), str(gpu.get("uuid") or "")]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:8]
    return f"{_slug(str(fp.get('hostname', '')))}-{digest}"


def _gpus_simulated() -> bool:
    from benchbench.core import backend

    return backend.gpu_simulated()


def fingerprint() -> dict:
    """The machine block of a results file (see ``results/README.md``).

    Never raises for missing hardware or libraries: unknown fields are None, and a
    machine without NVML has an empty ``gpus`` list.
    """
    cpu = cpu_info()
    env = {name: os.environ.get(name) for name in PERF_ENV_VARS}
    fp = {
        "id": None,
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "blas": blas_info(cpu, os.environ),
        "memory_bytes": memory_bytes(),
        "env": env,
        "gpus": gpu_list(),
        "gpu_topology": None,
        "simulated_gpus": _gpus_simulated(),
        "versions": versions(),
        "cpu_frequency": cpu_frequency(),
        "cpu_energy": cpu_energy(),
    }
    fp["gpu_topology"] = gpu_topology(fp["gpus"]) if len(fp["gpus"]) > 1 else []
    fp["id"] = machine_id(fp)
    fp["label"] = default_label(fp)
    return fp


def _short_model(name: str) -> str:
    name = re.sub(r"\((R|TM|tm|r)\)|\bCPU\b|\bProcessor\b|@.*$|\bNVIDIA\b|\bIntel\b|(?<!-)\bCore\b|\bGeForce\b", "", name)
    name = re.sub(r"\b(Xeon|EPYC)\s+(Platinum|Gold|Silver|Bronze)\s+", r"\1 ", name)
    return re.sub(r"\s+", " ", name).strip(" -") or "unknown"


def default_label(fp: dict) -> str:
    """A human name for the machine from its models, e.g. ``2× H100 80GB HBM3 / Xeon 8480+``."""
    cpu = _short_model(str((fp.get("cpu") or {}).get("model") or "unknown CPU"))
    names = [_short_model(str(g.get("name", "?"))) for g in fp.get("gpus") or []]
    if fp.get("simulated_gpus") and names:
        names = ["simulated GPU"] * len(names)
    gpus = " + ".join(f"{names.count(n)}× {n}" for n in dict.fromkeys(names))
    return f"{gpus} / {cpu}" if gpus else cpu


def _simulated_note() -> str:
    from benchbench.core import backend

    return backend.SIMULATED_NOTE


def _gib(n) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def format_fingerprint(fp: dict) -> str:
    """The fingerprint as readable lines, for ``benchbench info``."""
    if not isinstance(fp, dict) or not isinstance(fp.get("cpu"), dict):
        raise ValueError(f"format_fingerprint: fp must be a fingerprint() dict, got {type(fp).__name__}")
    cpu, blas = fp["cpu"], fp.get("blas") or {}
    mhz = f", max {cpu['max_mhz']:.0f} MHz" if cpu.get("max_mhz") else ""
    lines = [] if not fp.get("simulated_gpus") else [f"WARNING   {_simulated_note()}"]
    lines += [
        f"machine   {fp.get('id')} (host {fp.get('hostname')}), label {fp.get('label') or '—'}",
        f"os        {fp.get('os')}, Python {fp.get('python')}",
        f"cpu       {cpu.get('model')} ({cpu.get('arch')}), {cpu.get('cores_physical') or '?'} physical / "
        f"{cpu.get('cores_logical') or '?'} logical cores{mhz}",
        f"          ISA: {' '.join(cpu.get('flags') or []) or 'none of interest'}",
    ]
    if blas.get("library"):
        lines.append(f"blas      {blas['library']} {blas.get('version') or ''}"
                     f"{', kernel ' + blas['kernel'] if blas.get('kernel') else ''}, {blas.get('threads')} threads")
    else:
        lines.append("blas      not detected")
    if blas.get("warning"):
        lines.append(f"          warning: {blas['warning']}")
    freq = fp.get("cpu_frequency") or {}
    if freq:
        def fact(v, unit=""):
            return "unknown" if v is None else (("on" if v else "off") if isinstance(v, bool) else f"{v:g}{unit}")
        lines.append(f"cpu freq  governor {freq.get('governor') or 'unknown'}, turbo {fact(freq.get('turbo'))}, "
                     f"current {fact(freq.get('cur_mhz'), ' MHz')}, max {fact(freq.get('max_mhz'), ' MHz')}, "
                     f"NUMA nodes {fact(freq.get('numa_nodes'))}, SMT {fact(freq.get('smt'))}")
        lines += [f"          warning: {w}" for w in freq.get("warnings") or []]
    energy = fp.get("cpu_energy") or {}
    if energy:
        lines.append("cpu energy " + (f"RAPL readable ({', '.join(energy.get('domains') or [])})" if energy.get("available")
                                      else f"not measured: {energy.get('reason')}"))
    lines.append(f"memory    {_gib(fp.get('memory_bytes'))}")
    gpus = fp.get("gpus") or []
    if not gpus:
        lines.append("gpus      none found (NVML reports no NVIDIA GPU)")
    for i, g in enumerate(gpus):
        head = "gpus      " if i == 0 else "          "
        clocks, pcie = g.get("clocks_mhz") or {}, g.get("pcie") or {}
        parts = [f"[{g.get('index')}] {g.get('name')}", _gib(g.get("memory_bytes")),
                 f"driver {g.get('driver')}", f"CUDA {g.get('cuda')}"]
        if g.get("power_limit_w"):
            parts.append(f"{g['power_limit_w']:.0f} W")
        if clocks.get("sm_max"):
            parts.append(f"SM {clocks['sm_max']} MHz")
        if pcie.get("gen"):
            parts.append(f"PCIe gen{pcie['gen']} x{pcie.get('width')}")
        now = g.get("clocks_current_mhz") or {}
        if now.get("sm"):
            parts.append(f"SM now {now['sm']} MHz")
        if g.get("persistence_mode") is not None:
            parts.append(f"persistence {'on' if g['persistence_mode'] else 'off'}")
        cur = g.get("pcie_current") or {}
        if cur.get("gen") and (cur.get("gen"), cur.get("width")) != (pcie.get("gen"), pcie.get("width")):
            parts.append(f"PCIe link now gen{cur['gen']} x{cur.get('width')}")
        if (g.get("nvlink") or {}).get("active_links"):
            parts.append(f"{g['nvlink']['active_links']} NVLinks")
        if g.get("processes"):
            parts.append(f"{g['processes']} other process(es)")
        lines.append(head + ", ".join(parts))
    if fp.get("gpu_topology"):
        lines.append("gpu links " + ", ".join(f"{p['a']}-{p['b']}: {p['link'] or 'unknown'}" for p in fp["gpu_topology"]))
    env = {k: v for k, v in (fp.get("env") or {}).items() if v is not None}
    lines.append("env       " + (" ".join(f"{k}={v}" for k, v in env.items()) or "no performance variables set"))
    vers = {k: v for k, v in (fp.get("versions") or {}).items() if v is not None}
    lines.append("versions  " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    return "\n".join(lines)
