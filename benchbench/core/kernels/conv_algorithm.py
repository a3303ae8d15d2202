"""Which algorithm a convolution runs: im2col + GEMM, Winograd (F(2x2, 3x3) on numpy and cupy; the
compiled F(4x4, 3x3) and F(4x4, 5x5) of ``cpu_winograd``), or a direct compiled convolution
(``cpu_conv``), decided in one place.

The choice comes from ``config.conv_algorithm`` when a block sets it (``using_config``), else from
the ``BENCHBENCH_CONV_ALGORITHM`` switch, read once per process (``config.switch``).
"""
from __future__ import annotations

import numpy

from ..config import SWITCHES, config, switch

__all__ = ["CONV_ALGORITHM_ENV", "CONV_ALGORITHMS", "WINOGRAD_MIN_CHANNELS", "DIRECT_MAX_CHANNELS", "conv_algorithm",
           "winograd_applies", "use_winograd", "direct_applies", "use_direct", "WINOGRAD_MIN_CHANNELS_COMPILED",
           "DIRECT_MIN_PLANE", "use_dense"]

CONV_ALGORITHM_ENV = "BENCHBENCH_CONV_ALGORITHM"
CONV_ALGORITHMS = SWITCHES[CONV_ALGORITHM_ENV][1]
# With fewer channels than this (in or out), Winograd's transforms cost more than its GEMMs save.
WINOGRAD_MIN_CHANNELS = 128
# The same bound for the compiled transforms (``cpu_winograd``), by filter size: 3x3 pays off from 64
# channels, 5x5 (whose im2col is 25 times the input) from 32.
WINOGRAD_MIN_CHANNELS_COMPILED = {3: 64, 5: 32}
# With at most this many channels in and out, the direct kernels beat im2col + GEMM (forward and
# backward; measured up to 32 -> 64, where Winograd, decided first, is faster still)...
DIRECT_MAX_CHANNELS = 64
# ... where the output planes have at least this many pixels (a tile is 4 output pixels; a 1x1
# output, LeNet5's 16 -> 120, is three times faster as im2col's GEMM).
DIRECT_MIN_PLANE = 16


def conv_algorithm() -> str:
    """``auto``, ``im2col``, ``winograd`` or ``direct``: the block's setting, else ``BENCHBENCH_CONV_ALGORITHM``.

    Raises:
        ValueError: the variable holds another value.
    """
    return config.conv_algorithm or switch(CONV_ALGORITHM_ENV)


def winograd_applies(kh, kw, stride, pad, dilate, compiled=False):
    """Whether Winograd can compute a convolution of this geometry: 3x3 (F(2x2, 3x3) on numpy and
    cupy), or 3x3 and 5x5 with the ``compiled`` transforms, with stride 1, no dilation and padding
    below the kernel size (so that the input gradient is again such a convolution)."""
    sizes = ((3, 3), (5, 5)) if compiled else ((3, 3),)
    return ((kh, kw) in sizes and tuple(stride) == (1, 1) and tuple(dilate) == (1, 1)
            and max(pad) <= kh - 1)


