"""Print eager against CUDA-graph throughput on gpu:0 (a step of gpu_acceptance.sh).

Usage: python benchmarks/acceptance_graphs.py GRAPH_RESULTS_DIR EAGER_RESULTS_DIR

GRAPH_RESULTS_DIR holds a run whose GPU cells replayed CUDA graphs (``--gpu-graphs auto`` or ``on``),
EAGER_RESULTS_DIR a run of the same plan with ``--gpu-graphs off``. One line per workload: eager and
graph samples/s on gpu:0, their ratio, the host time of one graph launch beside the GPU time of a
step, and whether the graph was used (or why not: its self-check or capture). Exits 1 when no gpu:0
cell replayed a graph or one of them failed its self-check, else 0.
"""
from __future__ import annotations

import glob
import json
import statistics
import sys


def _cells(folder) -> dict:
    out = {}
    for path in sorted(glob.glob(f"{folder}/*/*.json")):
        for c in json.load(open(path, encoding="utf-8")).get("cells", []):
            if c.get("device") == "gpu:0" and c.get("status") == "ok":
                out[c["workload"] + json.dumps(c.get("params") or {}, sort_keys=True)] = c
    return out


def _throughput(c) -> float:
    steps = (c.get("timing") or {}).get("step_s") or []
    return c["batch_size"] / statistics.median(steps) if steps else float("nan")


def main(graph_dir, eager_dir) -> int:
    graph, eager = _cells(graph_dir), _cells(eager_dir)
    print(f"{'workload':<18} {'eager sam/s':>12} {'graph sam/s':>12} {'ratio':>6} {'launch ms':>10} {'GPU ms':>8}  graph")
    used = 0
    failed = []
    for key, g in graph.items():
        e = eager.get(key)
        block = g.get("graph") or {}
        te, tg = (_throughput(e) if e else float("nan")), _throughput(g)
        launch, step = block.get("host_launch_s"), block.get("gpu_step_s")
        used += bool(block.get("used"))
        if (block.get("self_check") or {}).get("passed") is False:
            failed.append(g["workload"])
        print(f"{g['workload']:<18} {te:>12.4g} {tg:>12.4g} {tg / te if te == te and te else float('nan'):>5.2f}x "
              f"{launch * 1e3 if launch else float('nan'):>10.3g} {step * 1e3 if step else float('nan'):>8.3g}  "
              f"{'used' if block.get('used') else block.get('reason', 'no record')}")
    if not used:
        print("no gpu:0 cell replayed a CUDA graph")
    if failed:
        print(f"self-check failed (the cell trained eagerly): {', '.join(failed)}")
    return 0 if used and not failed else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    sys.exit(main(sys.argv[1], sys.argv[2]))
