"""Softmax cross-entropy (mean over the batch, no class weights) as one compiled pass each way.

Forward: per sample the row maximum, the exponentials' sum, the softmax (kept for backward) and
``-log p(t)``; backward: ``(softmax - onehot(t)) * w * gy / count`` in one pass. The formulas and
their order are those of ``functions.loss.SoftmaxCrossEntropy``'s numpy path, in the logits' dtype.
"""
from __future__ import annotations

import numpy
from numba import prange

from .cpu_compiled import kernel


@kernel("void(A2, T, I, A2, A, A)")
def _forward(x, t, ignore_label, y, nll, w):
    n, k = x.shape
    for r in prange(n):
        top = x[r, 0]
        for j in range(1, k):
            if x[r, j] > top:
                top = x[r, j]
        label = t[r]
        valid = label != ignore_label
        safe = label if valid else 0
        z_t = x[r, safe] - top
        y[r, 0] = numpy.exp(x[r, 0] - top)
        s = y[r, 0]
        for j in range(1, k):
            e = numpy.exp(x[r, j] - top)
            y[r, j] = e
            s += e
        for j in range(k):
            y[r, j] /= s
        w[r] = 1.0 if valid else 0.0
        nll[r] = (numpy.log(s) - z_t) * w[r]


@kernel("void(A2, T, I, A, S, A2)")
def _backward(y, t, ignore_label, w, scale, gx):
    n, k = y.shape
    for r in prange(n):
        s = w[r] * scale
        for j in range(k):
            gx[r, j] = y[r, j] * s
        label = t[r]
        if label != ignore_label:
            gx[r, label] -= s


def forward(x, t, ignore_label, normalize):
    """``(loss, softmax, per-sample weight, coeff)`` as the numpy path keeps them."""
    n = x.shape[0]
    t = numpy.ascontiguousarray(t, dtype=numpy.int64)
    y, nll, w = numpy.empty_like(x), numpy.empty(n, x.dtype), numpy.empty(n, x.dtype)
    _forward(x, t, numpy.int64(ignore_label), y, nll, w)
    count = int(numpy.count_nonzero(w)) if normalize else n
    coeff = numpy.asarray(1.0 / max(count, 1), dtype=x.dtype)
    return numpy.asarray(nll.sum() * coeff, dtype=x.dtype), y, w, coeff


def backward(y, t, ignore_label, w, gy, coeff):
    """The gradient of the mean loss for the upstream gradient ``gy`` (a 0-d array)."""
    gx = numpy.empty_like(y)
    scale = (gy * coeff).astype(y.dtype)  # rounded as the numpy path's ``gy * coeff``
    _backward(y, numpy.ascontiguousarray(t, dtype=numpy.int64), numpy.int64(ignore_label), w, y.dtype.type(scale),
              gx)
    return gx
