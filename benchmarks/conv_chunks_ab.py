"""A/B of the convolution's column chunk size, per layer shape, alternating in one process.

Each convolution shape of ResNet-18 (batch 64) and of CNN/MNIST and LeNet5 (batch 100) runs
forward + backward with the whole batch's columns built at once (and kept for the weight
gradient: the behaviour before chunking) and with the default chunk budget
(``_conv_chunks.COL_CHUNK_BYTES``: columns built a few samples at a time, built again for the
weight gradient), in alternating rounds so that machine noise hits both alike. Printed per
shape: the median ms of each and their ratio (chunked / whole; below 1 means chunking wins).

Usage:
    python benchmarks/conv_chunks_ab.py [--rounds N] [--budget-mib M ...]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy

from benchbench.core import Variable
from benchbench.core import functions as F
from benchbench.core.functions import _conv_chunks

# name: (N, C, O, H, k, stride, pad)
SHAPES = {
    "resnet18 stage1 3x3 64": (64, 64, 64, 32, 3, 1, 1),
    "resnet18 stage2 3x3/2 64->128": (64, 64, 128, 32, 3, 2, 1),
    "resnet18 stage2 3x3 128": (64, 128, 128, 16, 3, 1, 1),
    "resnet18 stage3 3x3 256": (64, 256, 256, 8, 3, 1, 1),
    "resnet18 stage4 3x3 512": (64, 512, 512, 4, 3, 1, 1),
    "cnn_mnist conv2 5x5 32->64": (100, 32, 64, 24, 5, 1, 0),
    "lenet5 conv1 5x5 3->6": (100, 3, 6, 32, 5, 1, 0),
}


def layer_step(n, c, o, h, k, stride, pad, seed=0):
    """A callable running one convolution forward and backward (input and weight gradients)."""
    rng = numpy.random.default_rng(seed)
    x = Variable(rng.standard_normal((n, c, h, h)).astype(numpy.float32))
    W = Variable((rng.standard_normal((o, c, k, k)) * 0.1).astype(numpy.float32))
    gy = None

    def run():
        nonlocal gy
        x.grad = W.grad = None
        y = F.convolution_2d(x, W, stride=stride, pad=pad)
        if gy is None:
            gy = numpy.ones(y.shape, numpy.float32)
        y.grad = gy
        y.backward()

    return run


def compare(shape, budgets, rounds):
    """Median seconds of ``rounds`` alternating runs per budget (bytes) for one layer shape."""
    run = layer_step(*shape)
    times = {b: [] for b in budgets}
    saved = _conv_chunks.COL_CHUNK_BYTES
    try:
        for _ in range(rounds):
            for b in budgets:
                _conv_chunks.COL_CHUNK_BYTES = b
                run()  # warm the pool for this budget
                t0 = time.perf_counter()
                run()
                times[b].append(time.perf_counter() - t0)
    finally:
        _conv_chunks.COL_CHUNK_BYTES = saved
    return {b: float(numpy.median(v)) for b, v in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per shape (default 7)")
    parser.add_argument("--budget-mib", type=float, nargs="+", default=None,
                        help="chunk budgets to compare with the whole batch (default: the built-in one)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or (args.budget_mib and min(args.budget_mib) <= 0):
        parser.error(f"--rounds must be >= 1 and --budget-mib positive, got {args.rounds}, {args.budget_mib}")
    whole = 1 << 62
    chunked = [int(m * (1 << 20)) for m in args.budget_mib] if args.budget_mib else [_conv_chunks.COL_CHUNK_BYTES]
    budgets = [whole] + chunked
    print(f"{'layer':<32}{'whole ms':>10}" + "".join(f"{f'{b / (1 << 20):g} MiB':>12}{'ratio':>7}" for b in chunked))
    for name, shape in SHAPES.items():
        med = compare(shape, budgets, args.rounds)
        line = f"{name:<32}{med[whole] * 1e3:>10.1f}"
        line += "".join(f"{med[b] * 1e3:>12.1f}{med[b] / med[whole]:>7.2f}" for b in chunked)
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
