"""Per convolution layer: benchbench's im2col, Winograd F(2x2, 3x3), direct kernels, its default, and PyTorch.

Each convolution shape of ResNet-18 (batch 64) and of CNN/MNIST and LeNet5 (batch 100) runs
forward + backward (input and weight gradients, the input's only where the workload needs it)
with the convolution algorithm (``BENCHBENCH_CONV_ALGORITHM``'s setting) at ``im2col``, at ``winograd``
(stride-1 layers: 3x3, and 5x5 with the compiled CPU kernels on), at ``direct`` (stride-1 layers, with the compiled CPU kernels on), at
``auto`` (what training uses by default), at ``auto`` with the compiled kernels off (``numpy``:
``BENCHBENCH_CPU_KERNELS=numpy``), and with PyTorch when it is installed, in alternating
rounds in one process so that machine noise hits all alike, with a pause before each call so that
no library's idle threads still spin beside the next one. Printed per shape: the median ms of
each, achieved GFLOP/s (3 GEMM-equivalents of the layer's FLOPs: forward, input and weight
gradient), the default's ratio to PyTorch and, per ResNet-18 layer, how many such layers the
network has: where a whole step's remaining gap to PyTorch comes from.

Usage:
    python benchmarks/conv_algorithms.py [--rounds N] [--shape NAME ...] [--json OUT] [--no-torch]

PyTorch is optional and never a dependency of benchbench (see ``train_step.py``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import benchbench  # noqa: F401 - before numpy: it sets OpenBLAS's thread timeout, read when OpenBLAS loads
import numpy

from benchbench.core.config import using_config
from benchbench.core.kernels import conv_algorithm, cpu_compiled

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conv_chunks_ab import layer_step  # noqa: E402  (the same layer, timed the same way)

# name: (N, C, O, H, k, stride, pad, input gradient needed, layers of this shape in the network)
SHAPES = {
    "resnet18 stem 3x3 3->64": (64, 3, 64, 32, 3, 1, 1, False, 1),
    "resnet18 stage1 3x3 64": (64, 64, 64, 32, 3, 1, 1, True, 4),
    "resnet18 stage2 3x3/2 64->128": (64, 64, 128, 32, 3, 2, 1, True, 1),
    "resnet18 stage2 1x1/2 64->128": (64, 64, 128, 32, 1, 2, 0, True, 1),
    "resnet18 stage2 3x3 128": (64, 128, 128, 16, 3, 1, 1, True, 3),
    "resnet18 stage3 3x3/2 128->256": (64, 128, 256, 16, 3, 2, 1, True, 1),
    "resnet18 stage3 3x3 256": (64, 256, 256, 8, 3, 1, 1, True, 3),
    "resnet18 stage4 3x3/2 256->512": (64, 256, 512, 8, 3, 2, 1, True, 1),
    "resnet18 stage4 3x3 512": (64, 512, 512, 4, 3, 1, 1, True, 3),
    "cnn_mnist conv1 5x5 1->32": (100, 1, 32, 28, 5, 1, 0, False, 1),
    "cnn_mnist conv2 5x5 32->64": (100, 32, 64, 23, 5, 1, 0, True, 1),
    "lenet5 conv1 5x5 3->6": (100, 3, 6, 32, 5, 1, 0, False, 1),
    "lenet5 conv2 5x5 6->16": (100, 6, 16, 14, 5, 1, 0, True, 1),
}
ENV = conv_algorithm.CONV_ALGORITHM_ENV
SETTLE_S = 0.2


def flops(n, c, o, h, k, stride, pad, need_x):
    """FLOPs of forward + weight gradient (+ input gradient), 2 per multiply-add."""
    oh = (h + 2 * pad - k) // stride + 1
    one = 2.0 * n * o * oh * oh * c * k * k
    return one * (3 if need_x else 2)


def torch_step(torch, n, c, o, h, k, stride, pad, need_x, seed=0):
    """A callable: the same convolution forward and backward in PyTorch."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, h, generator=g, requires_grad=need_x)
    W = (torch.randn(o, c, k, k, generator=g) * 0.1).requires_grad_(True)
    gy = None

    def run():
        nonlocal gy
        x.grad = W.grad = None
        y = torch.nn.functional.conv2d(x, W, stride=stride, padding=pad)
        if gy is None:
            gy = torch.ones_like(y)
        y.backward(gy)

    return run


