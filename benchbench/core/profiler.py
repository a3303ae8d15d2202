"""Per-function profiler: device-synchronised forward and backward time of every Function call.

While a ``Profiler`` is active (``with Profiler(device) as prof:``), every ``Function.apply`` and
every backward call is timed. Calls are keyed by their order within a step and by the Link scope
they ran in (``Link.__call__`` sets it), so the n-th convolution of a ResNet is one row across
steps. FLOPs of each call come from ``Function.flops(xs, ys)`` where a function defines it
(GEMM-based functions do), else one FLOP per output element.
"""
from __future__ import annotations

import threading
from collections import defaultdict

from . import backend
from . import function as _function

_scope = threading.local()


def current_scope() -> str:
    return getattr(_scope, "name", "")


class scope:
    """Context manager naming the Link whose functions run inside it (nested: '/a/b')."""

    __slots__ = ("name", "_old")

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self._old = getattr(_scope, "name", "")
        _scope.name = f"{self._old}/{self.name}" if self.name else self._old
        return self

    def __exit__(self, *exc):
        _scope.name = self._old


def _default_flops(f, xs, ys):
    return float(sum(int(y.size) for y in ys))


class Profiler:
    """Time every Function call of the steps run inside it.

    Args:
        device: the device the steps run on (``Device`` or spec; None: the CPU), synchronised
            around every timed call (``backend.synced_timer``).

    Use ``begin_step()`` before each step so calls are numbered per step; ``rows()`` gives one
    row per call position with the median over steps.
    """

    def __init__(self, device=None):
        self.device = device
        self.steps = []  # each: dict key -> {"forward": s, "backward": s, "flops_f": x, "flops_b": x}
        self._seq = 0
        self._keys = {}

    def __enter__(self):
        if _function._profile_hook is not None:
            raise RuntimeError("Profiler: another profiler is already active")
        _function.set_profile_hook(self)
        return self

    def __exit__(self, *exc):
        _function.set_profile_hook(None)

    def begin_step(self):
        self.steps.append(defaultdict(lambda: {"forward": 0.0, "backward": 0.0, "flops_f": 0.0, "flops_b": 0.0}))
        self._seq = 0
        self._keys = {}

    # -- hook interface used by Function ----------------------------------
    def forward(self, f, xp, xs):
        if not self.steps:
            self.begin_step()
        with backend.synced_timer(self.device) as span:
            ys = f.forward(xp, xs)
        dt = span.seconds
        key = (self._seq, current_scope(), f.label)
        self._seq += 1
        self._keys[id(f)] = key
        flops = getattr(f, "flops", None)
        rec = self.steps[-1][key]
        rec["forward"] += dt
        rec["flops_f"] += float(flops(xs, ys)) if flops else _default_flops(f, xs, ys)
        return ys

    def backward(self, f, xp, xs, gys):
        with backend.synced_timer(self.device) as span:
            gxs = f.backward(xp, xs, gys)
        dt = span.seconds
        key = self._keys.get(id(f), (-1, current_scope(), f.label))
        rec = self.steps[-1][key]
        rec["backward"] += dt
        bflops = getattr(f, "backward_flops", None)
        if bflops:
            rec["flops_b"] += float(bflops(xs, gys))
        else:
            rec["flops_b"] += 2 * rec["flops_f"]
        return gxs

    # -- results -------------------------------------------------------------
    def rows(self, skip=0):
        """One dict per call position: name, forward_s, backward_s (medians over steps), flops."""
        import numpy

        steps = self.steps[skip:]
        if not steps:
            return []
        keys = sorted({k for s in steps for k in s}, key=lambda k: (k[0] if k[0] >= 0 else 1e9, k[1], k[2]))
        out = []
        for k in keys:
            recs = [s[k] for s in steps if k in s]
            fwd = float(numpy.median([r["forward"] for r in recs]))
            bwd = float(numpy.median([r["backward"] for r in recs]))
            out.append({
                "index": k[0], "scope": k[1] or "/", "function": k[2],
                "forward_s": fwd, "backward_s": bwd,
                "flops_forward": recs[0]["flops_f"], "flops_backward": recs[0]["flops_b"],
            })
        return out