def use_winograd(xp, c, o, kh, kw, stride, pad, dilate, arrays=()):
    """Whether a convolution of this shape runs as Winograd rather than im2col + GEMM.

    Winograd applies to 3x3 kernels with stride 1, no dilation and padding of at most 2 (so the
    input gradient is again such a convolution). By default (``auto``) it is used on the CPU when
    both channel counts are at least :data:`WINOGRAD_MIN_CHANNELS`: its transforms cost time in
    proportion to the channels, its GEMMs save in proportion to their product, and with 64
    channels on 32x32 maps it is slower than im2col (with 128 on 16x16 it takes about 0.6 of the
    time; ``benchmarks/conv_algorithms.py``). Where the compiled CPU kernels take the layer's
    ``arrays`` (``winograd.compiled_applies``), each transform is one compiled pass from and to NCHW
    (``cpu_winograd``, which takes 5x5 filters too) and the bound is
    :data:`WINOGRAD_MIN_CHANNELS_COMPILED`: at ResNet-18's 64-channel stage (32x32 maps, batch 64)
    forward and backward take about half the time of the direct forward with im2col's backward, at
    CNN/MNIST's 5x5 32->64 about a third. cupy keeps im2col (one large GEMM per pass) until
    Winograd has been timed on a real GPU. ``BENCHBENCH_CONV_ALGORITHM`` (``im2col``,
    ``winograd``) overrides the choice for comparisons; ``winograd`` still applies only where the
    algorithm does.
    """
    choice = conv_algorithm()
    if choice in ("im2col", "direct"):
        return False
    from . import winograd

    compiled = bool(arrays) and winograd.compiled_applies(xp, arrays)
    if not winograd_applies(kh, kw, stride, pad, dilate, compiled):
        return False
    if choice == "winograd":
        return True
    if xp is not numpy:
        return False
    return min(c, o) >= (WINOGRAD_MIN_CHANNELS_COMPILED[kh] if compiled else WINOGRAD_MIN_CHANNELS)


def direct_applies(arrays, kh, kw, stride, pad, dilate):
    """Whether the direct compiled kernels (``cpu_conv``) can compute this convolution: the compiled
    CPU kernels are on (``BENCHBENCH_CPU_KERNELS``), the arrays are C-contiguous numpy arrays of one
    float dtype, stride 1, no dilation, and padding below the kernel size."""
    from . import cpu_compiled

    return (tuple(stride) == (1, 1) and tuple(dilate) == (1, 1) and pad[0] < kh and pad[1] < kw
            and len({a.dtype for a in arrays}) == 1 and cpu_compiled.usable(*arrays))


def use_direct(arrays, c, o, kh, kw, stride, pad, dilate):
    """Whether a convolution runs as the direct compiled kernels rather than im2col + GEMM (or Winograd).

    By default (``auto``) where they apply (:func:`direct_applies`), at most
    :data:`DIRECT_MAX_CHANNELS` channels go in and out, and the output planes have at least
    :data:`DIRECT_MIN_PLANE` pixels: LeNet5's 3->6 and 6->16, CNN/MNIST's 1->32, ResNet's 3->64
    stem (Winograd, decided first, takes the wider 3x3 and 5x5 layers). The direct kernels build no
    columns (im2col's are 9 to 25 times the input) and keep their tiles in registers
    (``cpu_conv``): forward and backward, one step of LeNet5's 6->16 took 1.7 ms against
    im2col's 3.4 at 1 thread, 1.4 against 3.3 at 2; CNN/MNIST's 32->64 shape 17 against 31.
    ``BENCHBENCH_CONV_ALGORITHM=direct`` forces it wherever it applies; ``im2col`` and
    ``winograd`` turn it off.
    """
    choice = conv_algorithm()
    if choice in ("im2col", "winograd") or not direct_applies(arrays, kh, kw, stride, pad, dilate):
        return False
    if choice == "direct":
        return True
    h, w = arrays[0].shape[2:]
    plane = (h + 2 * pad[0] - kh + 1) * (w + 2 * pad[1] - kw + 1)
    return max(c, o) <= DIRECT_MAX_CHANNELS and plane >= DIRECT_MIN_PLANE


def use_dense(xp, x_shape, kh, kw, pad, dilate):
    """Whether a CPU convolution is a fully connected layer: its kernel covers the whole unpadded
    input (LeNet5's 16 -> 120 on 5x5 maps, a 1x1 output at any stride). It then runs as one GEMM
    on the input as it is, each way, with no columns and no layout copies (im2col's columns would
    be the input transposed). By default (``auto``) only; any other ``BENCHBENCH_CONV_ALGORITHM``
    keeps its own algorithm.
    """
    return (xp is numpy and conv_algorithm() == "auto" and tuple(pad) == (0, 0) and tuple(dilate) == (1, 1)
            and tuple(x_shape[2:]) == (kh, kw))
