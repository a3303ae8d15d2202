"""Check that the deterministic repeats of a run are bit-identical (a step of gpu_acceptance.sh).

Usage: python benchmarks/acceptance_repeats.py RESULTS_DIR

Reads the run(s) under RESULTS_DIR, prints one line per workload x device with two or more
finished deterministic repeats, and exits 0 when every such group has identical weight and
loss-curve hashes, 1 when one differs or no group has two finished repeats, or when GPU cells
ran no deterministic-only path (then identical repeats prove nothing about the mode).
"""
from __future__ import annotations

import sys
from pathlib import Path


def check(results_dir) -> tuple[bool, list[str]]:
    """``(all bit-identical, report lines)`` for the deterministic repeats under ``results_dir``."""
    from benchbench.reporting.determinism import determinism_rows
    from benchbench.reporting.runs import resolve_runs

    runs = resolve_runs(None, Path(results_dir))
    rows = [r for r in determinism_rows(runs) if r["deterministic"]]
    lines = [f"{r['workload']} on {r['device']}: {r['repeats']} repeats, "
             f"{'bit-identical' if r['bit_identical'] else 'DIFFERENT'} "
             f"(distinct weights: {r['distinct_weights']}, final-loss spread: {r['loss_spread']})" for r in rows]
    ok = bool(rows) and all(r["bit_identical"] for r in rows if r["repeats"] >= 2) and \
        any(r["repeats"] >= 2 for r in rows)
    if not any(r["repeats"] >= 2 for r in rows):
        lines.append("no workload has two finished deterministic repeats")
    # On a GPU the check means something only where the deterministic path ran (else the repeats
    # would be identical with or without the flag).
    gpu = [c for run in runs for c in run.cells if c.get("device_kind") == "gpu" and c.get("status") == "ok"]
    if gpu:
        ran = sum(sum(((c.get("deterministic_mode") or {}).get("paths") or {}).values()) for c in gpu)
        differs = any((c.get("deterministic_mode") or {}).get("differs") for c in gpu)
        lines.append(f"deterministic-only path calls in the GPU cells: {ran}")
        if not differs:
            ok = False
            lines.append("the deterministic mode changed nothing in these GPU cells: the check proves nothing")
    return ok, lines


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python benchmarks/acceptance_repeats.py RESULTS_DIR", file=sys.stderr)
        return 2
    ok, lines = check(argv[0])
    print("\n".join(lines))
    print("deterministic repeats bit-identical:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
