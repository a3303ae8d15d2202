"""Pre-flight of gpu_acceptance.sh: every module a step needs imports, and the GPUs are seen.

Usage: python benchmarks/acceptance_preflight.py   (exit 0, or 1 naming what is missing and how to install it)
"""
from __future__ import annotations

import importlib.util
import sys

NEEDED = ("benchbench", "numpy", "yaml", "pooch", "platformdirs", "jsonschema", "psutil", "pynvml", "cupy", "pytest")


def main() -> int:
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        print(f"missing: {', '.join(missing)}; install with: python3 -m pip install -e '.[gpu,test]'", file=sys.stderr)
        return 1
    import benchbench
    import cupy

    n = cupy.cuda.runtime.getDeviceCount()
    print(f"benchbench {benchbench.__version__}, cupy {cupy.__version__}, {n} GPU(s)")
    if n < 1:
        print("no GPU: cupy sees none", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
