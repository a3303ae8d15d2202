"""Softmax cross-entropy with its gradient: a row kernel, two small reductions, one gradient kernel.

Forward: one thread per sample computes the stable softmax of its row (max, exp, sum, divide),
keeps it for backward and writes ``-log p(t)`` and the sample's weight (0 for an ignored label);
the count of valid samples gives ``coeff = 1 / max(count, 1)`` and the loss is ``sum(nll * coeff)``.
Backward: ``(softmax - onehot(t)) * w * gy * coeff`` in one pass. Nothing is read back to the host.
"""
from __future__ import annotations

import numpy

from .fusion import get

KERNELS = {
    "softmax_cross_entropy_rows": ("elementwise", (
        "raw T x, S t, int32 n_class, S ignore_label", "raw T y, T nll, T w",
        """ptrdiff_t base = i * n_class;
T m = x[base];
for (int c = 1; c < n_class; ++c) { m = max(m, x[base + c]); }
T s = (T)0;
for (int c = 0; c < n_class; ++c) { T e = exp(x[base + c] - m); y[base + c] = e; s += e; }
for (int c = 0; c < n_class; ++c) { y[base + c] = y[base + c] / s; }
bool ok = t != ignore_label;
ptrdiff_t tc = ok ? (ptrdiff_t)t : (ptrdiff_t)0;
w = ok ? (T)1 : (T)0;
nll = (log(s) - (x[base + tc] - m)) * w""", "benchbench_softmax_cross_entropy_rows")),
    "softmax_cross_entropy_coeff": ("reduction", (
        "T w", "T coeff", "w", "a + b", "coeff = (T)1 / max(a, (T)1)", "0",
        "benchbench_softmax_cross_entropy_coeff")),
    "softmax_cross_entropy_loss": ("reduction", (
        "T nll, T coeff", "T loss", "nll * coeff", "a + b", "loss = a", "0",
        "benchbench_softmax_cross_entropy_loss")),
    "softmax_cross_entropy_grad": ("elementwise", (
        "T y, raw S t, raw T w, T gy, T coeff, int32 n_class", "T gx",
        """ptrdiff_t r = i / n_class;
ptrdiff_t c = i % n_class;
T s = w[r] * (gy * coeff);
gx = y * s - ((ptrdiff_t)t[r] == c ? s : (T)0)""", "benchbench_softmax_cross_entropy_grad")),
    # accuracy: one thread per sample finds the first maximum of its row, then the mean of the hits
    "accuracy_rows": ("elementwise", (
        "raw T y, S t, int32 n_class", "T hit",
        """ptrdiff_t base = i * n_class;
T m = y[base];
ptrdiff_t arg = 0;
for (int c = 1; c < n_class; ++c) {
  if (y[base + c] > m) {
    m = y[base + c];
    arg = c;
  }
}
hit = arg == (ptrdiff_t)t ? (T)1 : (T)0""", "benchbench_accuracy_rows")),
    "accuracy_mean": ("reduction", ("T hit, T n", "T acc", "hit", "a + b", "acc = a / n", "0",
                                    "benchbench_accuracy_mean")),
}

SCALARS = {"accuracy_mean": ("n",)}


def accuracy(xp, y, t):
    """The fraction of rows of ``y`` (N, C) whose first maximum is at ``t``, a 0-d array, two launches."""
    hit = get(*KERNELS["accuracy_rows"])(xp.ascontiguousarray(y), t, numpy.int32(y.shape[1]))
    return get(*KERNELS["accuracy_mean"])(hit, y.dtype.type(max(y.shape[0], 1)))


def forward(xp, x, t, ignore_label, normalize):
    """``(loss, y, w, coeff)``: the mean loss (0-d), the softmax, the per-sample weights, the scale."""
    n, c = x.shape
    x = xp.ascontiguousarray(x)
    y = xp.empty_like(x)
    nll, w = xp.empty(n, x.dtype), xp.empty(n, x.dtype)
    get(*KERNELS["softmax_cross_entropy_rows"])(x, t, numpy.int32(c), t.dtype.type(ignore_label), y, nll, w)
    if normalize:
        coeff = get(*KERNELS["softmax_cross_entropy_coeff"])(w)
    else:
        coeff = xp.asarray(1.0 / max(n, 1), dtype=x.dtype)  # a host constant: a copy, no kernel
    loss = get(*KERNELS["softmax_cross_entropy_loss"])(nll, coeff)
    return loss, y, w, coeff


def backward(y, t, w, gy, coeff):
    """The gradient of the mean loss with respect to the logits."""
    return get(*KERNELS["softmax_cross_entropy_grad"])(y, t, w, gy, coeff, numpy.int32(y.shape[1]))
