"""Check the figures of a GPU acceptance run (a step of gpu_acceptance.sh): numerics, verdicts, energy, memory.

Usage: python benchmarks/acceptance_checks.py RESULTS_DIR

Reads the newest run under RESULTS_DIR (a ``benchbench run --device all``) and prints one line per
check, then ``NCCL and data parallel: ...`` saying whether they were exercised. Exit 0 when every
check holds, 1 when one fails, 2 for a usage error. The checks:
- loss curves: each workload's GPU cell starts where its CPU cell starts (same seed and data) and
  ends within 5% of it: the GPU computes the same training;
- interference: every cell reads ``quiet`` (on the simulated GPUs the host is a shared test machine:
  reported, not failed);
- energy: a GPU cell's mean power over its timed steps lies in (0, power limit]; samples/J agrees
  with samples/s (median step) over watts within 15% (mean against median step);
- memory: the pool's peak is positive and at most NVML's figure and the GPU's memory;
- TF32 off in every GPU cell (the default the figures assume).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path


def _newest_run(results_dir: Path) -> dict | None:
    files = sorted(results_dir.rglob("*.json"), key=lambda p: p.stat().st_mtime)
    for f in reversed(files):
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("cells"), list):
            return doc
    return None


def _curves_agree(cpu: list, gpu: list) -> tuple[bool, str]:
    if not cpu or not gpu or None in cpu[:1] + gpu[:1]:
        return False, "no loss curve"
    first = abs(gpu[0] - cpu[0]) <= 1e-3 * max(abs(cpu[0]), 1e-6)
    n = min(len(cpu), len(gpu))
    last = abs(gpu[n - 1] - cpu[n - 1]) <= 0.05 * max(abs(cpu[n - 1]), 1e-6)
    return first and last, f"first loss cpu {cpu[0]:.6g} gpu {gpu[0]:.6g}, step {n}: cpu {cpu[n - 1]:.6g} gpu {gpu[n - 1]:.6g}"


def check(results_dir) -> tuple[bool, list[str]]:
    """``(every check holds, report lines)`` for the newest run under ``results_dir``."""
    run = _newest_run(Path(results_dir))
    if run is None:
        return False, ["no results file"]
    machine = run.get("machine") or {}
    simulated = bool(machine.get("simulated_gpus"))
    limits = {g.get("index"): g.get("power_limit_w") for g in machine.get("gpus") or []}
    cells = [c for c in run["cells"] if c.get("status") == "ok"]
    ok, lines = True, []

    def say(good: bool, text: str, soft: bool = False) -> None:
        nonlocal ok
        ok = ok and (good or soft)
        lines.append(f"{'ok  ' if good else ('note' if soft else 'FAIL')}  {text}")

    by = {(c.get("workload"), c.get("device")): c for c in cells}
    for (workload, device), c in sorted(by.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        if c.get("device_kind") != "gpu":
            continue
        cpu = by.get((workload, "cpu"))
        if cpu is not None and (c.get("n_devices") or 1) == 1:
            good, text = _curves_agree(cpu.get("loss_curve") or [], c.get("loss_curve") or [])
            say(good, f"loss curve {workload} {device} vs cpu: {text}")
        e = c.get("energy") or {}
        watts, limit = e.get("watts"), limits.get((c.get("indices") or [0])[0])
        if watts is not None:
            per_rank = watts / max(1, int(c.get("n_devices") or 1))
            say(0 < per_rank <= (limit or math.inf) * 1.05, f"power {workload} {device}: {per_rank:.1f} W per GPU "
                f"(limit {limit} W)")
            sps = (c.get("stats") or {}).get("samples_per_s", {})
            sps = sps.get("median") if isinstance(sps, dict) else sps
            if e.get("samples_per_joule") and sps and e.get("window_s"):
                # samples/J over the steps = samples/s over the steps / W; the median step is close to the mean
                say(abs(e["samples_per_joule"] * watts / sps - 1) <= 0.15 or simulated,
                    f"samples/J {workload} {device}: {e['samples_per_joule']:.4g} vs samples/s / W "
                    f"{sps / watts:.4g}", soft=simulated)
        mem = c.get("memory") or {}
        pool, nvml = mem.get("pool_peak_bytes"), mem.get("peak_device_bytes")
        if pool is not None:
            total = max((g.get("memory_bytes") or 0 for g in machine.get("gpus") or []), default=0) or math.inf
            say(0 < pool <= (nvml if nvml is not None else math.inf) and pool <= total,
                f"memory {workload} {device}: pool peak {pool:,} B, NVML {nvml:,} B" if nvml is not None
                else f"memory {workload} {device}: pool peak {pool:,} B")
        tf32 = c.get("tf32") or {}
        say(tf32.get("enabled") is False, f"TF32 {workload} {device}: {'off' if tf32.get('enabled') is False else tf32}")
    for c in cells:
        inter = c.get("interference") or {}
        if inter.get("verdict") != "quiet":
            say(False, f"interference {c.get('workload')} {c.get('device')}: {inter.get('verdict')} "
                       f"({'; '.join(inter.get('reasons') or [])})", soft=simulated)
    quiet = sum((c.get("interference") or {}).get("verdict") == "quiet" for c in cells)
    lines.append(f"interference: {quiet} of {len(cells)} cells quiet")
    dp = [c for c in cells if c.get("device_kind") == "gpu" and (c.get("n_devices") or 1) > 1]
    gpus = len(machine.get("gpus") or [])
    if dp:
        lines.append(f"NCCL and data parallel: exercised ({len(dp)} cells on up to "
                     f"{max(c.get('n_devices') or 1 for c in dp)} GPUs)")
    else:
        lines.append(f"NCCL and data parallel: NOT exercised ({gpus} GPU{'s' if gpus != 1 else ''}: no data-parallel "
                     "GPU cell ran; run on a machine with two or more GPUs to test them)")
    if not any(c.get("device_kind") == "gpu" for c in cells):
        say(False, "no GPU cell finished")
    return ok, lines


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python benchmarks/acceptance_checks.py RESULTS_DIR", file=sys.stderr)
        return 2
    ok, lines = check(argv[0])
    print("\n".join(lines))
    print("acceptance checks:", "pass" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
