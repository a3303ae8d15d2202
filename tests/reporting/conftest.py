"""Crafted results files (schema version 1) for the reporting tests.

Machine ``alpha`` has a CPU and four GPUs: the MLP ran on the CPU, on two single GPUs and data
parallel over 2 and 4 GPUs (strong scaling, with all-reduce phases); the CNN ran on the CPU on
synthetic data and failed on the GPU with a reason that carries markup; the LSTM ran on the CPU.
Machine ``beta`` has a CPU and one GPU, other library versions, and no LSTM result.
"""
import copy
import json
from pathlib import Path

import numpy as np
import pytest

EVIL = "<script>alert('x')</script>"


def _summary(samples):
    a = np.asarray(samples, dtype=np.float64)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    rng = np.random.default_rng(0)
    boot = np.median(rng.choice(a, size=(200, a.size)), axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"n": int(a.size), "median": float(med), "iqr": float(q3 - q1), "q1": float(q1), "q3": float(q3),
            "ci_low": float(lo), "ci_high": float(hi), "noisy": bool((q3 - q1) / med > 0.1)}


def machine(mid, gpus, numpy_version="2.2.1", cupy_version="13.3.0"):
    return {
        "id": mid, "hostname": mid.split("-")[0], "os": "Linux", "python": "3.11.7",
        "cpu": {"model": "Test CPU 9000", "arch": "x86_64", "cores_physical": 8, "cores_logical": 16,
                "flags": ["avx2"], "max_mhz": 4000.0},
        "blas": {"library": "openblas", "version": "0.3.31", "kernel": "Haswell", "threads": 8, "warning": None},
        "memory_bytes": 64 << 30,
        "env": {"OPENBLAS_CORETYPE": None, "OMP_NUM_THREADS": None, "MALLOC_ARENA_MAX": None},
        "gpus": [{"index": i, "name": "Test GPU", "memory_bytes": 16 << 30, "driver": "550.1", "cuda": "12.4",
                  "power_limit_w": 300.0, "clocks_mhz": {"sm_max": 2000, "mem_max": 9000},
                  "pcie": {"gen": 4, "width": 16}, "processes": 0} for i in range(gpus)],
        "versions": {"benchbench": "0.1.0", "numpy": numpy_version, "cupy": cupy_version if gpus else None,
                     "mpi4py": "4.0.0", "nccl": None},
    }


def cell(workload, device, step, *, seed=0, status="ok", reason=None, n=40, batch=100, phases=None,
         source="real", note="", repeat=0, quality=None, epochs=0, energy=None, params=None,
         scaling=None, flops=1.0e6):
    """A schema-valid cell whose steps scatter 1% around ``step`` seconds."""
    if device == "cpu" or device.startswith("cpu:"):
        kind = "cpu"
        n_dev = int(device.split("dp")[1]) if ":dp" in device else 1
    else:
        kind = "gpu"
        n_dev = len(device.split(":")[1].split(","))
    rng = np.random.default_rng(seed)
    ok = status == "ok"
    steps = (step * (1 + 0.01 * rng.standard_normal(n))).tolist() if ok else []
    phase_samples = {k: [] for k in ("data", "forward", "backward", "update", "allreduce")}
    for name, value in (phases or {}).items():
        phase_samples[name] = (value * (1 + 0.01 * rng.standard_normal(n))).tolist() if ok else []
    sps = [batch / s for s in steps]
    log = []
    for e in range(1, epochs + 1):
        log.append({"epoch": e, "main/loss": 1.0 / e, "validation/main/loss": 1.1 / e,
                    "main/accuracy": 1 - 0.1 / e, "validation/main/accuracy": 1 - 0.12 / e,
                    "elapsed_time": e * step * 600})
    return {
        "id": f"{workload}/{device}/r{repeat}", "workload": workload, "params": params or {},
        "device": device, "device_kind": kind, "n_devices": n_dev,
        "scaling": scaling or ("strong" if n_dev > 1 else "none"),
        "communicator": "single" if n_dev == 1 else ("nccl" if kind == "gpu" else "mpi"),
        "repeat": repeat, "profile": "quick", "status": status, "reason": reason,
        "data": {"dataset": workload.split("_")[-1], "source": source, "note": note},
        "batch_size": batch, "per_device_batch": batch // n_dev,
        "flops_per_sample": {"forward": flops / 3, "train_step": flops},
        "dtype": "float32", "deterministic": False,
        "timing": {"warmup_steps": 3, "step_s": steps, "phases_s": phase_samples},
        "stats": ({"step_s": _summary(steps), "samples_per_s": _summary(sps),
                   "gflops": flops * float(np.median(sps)) / 1e9} if ok else {}),
        "quality": quality or {"metric": "accuracy", "value": None, "target": 0.98, "target_source": "Chainer example",
                               "reached": False, "time_to_target_s": None, "higher_is_better": True},
        "epoch_log": log,
        "memory": {"peak_host_bytes": 300 << 20, "peak_device_bytes": (200 << 20) if kind == "gpu" else None},
        "energy": energy or {"joules": None, "joules_per_epoch": None, "source": None},
        "hashes": {"weights": "0" * 64, "loss_curve": "0" * 64},
        "started": "2026-11-23T10:51:00Z", "duration_s": 10.0,
    }


