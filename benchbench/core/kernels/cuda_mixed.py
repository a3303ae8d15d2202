"""Mixed precision's unscale-and-check-overflow: one kernel per packed gradient buffer.

Each thread multiplies its gradient by ``1/scale`` and, where the value is inf or NaN, sets a
one-element flag (every writer writes the same 1: no atomics needed). The host reads the flag once
per step; a step with a non-finite gradient is skipped, so unscaling its gradients too is harmless.
Unlike a sum of the gradients (the unfused check), the flag cannot overflow on large finite values.
"""
from __future__ import annotations

from .fusion import get

KERNELS = {
    "unscale_check": ("elementwise", (
        "T inv_scale", "T g, raw T flag",
        "if (!isfinite(g)) { flag[0] = (T)1; }\ng = g * inv_scale", "benchbench_unscale_check")),
}


def unscale_check(xp, grads, scale) -> bool:
    """Divide every buffer of ``grads`` by ``scale`` in place; True when all their values were finite.

    One kernel per buffer and one read back to the host (the step's only transfer).
    """
    flag = xp.zeros(1, dtype=grads[0].dtype)
    for g in grads:
        get(*KERNELS["unscale_check"])(g.dtype.type(1.0 / scale), g, flag)
    return not float(flag)  # a one-element array: one transfer back
