"""A/B of where a convolution's im2col columns live, per layer shape, alternating in one process.

Each convolution shape of ResNet-18 (batch 64) and of CNN/MNIST and LeNet5 (batch 100) runs
forward + backward with the whole batch's columns kept for the weight gradient (the behaviour
before ``_conv_chunks``), with the defaults (columns over ``HOLD_COL_BYTES`` built again for
the weight gradient, over ``COL_CHUNK_BYTES`` split over the batch) and, for each
``--budget-mib``, split into chunks of that size, in alternating rounds so that machine noise
hits all alike. Printed per shape: the median ms of each and its ratio to the kept columns
(below 1 is faster).

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
from benchbench.core.kernels import conv_chunks as _conv_chunks

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


def layer_step(n, c, o, h, k, stride, pad, need_x=True, seed=0):
    """A callable running one convolution forward and backward (the weight gradient, and the input's
    when ``need_x``)."""
    rng = numpy.random.default_rng(seed)
    x = Variable(rng.standard_normal((n, c, h, h)).astype(numpy.float32), requires_grad=need_x)
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


def compare(shape, variants, rounds):
    """Median seconds of ``rounds`` alternating runs for one layer shape.

    Args:
        shape: ``(N, C, O, H, k, stride, pad)``.
        variants: ``{name: (COL_CHUNK_BYTES, HOLD_COL_BYTES)}``.
        rounds: alternating rounds (each variant runs once untimed, then once timed, per round).

    Returns:
        ``{name: median seconds}``; the module's settings are restored afterwards.
    """
    run = layer_step(*shape)
    times = {name: [] for name in variants}
    saved = _conv_chunks.COL_CHUNK_BYTES, _conv_chunks.HOLD_COL_BYTES
    try:
        for _ in range(rounds):
            for name, (chunk, hold) in variants.items():
                _conv_chunks.COL_CHUNK_BYTES, _conv_chunks.HOLD_COL_BYTES = chunk, hold
                run()  # warm the pool for this variant
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
    finally:
        _conv_chunks.COL_CHUNK_BYTES, _conv_chunks.HOLD_COL_BYTES = saved
    return {name: float(numpy.median(v)) for name, v in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per shape (default 7)")
    parser.add_argument("--budget-mib", type=float, nargs="+", default=[],
                        help="chunk sizes to compare too (columns split over the batch)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or (args.budget_mib and min(args.budget_mib) <= 0):
        parser.error(f"--rounds must be >= 1 and --budget-mib positive, got {args.rounds}, {args.budget_mib}")
    never = 1 << 62
    variants = {"kept": (never, never), "default": (_conv_chunks.COL_CHUNK_BYTES, _conv_chunks.HOLD_COL_BYTES)}
    for mib in args.budget_mib:
        variants[f"{mib:g} MiB"] = (int(mib * (1 << 20)), _conv_chunks.HOLD_COL_BYTES)
    others = list(variants)[1:]
    print(f"{'layer':<32}{'kept ms':>10}" + "".join(f"{name + ' ms':>14}{'ratio':>7}" for name in others))
    for label, shape in SHAPES.items():
        med = compare(shape, variants, args.rounds)
        line = f"{label:<32}{med['kept'] * 1e3:>10.1f}"
        line += "".join(f"{med[name] * 1e3:>14.1f}{med[name] / med['kept']:>7.2f}" for name in others)
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