def run_doc(mid, cells, *, gpus=4, run_id="20261123T105100Z-3f9c2a", created="2026-11-23T10:51:00Z", **versions):
    return {
        "schema": "benchbench.results", "schema_version": 1, "run_id": run_id,
        "created": created, "updated": created, "status": "complete",
        "command": "benchbench run --device all", "machine": machine(mid, gpus, **versions),
        "plan": {"profile": "quick", "devices": sorted({c["device"] for c in cells}),
                 "workloads": sorted({c["workload"] for c in cells}), "repeat": 1, "seed": 0, "data": "auto",
                 "deterministic": False, "dtype": "float32", "config_file": "bench.yaml", "config": {}},
        "cells": cells,
    }


def mlp_quality(reached, tta):
    return {"metric": "accuracy", "value": 0.9812 if reached else 0.95, "target": 0.98,
            "target_source": "Chainer example", "reached": reached, "time_to_target_s": tta, "higher_is_better": True}


def alpha_cells():
    gpu_energy = {"joules": 2000.0, "joules_per_epoch": 450.0, "source": "nvml", "watts": 200.0, "window_s": 10.0}
    return [
        cell("mlp_mnist", "cpu", 0.05, seed=1, phases={"data": 0.002, "forward": 0.015, "backward": 0.028, "update": 0.005},
             quality=mlp_quality(True, 600.0), epochs=3),
        cell("mlp_mnist", "gpu:0", 0.002, seed=2, phases={"data": 0.0002, "forward": 0.0005, "backward": 0.001, "update": 0.0003},
             quality=mlp_quality(True, 30.0), epochs=3, energy=gpu_energy),
        cell("mlp_mnist", "gpu:1", 0.002, seed=3, quality=mlp_quality(True, 31.0), epochs=3, energy=gpu_energy),
        cell("mlp_mnist", "gpu:0,1", 0.00125, seed=4,
             phases={"data": 0.0001, "forward": 0.00025, "backward": 0.0005, "update": 0.00015, "allreduce": 0.00025},
             quality=mlp_quality(True, 20.0), epochs=3, energy=gpu_energy),
        cell("mlp_mnist", "gpu:0,1,2,3", 0.0008, seed=5,
             phases={"data": 0.00005, "forward": 0.000125, "backward": 0.00025, "update": 0.000075, "allreduce": 0.0003},
             quality=mlp_quality(False, None), epochs=3, energy=gpu_energy),
        cell("cnn_mnist", "cpu", 0.2, seed=6, source="synthetic", note="offline: synthetic MNIST-shaped data"),
        cell("cnn_mnist", "gpu:0", 0.0, status="oom", reason=f"CUDA out of memory {EVIL}"),
        cell("lstm_sine", "cpu", 0.004, seed=7, batch=20, source="generated",
             quality={"metric": "mse", "value": 0.002, "target": 0.01, "target_source": "stated",
                      "reached": True, "time_to_target_s": 12.0, "higher_is_better": False}),
    ]


def beta_cells():
    return [
        cell("mlp_mnist", "cpu", 0.1, seed=11),
        cell("mlp_mnist", "gpu:0", 0.002, seed=12, energy={"joules": 1000.0, "joules_per_epoch": 200.0, "source": "nvml", "watts": 125.0, "window_s": 8.0}),
        cell("cnn_mnist", "cpu", 0.4, seed=13),
    ]


def write(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory) -> Path:
    """A results folder with one run of ``alpha`` and one of ``beta`` (beta is the newer)."""
    root = tmp_path_factory.mktemp("results")
    write(root / "alpha-1a2b3c4d" / "20261123T105100Z-3f9c2a.json", run_doc("alpha-1a2b3c4d", alpha_cells()))
    beta = run_doc("beta-5e6f7a8b", beta_cells(), gpus=1, run_id="20261124T090000Z-aaaaaa",
                   created="2026-11-24T09:00:00Z", numpy_version="2.1.0", cupy_version="13.1.0")
    path = write(root / "beta-5e6f7a8b" / "20261124T090000Z-aaaaaa.json", beta)
    import os
    os.utime(path, (2_000_000_000, 2_000_000_000))
    return root


@pytest.fixture(scope="session")
def alpha_path(results_dir) -> Path:
    return results_dir / "alpha-1a2b3c4d" / "20261123T105100Z-3f9c2a.json"


@pytest.fixture(scope="session")
def beta_path(results_dir) -> Path:
    return results_dir / "beta-5e6f7a8b" / "20261124T090000Z-aaaaaa.json"


@pytest.fixture(scope="session")
def alpha_run(alpha_path):
    from benchbench.reporting.runs import load_run
    return load_run(alpha_path)


@pytest.fixture(scope="session")
def beta_run(beta_path):
    from benchbench.reporting.runs import load_run
    return load_run(beta_path)


@pytest.fixture
def alpha_doc():
    return copy.deepcopy(run_doc("alpha-1a2b3c4d", alpha_cells()))


@pytest.fixture(scope="session")
def build():
    """The builders above, for tests that craft their own files."""
    import types
    return types.SimpleNamespace(cell=cell, run_doc=run_doc, write=write, alpha_cells=alpha_cells,
                                 beta_cells=beta_cells, EVIL=EVIL)