def _with_algorithm(fn, algorithm, kernels=None):
    """``fn`` run with the convolution algorithm set (whatever BENCHBENCH_CONV_ALGORITHM says), and
    the CPU kernel path (``compiled`` or ``numpy``) when ``kernels`` is given."""
    def run():
        with using_config("conv_algorithm", algorithm):
            if kernels is None:
                fn()
            else:
                with cpu_compiled.using(kernels):
                    fn()

    return run


def variants(shape, torch=None):
    """``{label: callable}`` for one layer shape: im2col, winograd (where it applies), auto, torch."""
    n, c, o, h, k, stride, pad, need_x = shape[:8]
    step = layer_step(n, c, o, h, k, stride, pad, need_x)
    out = {"im2col": _with_algorithm(step, "im2col")}
    if conv_algorithm.winograd_applies(k, k, (stride, stride), (pad, pad), (1, 1), compiled=cpu_compiled.active()):
        out["winograd"] = _with_algorithm(step, "winograd")
    compiled = cpu_compiled.active()
    if compiled and stride == 1 and pad < k:
        out["direct"] = _with_algorithm(step, "direct")
    out["auto"] = _with_algorithm(step, "auto")
    if compiled:
        out["numpy"] = _with_algorithm(step, "auto", "numpy")
    if torch is not None:
        out["torch"] = torch_step(torch, n, c, o, h, k, stride, pad, need_x)
    return out


def compare(fns, rounds, settle=SETTLE_S):
    """Median seconds of each callable over ``rounds`` alternating rounds (after one warm-up each).

    Before each timed call the script pauses ``settle`` seconds (OpenBLAS's idle threads spin on a
    core for about 0.1 s after a GEMM, and PyTorch called in that time ran at half speed) and then
    makes one untimed call (after a pause, threads wake and caches fill: a short layer's first
    call ran up to twice as long).
    """
    for fn in fns.values():
        fn()
    times = {label: [] for label in fns}
    for _ in range(rounds):
        for label, fn in fns.items():
            time.sleep(settle)
            fn()
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    return {label: float(numpy.median(v)) for label, v in times.items()}


def run(names, rounds, use_torch=True, log=print, settle=SETTLE_S):
    torch = None
    if use_torch:
        try:
            import torch
        except ImportError:
            torch = None
        else:
            from benchbench.core import backend

            torch.set_num_threads(backend.blas_threads())
    rows = []
    for name in names:
        shape = SHAPES[name]
        med = compare(variants(shape, torch), rounds, settle)
        fl = flops(*shape[:8])
        row = {"shape": name, "layers": shape[8], "ms": {k: v * 1e3 for k, v in med.items()},
               "gflops": {k: fl / v / 1e9 for k, v in med.items()}}
        if "torch" in med:
            row["auto_over_torch"] = med["auto"] / med["torch"]
        rows.append(row)
        log(format_row(row))
    return rows


def format_row(row):
    ms = row["ms"]
    cols = " ".join(f"{k} {v:8.2f} ms ({row['gflops'][k]:5.0f} GF/s)" for k, v in ms.items())
    ratio = f"  auto/torch {row['auto_over_torch']:.2f}" if "auto_over_torch" in row else ""
    return f"{row['shape']:<32} x{row['layers']}  {cols}{ratio}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--shape", nargs="+", choices=sorted(SHAPES), help="layer shapes (default all)")
    parser.add_argument("--json", metavar="OUT", help="write the rows to OUT")
    parser.add_argument("--no-torch", action="store_true", help="time benchbench only")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    from benchbench.core import host_allocator

    print(host_allocator.describe(host_allocator.tune()))  # as in a benchmark cell, for every column alike
    rows = run(args.shape or list(SHAPES), args.rounds, use_torch=not args.no_torch)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
