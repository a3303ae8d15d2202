"""Per-op framework overhead: a chain of 100 tiny ops (add/mul on (10,) arrays) with backward.

The arrays are so small that the numpy work is negligible: what is measured is the cost the
framework adds to each op (building the Function and its output Variable, recording the graph,
and walking it back). Target: at most 10 µs per op (forward and backward together).

Run:
    python -m pytest benchmarks/bench_overhead.py --benchmark-only
or, for a quick figure without pytest-benchmark:
    python benchmarks/bench_overhead.py
"""
from __future__ import annotations

import time

import numpy

from benchbench.core import Variable, no_backprop_mode
from benchbench.core import functions as F

N_OPS = 100  # 50 (mul, add) pairs
SIZE = 10


def _inputs():
    x = Variable(numpy.ones(SIZE, numpy.float32))
    w = Variable(numpy.full(SIZE, 1.0001, numpy.float32))
    b = Variable(numpy.full(SIZE, 1e-4, numpy.float32))
    return x, w, b


def chain_forward(x, w, b):
    h = x
    for _ in range(N_OPS // 2):
        h = h * w
        h = h + b
    return h


def chain_step(x, w, b):
    """Forward through N_OPS ops, then backward from a seeded gradient."""
    for v in (x, w, b):
        v.cleargrad()
    h = chain_forward(x, w, b)
    h.grad = numpy.ones_like(h.array)
    h.backward()
    return w.grad


def chain_functional(x, w, b):
    """The same chain through F.add / F.mul directly (no operator dispatch)."""
    for v in (x, w, b):
        v.cleargrad()
    h = x
    for _ in range(N_OPS // 2):
        h = F.add(F.mul(h, w), b)
    h.grad = numpy.ones_like(h.array)
    h.backward()
    return w.grad


def _report(benchmark, label):
    if benchmark.stats is None:  # --benchmark-disable: the body ran once, nothing was timed
        return
    stats = benchmark.stats.stats
    best, median = stats.min / N_OPS * 1e6, stats.median / N_OPS * 1e6
    benchmark.extra_info["us_per_op_min"] = round(best, 3)
    benchmark.extra_info["us_per_op_median"] = round(median, 3)
    benchmark.extra_info["ops"] = N_OPS
    print(f"\n{label}: {best:.2f} us per op (best), {median:.2f} (median)")


def test_overhead_forward_backward(benchmark):
    x, w, b = _inputs()
    g = benchmark(chain_step, x, w, b)
    assert g.shape == (SIZE,) and numpy.isfinite(g).all()
    _report(benchmark, "forward+backward")


def test_overhead_functional_forward_backward(benchmark):
    x, w, b = _inputs()
    g = benchmark(chain_functional, x, w, b)
    assert g.shape == (SIZE,) and numpy.isfinite(g).all()
    _report(benchmark, "F.add/F.mul forward+backward")


def test_overhead_forward_only(benchmark):
    x, w, b = _inputs()

    def run():
        with no_backprop_mode():
            return chain_forward(x, w, b)

    h = benchmark(run)
    assert h.shape == (SIZE,)
    _report(benchmark, "forward, no graph")


def test_overhead_forward_with_graph(benchmark):
    x, w, b = _inputs()
    h = benchmark(chain_forward, x, w, b)
    assert h.creator is not None
    _report(benchmark, "forward, graph recorded")


def test_overhead_numpy_baseline(benchmark):
    """The same arithmetic on raw arrays: the floor the framework adds to."""
    x, w, b = (v.array for v in _inputs())

    def run():
        h = x
        for _ in range(N_OPS // 2):
            h = h * w
            h = h + b
        return h

    benchmark(run)
    _report(benchmark, "numpy only (forward)")


def main(repeats=300):
    """Print the microseconds per op of each variant (best and median of ``repeats`` runs)."""
    x, w, b = _inputs()
    variants = {
        "forward+backward": lambda: chain_step(x, w, b),
        "F.add/F.mul forward+backward": lambda: chain_functional(x, w, b),
        "forward, graph recorded": lambda: chain_forward(x, w, b),
    }
    for label, fn in variants.items():
        for _ in range(20):
            fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        best, median = min(times) / N_OPS * 1e6, numpy.median(times) / N_OPS * 1e6
        print(f"{label:32s} best {best:6.2f}  median {median:6.2f} us per op")


if __name__ == "__main__":
    main()
