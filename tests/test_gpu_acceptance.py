"""benchmarks/gpu_acceptance.sh: valid bash, every step listed with its time-out, a check that can fail."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_acceptance.sh"
STEPS = ["preflight", "warm-up", "info", "gpu-tests", "run-all", "train-step", "profile", "deterministic", "float16",
         "graphs", "checks", "bound", "launches"]


def _sh(*args, env=None, timeout=60):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHON": sys.executable, **(env or {})})


def test_the_script_is_valid_bash():
    proc = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("tiny", [False, True])
def test_dry_run_lists_every_step_with_a_time_out_and_runs_nothing(tmp_path, tiny):
    out = tmp_path / "out"
    proc = _sh("--dry-run", *(["--tiny"] if tiny else []), str(out))
    assert proc.returncode == 0, proc.stderr
    rows = re.findall(r"^(\S+)\s+(?:timeout\s+(\d+)s|skipped:)", proc.stdout, re.M)
    assert [name for name, _ in rows] == ["install"] + STEPS, proc.stdout  # install: only where needed
    limits = [int(t) for name, t in rows if t and name != "install"]
    assert all(t > 0 for t in limits)
    if not tiny:  # one H100/H200: the whole acceptance within 8 minutes, with room in a 10-minute limit
        assert sum(limits) <= 480 and "T_TOTAL=480" in SCRIPT.read_text(), limits
    assert "lstm_sine:embed --deterministic" in proc.stdout and "acceptance_checks.py" in proc.stdout
    assert 'pytest -m gpu or multi_gpu' in proc.stdout
    assert "run --config" in proc.stdout and "--device all" in proc.stdout and "--dtype float16" in proc.stdout
    # --tiny profiles LeNet5: under the simulated GPUs ResNet's interpreted kernels take minutes
    assert f"profile {'lenet5_cifar10' if tiny else 'resnet_cifar10'} --device gpu:0" in proc.stdout
    assert "--deterministic --repeat 2" in proc.stdout and "python3" in SCRIPT.read_text()
    assert not out.exists()


@pytest.mark.parametrize("args", [[], ["--bogus", "x"], ["a", "b"]])
def test_usage_errors(args):
    proc = _sh(*args)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def _load_repeats_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("acceptance_repeats", ROOT / "benchmarks" / "acceptance_repeats.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_repeat_check_passes_identical_repeats_and_fails_different_ones(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("workloads: [mlp_mnist:small]\ndevices: cpu\ndata: synthetic\nprofiles:\n  quick:\n"
                    "    warmup_steps: 0\n    steps: 2\n    val_batches: 1\n    min_time_s: 0\n")
    proc = subprocess.run([sys.executable, "-m", "benchbench", "run", "--config", str(plan), "--deterministic",
                           "--repeat", "2", "--output", str(tmp_path / "res")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    check = _load_repeats_module().check
    ok, lines = check(tmp_path / "res")
    assert ok and len(lines) == 1 and lines[0].endswith(" on cpu: 2 repeats, bit-identical (distinct weights: 1, "
                                                       "final-loss spread: 0.0)"), lines
    (run_file,) = list((tmp_path / "res").rglob("*.json"))
    run = json.loads(run_file.read_text())
    h = run["cells"][1]["hashes"]["weights"]
    run["cells"][1]["hashes"]["weights"] = ("0" if h[0] != "0" else "1") + h[1:]
    run_file.write_text(json.dumps(run))
    ok, lines = check(tmp_path / "res")
    assert not ok and "DIFFERENT" in lines[0], lines


@pytest.mark.simgpu
@pytest.mark.multi_gpu(2)
@pytest.mark.timeout(1200)
def test_tiny_acceptance_on_the_simulated_gpus(tmp_path):
    # About a minute and a half on a quiet machine; the script's own time-outs bound it.
    proc = _sh("--tiny", str(tmp_path), timeout=1500)
    summary = (tmp_path / "summary.txt").read_text()
    assert proc.returncode == 0, summary + proc.stdout[-3000:]
    assert "GPUs: simulated" in summary
    lines = summary.splitlines()
    for step in STEPS:
        assert re.search(rf"^{step}\s+(ok|skipped: no PyTorch)\s", summary, re.M), summary
    # One line per step, in the order the steps ran (written as each ended), then the NCCL verdict.
    assert [ln.split()[0] for ln in lines if ln.split() and ln.split()[0] in STEPS] == STEPS
    assert "NCCL and data parallel: exercised" in summary
    total = int(re.search(r"^total (\d+) s of (\d+) s", summary, re.M).group(1))
    assert total <= 900
    checks = (tmp_path / "checks.txt").read_text()
    assert "loss curve mlp_mnist:small gpu:0 vs cpu" in checks or "loss curve mlp_mnist gpu:0" in checks, checks
    assert "deterministic-only path calls in the GPU cells" in (tmp_path / "deterministic.txt").read_text()


def test_the_checks_fail_an_implausible_run(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("acceptance_checks", ROOT / "benchmarks" / "acceptance_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cell = {"status": "ok", "workload": "w", "device": "gpu:0", "device_kind": "gpu", "indices": [0], "n_devices": 1,
            "loss_curve": [2.0, 1.0], "interference": {"verdict": "quiet"}, "tf32": {"enabled": False},
            "energy": {"watts": 250.0}, "memory": {"pool_peak_bytes": 10, "peak_device_bytes": 100}}
    cpu = dict(cell, device="cpu", device_kind="cpu", loss_curve=[2.0, 1.01], energy={}, memory={}, tf32=None)
    machine = {"simulated_gpus": False, "gpus": [{"index": 0, "power_limit_w": 700.0, "memory_bytes": 1000}]}
    (tmp_path / "r.json").write_text(json.dumps({"machine": machine, "cells": [cpu, cell]}))
    ok, lines = module.check(tmp_path)
    assert ok, lines
    assert any("NOT exercised" in ln for ln in lines)  # one GPU: says so
    for bad in ({"loss_curve": [2.5, 1.0]}, {"energy": {"watts": 900.0}}, {"memory": {"pool_peak_bytes": 200,
                "peak_device_bytes": 100}}, {"tf32": {"enabled": True}}, {"interference": {"verdict": "contended"}}):
        (tmp_path / "r.json").write_text(json.dumps({"machine": machine, "cells": [cpu, dict(cell, **bad)]}))
        ok, lines = module.check(tmp_path)
        assert not ok, (bad, lines)
