"""A linear layer's gradients added into gradients accumulated so far, on a GPU.

Where ``Variable.backward`` offers a gradient it owns (``Function.accumulate_into``: a weight shared
by every step of an unrolled sequence, say), the input's and the weight's gradient GEMMs add into it (cuBLAS with
``beta = 1``) and the bias gradient's column sum adds into it in its reduction's last step: no
separate add per contribution.
"""
from __future__ import annotations

from .. import backend
from .fusion import get

KERNELS = {
    "bias_grad_add": ("reduction", ("T gy", "T gb", "gy", "a + b", "gb = gb + a", "0", "benchbench_bias_grad_add")),
}


def weight_grad_add(gy, x, gW) -> None:
    """``gW += gy^T x`` (gy (N, O), x (N, I), gW (O, I)), one cuBLAS call."""
    backend.gemm_add("T", "N", gy, x, gW)


def input_grad_add(gy, W, gx) -> None:
    """``gx += gy W`` (gy (N, O), W (O, I), gx (N, I)), one cuBLAS call."""
    backend.gemm_add("N", "N", gy, W, gx)


def bias_grad_add(gy, gb) -> None:
    """``gb += gy.sum(axis=0)``, one launch."""
    get(*KERNELS["bias_grad_add"])(gy, gb, axis=0)
