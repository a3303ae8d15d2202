"""``python -m tests [PYTEST OPTIONS]``: the whole test suite, as CI runs it.

Runs pytest twice: the CPU suite, then every GPU and multi-GPU test on the strict simulated GPUs
(``PYTHONPATH=tests/simgpu``, ``BENCHBENCH_SIM_GPUS=2`` unless set), the ``slow`` cases included in
both. The CPU suite runs over two pytest-xdist workers (a test module stays on one worker, so its
module-scoped runs are shared; most of its time is waiting for CLI and worker processes, which two
workers overlap), except the tests marked ``serial``, which judge whether the machine is quiet and
run alone afterwards; the simulated-GPU suite, whose time is the CPU running the simulated kernels,
runs in one process. Options are passed to both runs (``-x``, ``-k EXPR``, paths...; ``-n 0`` runs in
one process). The last line adds the two runs up; the exit status is 0 only when both passed (a
half that a filter leaves empty counts as passed when the other half ran tests).

The inner loop, without the subprocess, MPI and wheel tests: ``python -m pytest -m "not integration"``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIMULATED = "gpu or multi_gpu or simgpu"
NO_TESTS = 5  # pytest's exit status when nothing was collected
WORKERS = 2  # pytest-xdist workers per run


def _pytest(args: list[str], env: dict, counts: Path) -> tuple[int, dict]:
    env = {**env, "BENCHBENCH_TEST_COUNTS": str(counts)}
    rc = subprocess.call([sys.executable, "-m", "pytest", *args], cwd=ROOT, env=env)
    try:
        return rc, json.loads(counts.read_text())
    except (OSError, ValueError):
        return rc, {}


def _warm_kernel_cache(env: dict) -> None:
    """Compile the CPU kernels into numba's cache once, before the workers and the cells they start
    would each compile them at once (float64 too, for the gradient checks)."""
    code = ("import time; t = time.perf_counter(); from benchbench.core.kernels import cpu_compiled; "
            "r = [cpu_compiled.prepare(d) for d in ('float32', 'float64')]; "
            "print('== CPU kernels, path', r[0]['path'] + ':', sum(x.get('cold', 0) for x in r), 'compiled,', "
            "sum(x.get('cached', 0) for x in r), 'from the cache, %.1f s' % (time.perf_counter() - t), flush=True)")
    subprocess.call([sys.executable, "-c", code], cwd=ROOT, env=env)


def main(argv: list[str]) -> int:
    extra = ([] if "--runslow" in argv else ["--runslow"]) + argv
    parallel = [] if any(a == "-n" or a.startswith(("-n", "--numprocesses", "--dist")) for a in argv) else \
        ["-n", str(WORKERS), "--dist", "loadfile"]
    base = dict(os.environ)
    simulated = dict(base)
    simulated["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "tests" / "simgpu"), base.get("PYTHONPATH")] if p)
    simulated.setdefault("BENCHBENCH_SIM_GPUS", "2")
    runs = []
    _warm_kernel_cache(base)
    with tempfile.TemporaryDirectory(prefix="benchbench-tests-") as tmp:
        if parallel and "-m" not in argv:
            print("== the CPU suite, over two workers", flush=True)
            runs.append(_pytest(parallel + ["-m", "not serial", *extra], base, Path(tmp) / "cpu.json"))
            print("== the CPU suite's serial tests (they judge whether the machine is quiet), alone", flush=True)
            runs.append(_pytest(["-m", "serial", *extra], base, Path(tmp) / "serial.json"))
        else:
            print("== the CPU suite", flush=True)
            runs.append(_pytest(parallel + extra, base, Path(tmp) / "cpu.json"))
        print("== the simulated-GPU suite (tests/simgpu)", flush=True)
        runs.append(_pytest(["-m", SIMULATED, *extra], simulated, Path(tmp) / "sim.json"))
    total = {k: sum(c.get(k, 0) for _, c in runs) for k in ("passed", "failed", "skipped", "errors")}
    ran = total["passed"] + total["failed"] + total["errors"]
    codes = [rc for rc, _ in runs]
    ok = all(rc == 0 or (rc == NO_TESTS and ran) for rc in codes) and ran > 0
    rc_cpu, rc_sim = next((rc for rc in codes[:-1] if rc not in (0, NO_TESTS)), codes[0]), codes[-1]
    print(f"both suites (CPU exit {rc_cpu}, simulated GPUs exit {rc_sim}):")
    line = f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped"
    print(line + (f", {total['errors']} errors" if total["errors"] else ""))
    return 0 if ok else (next((rc for rc in codes if rc not in (0, NO_TESTS)), 1))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
