"""benchbench: how fast, how well and at what cost a machine trains the classic deep-learning workloads."""

__version__ = "0.1.0"

# Before numpy loads OpenBLAS (it reads this once, when the library loads): an idle OpenBLAS
# worker busy-waits for the next GEMM for 2**28 cycles (about 0.1 s) by default, on the core that
# the compiled kernels' second thread and the threaded copies need right after the GEMM (a
# parallel kernel that follows a GEMM ran at one core's speed on a 2-core machine). 2**12 cycles
# (a few microseconds) keeps the worker awake across back-to-back GEMMs and frees its core
# otherwise. A value set by the user is kept.
import os as _os

_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "12")
del _os

