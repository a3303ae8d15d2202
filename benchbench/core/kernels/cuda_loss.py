"""Softmax cross-entropy with its gradient: a row kernel and a reduction forward, one gradient kernel.

Forward: one thread per sample computes the stable softmax of its row (max, exp, sum, divide),
keeps it for backward and writes ``-log p(t)``, the sample's weight (0 for an ignored label) and
whether the row's first maximum is at its label (the accuracy's hit, for
``softmax_cross_entropy_and_accuracy``). Thread 0 also counts the valid labels (N reads) and writes
``coeff = 1 / max(count, 1)`` (``1 / N`` without normalisation) and the loss's unit seed for
backward; the loss is then one reduction, ``sum(nll * coeff)``. Backward: ``(softmax - onehot(t)) *
w * gy * coeff`` in one pass. Nothing is read back to the host. The mean squared error likewise: the
difference (and the seed), one reduction; one gradient pass.
"""
from __future__ import annotations

import numpy

from .fusion import get

KERNELS = {
    "softmax_cross_entropy_rows": ("elementwise", (
        "raw T x, S t, raw S labels, int32 n_class, S ignore_label, int32 n, int32 normalize, T inv_n",
        "raw T y, T nll, T w, T hit, raw T coeff, raw T seed",
        """ptrdiff_t base = i * n_class;
T m = x[base];
ptrdiff_t arg = 0;
for (int c = 1; c < n_class; ++c) {
  if (x[base + c] > m) {
    m = x[base + c];
    arg = c;
  }
}
T s = (T)0;
for (int c = 0; c < n_class; ++c) { T e = exp(x[base + c] - m); y[base + c] = e; s += e; }
for (int c = 0; c < n_class; ++c) { y[base + c] = y[base + c] / s; }
bool ok = t != ignore_label;
ptrdiff_t tc = ok ? (ptrdiff_t)t : (ptrdiff_t)0;
w = ok ? (T)1 : (T)0;
nll = (log(s) - (x[base + tc] - m)) * w;
hit = arg == (ptrdiff_t)t ? (T)1 : (T)0;
if (i == 0) {
  T k = inv_n;
  if (normalize) {
    int count = 0;
    for (int r = 0; r < n; ++r) { count += labels[r] != ignore_label ? 1 : 0; }
    k = (T)1 / max((T)count, (T)1);
  }
  coeff[0] = k;
  seed[0] = (T)1;
}""", "benchbench_softmax_cross_entropy_rows")),
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
    # mean squared error: the difference (thread 0 also writes the loss's unit seed), then one reduction;
    # backward one pass (both gradients at once when both inputs need one)
    "mean_squared_error_diff": ("elementwise", (
        "T x0, T x1", "T d, raw T seed", "d = x0 - x1;\nif (i == 0) { seed[0] = (T)1; }",
        "benchbench_mean_squared_error_diff")),
    "mean_squared_error_loss": ("reduction", ("T d, T n", "T loss", "d * d", "a + b", "loss = a / n", "0",
                                              "benchbench_mean_squared_error_loss")),
    "mean_squared_error_grad": ("elementwise", ("T d, T gy, T k", "T gx0", "gx0 = d * (gy * k)",
                                                "benchbench_mean_squared_error_grad")),
    "mean_squared_error_grads": ("elementwise", ("T d, T gy, T k", "T gx0, T gx1",
                                                 "gx0 = d * (gy * k);\ngx1 = -gx0",
                                                 "benchbench_mean_squared_error_grads")),
}

SCALARS = {"accuracy_mean": ("n",), "mean_squared_error_loss": ("n",), "mean_squared_error_grad": ("k",),
           "mean_squared_error_grads": ("k",)}


def accuracy(xp, y, t):
    """The fraction of rows of ``y`` (N, C) whose first maximum is at ``t``, a 0-d array, two launches."""
    hit = get(*KERNELS["accuracy_rows"])(xp.ascontiguousarray(y), t, numpy.int32(y.shape[1]))
    return accuracy_of_hits(hit)


def accuracy_of_hits(hit):
    """The mean of the per-row hits (0 or 1) of ``forward`` or ``accuracy_rows``, a 0-d array, one launch."""
    return get(*KERNELS["accuracy_mean"])(hit, hit.dtype.type(max(hit.shape[0], 1)))


def forward(xp, x, t, ignore_label, normalize):
    """``(loss, y, w, coeff, hit, seed)``: the mean loss (0-d), the softmax, the per-sample weights, the
    scale, the per-row accuracy hits and a unit seed for the loss's gradient (0-d), two launches."""
    n, c = x.shape
    x = xp.ascontiguousarray(x)
    y = xp.empty_like(x)
    nll, w, hit = xp.empty(n, x.dtype), xp.empty(n, x.dtype), xp.empty(n, x.dtype)
    coeff, seed = xp.empty(1, x.dtype), xp.empty(1, x.dtype)
    get(*KERNELS["softmax_cross_entropy_rows"])(
        x, t, t, numpy.int32(c), t.dtype.type(ignore_label), numpy.int32(n), numpy.int32(bool(normalize)),
        x.dtype.type(1.0 / max(n, 1)), y, nll, w, hit, coeff, seed)
    coeff = coeff.reshape(())
    loss = get(*KERNELS["softmax_cross_entropy_loss"])(nll, coeff)
    return loss, y, w, coeff, hit, seed.reshape(())


def backward(y, t, w, gy, coeff):
    """The gradient of the mean loss with respect to the logits."""
    return get(*KERNELS["softmax_cross_entropy_grad"])(y, t, w, gy, coeff, numpy.int32(y.shape[1]))


def mean_squared_error(xp, x0, x1):
    """``(loss, diff, seed)``: ``mean((x0 - x1) ** 2)`` (0-d), the difference kept for backward and a unit
    seed for the loss's gradient (0-d), two launches."""
    seed = xp.empty(1, x0.dtype)
    # d (and so the gradients) in x0's memory layout: a transposed prediction gets its gradient in the
    # layout its own backward hands on without a copy
    d = get(*KERNELS["mean_squared_error_diff"])(x0, x1, xp.empty_like(x0), seed)[0]
    loss = get(*KERNELS["mean_squared_error_loss"])(d, x0.dtype.type(max(d.size, 1)))
    return loss, d, seed.reshape(())


def mean_squared_error_grad(xp, d, gy, both):
    """The gradient for ``x0`` (and, with ``both``, for ``x1``) from the kept difference, one launch."""
    k = d.dtype.type(2.0 / max(d.size, 1))
    if both:
        return get(*KERNELS["mean_squared_error_grads"])(d, gy, k, xp.empty_like(d), xp.empty_like(d))
    return get(*KERNELS["mean_squared_error_grad"])(d, gy, k, xp.empty_like(d)), None
