"""Simulated ``cupy.cuda.compiler``: the exception a kernel that NVRTC refuses raises."""
from .._nvrtc import CompileException  # noqa: F401
