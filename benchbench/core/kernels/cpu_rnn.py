"""The LSTM gate gradients as compiled kernels, one pass per step: for ``functions.lstm``
(Chainer's interleaved ``[a, i, f, o]`` pre-activations, from what its forward kept) and for the
per-step gate blocks of ``functions.lstm_sequence`` (``cuda_rnn.sequence_step_grad``'s contract).
The numpy paths take about twenty passes for the same.

Every product is taken in the order of the numpy path, in the data's dtype. The forward gates stay
numpy's: their five tanh per unit are vectorised there, where a compiled loop calls the C
library's tanh one value at a time (about 100 times slower per value on float32). The kernels are
serial: an LSTM step of the workloads holds a few thousand values, less than the start of a
parallel region costs.
"""
from __future__ import annotations

import numpy

from .cpu_compiled import kernel


@kernel("void(A2, A3, A2, A2, A2, A2, A2, A3, S)", parallel=False)
def _lstm_step_grad(a, ifo, tc, c_prev, gc_out, gh, gc_prev, gx, one):
    n, hsz = a.shape
    for r in range(n):
        for u in range(hsz):
            av = a[r, u]
            iv = ifo[r, u, 0]
            fv = ifo[r, u, 1]
            ov = ifo[r, u, 2]
            tv = tc[r, u]
            ghv = gh[r, u]
            gc = (one - tv * tv) * ov * ghv + gc_out[r, u]
            gx[r, u, 0] = (one - av * av) * iv * gc
            gx[r, u, 1] = (one - iv) * iv * av * gc
            gx[r, u, 2] = (one - fv) * fv * c_prev[r, u] * gc
            gx[r, u, 3] = (one - ov) * ov * tv * ghv
            gc_prev[r, u] = gc * fv


@kernel("void(A2, A2, A2, A2, A2, A2, A2, A2, A2, A2, A2, A2, A2, S)", parallel=False)
def _sequence_step_grad(gh, carry, c_prev, a, f, ig, o, tc, go, ga, gf, gi, carry_out, one):
    hsz, n = gh.shape
    for u in range(hsz):
        for r in range(n):
            ghv = gh[u, r]
            ov = o[u, r]
            tv = tc[u, r]
            av = a[u, r]
            fv = f[u, r]
            iv = ig[u, r]
            gc = ghv * ((one - tv * tv) * ov) + carry[u, r]
            go[u, r] = ghv * ((one - ov) * ov * tv)
            ga[u, r] = gc * ((one - av * av) * iv)
            gf[u, r] = gc * ((one - fv) * fv * c_prev[u, r])
            gi[u, r] = gc * ((one - iv) * iv * av)
            carry_out[u, r] = gc * fv


def lstm_step_grad(a, ifo, tc, c_prev, gc_out, gh):
    """``(gc_prev, gx)`` of one step from what the forward kept; ``gx`` is (N, 4H)."""
    n, hsz = a.shape
    gc_prev = numpy.empty((n, hsz), a.dtype)
    gx = numpy.empty((n, hsz, 4), a.dtype)
    _lstm_step_grad(a, ifo, tc, c_prev, gc_out, gh, gc_prev, gx, a.dtype.type(1.0))
    return gc_prev, gx.reshape(n, 4 * hsz)


def sequence_step_grad(gh, carry, c_prev, a, f, ig, o, tc, go, ga, gf, gi, carry_out):
    """One step's gate gradients of ``lstm_sequence`` (``cuda_rnn``'s contract)."""
    _sequence_step_grad(gh, carry, c_prev, a, f, ig, o, tc, go, ga, gf, gi, carry_out, gh.dtype.type(1.0))
