"""benchbench: how fast, how well and at what cost a machine trains the classic deep-learning workloads."""

__version__ = "0.1.0"

# Before numpy loads OpenBLAS (it reads this once, when the library loads): an idle OpenBLAS
# worker busy-waits for the next GEMM for 2**28 cycles (about 0.1 s) by default, on the core that
# the compiled kernels' second thread, the Winograd workers and the threaded copies need right
# after the GEMM (a parallel kernel that follows a GEMM ran at one core's speed on a 2-core
# machine). 2**4 cycles, OpenBLAS's least, puts it to sleep at once: with 2**12, the worker still
# took most of a core while two Winograd worker threads ran (0.5 s of CPU in 0.6 s of 20 layers),
# and none with 2**4 or 2**8. A value set by the user is kept.
import os as _os

_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
del _os

