"""The LSTM gate math as compiled kernels: one pass per step each way, for ``functions.lstm``
(Chainer's interleaved ``[a, i, f, o]`` pre-activations) and for the per-step gate blocks of
``functions.lstm_sequence`` (the same functions as ``cuda_rnn``'s, on numpy arrays).

Sigmoids go through tanh (``sigmoid(z) = tanh(z/2)/2 + 1/2``) and every product is taken in the
order of the numpy path, in the data's dtype. The kernels are serial: an LSTM step of the
workloads holds a few thousand values, less than the start of a parallel region costs.
"""
from __future__ import annotations

import numpy

from .cpu_compiled import kernel


@kernel("void(A2, A3, A2, A3, A2, A2, A2, S)", parallel=False)
def _lstm_step(c_prev, g, a, ifo, tc, c, h, half):
    n, hsz = c_prev.shape
    for r in range(n):
        for u in range(hsz):
            av = numpy.tanh(g[r, u, 0])
            iv = numpy.tanh(g[r, u, 1] * half) * half + half
            fv = numpy.tanh(g[r, u, 2] * half) * half + half
            ov = numpy.tanh(g[r, u, 3] * half) * half + half
            cv = av * iv + fv * c_prev[r, u]
            tv = numpy.tanh(cv)
            a[r, u] = av
            ifo[r, u, 0] = iv
            ifo[r, u, 1] = fv
            ifo[r, u, 2] = ov
            tc[r, u] = tv
            c[r, u] = cv
            h[r, u] = ov * tv


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


@kernel("void(A2, A2, A2, A2, A2, A2, A2, A2, S)", parallel=False)
def _sequence_step(c_prev, a, f, ig, o, c, tc, h, half):
    hsz, n = c_prev.shape
    for u in range(hsz):
        for r in range(n):
            av = numpy.tanh(a[u, r])
            fv = numpy.tanh(f[u, r]) * half + half
            iv = numpy.tanh(ig[u, r]) * half + half
            ov = numpy.tanh(o[u, r]) * half + half
            a[u, r] = av
            f[u, r] = fv
            ig[u, r] = iv
            o[u, r] = ov
            cv = c_prev[u, r] * fv + av * iv
            tv = numpy.tanh(cv)
            c[u, r] = cv
            tc[u, r] = tv
            h[u, r] = ov * tv


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


def lstm_step(c_prev, x):
    """``(c, h, (a, ifo, tc))``: the step's outputs and what its backward keeps, as the numpy path's."""
    n, hsz = c_prev.shape
    t = x.dtype.type
    a, tc, c, h = (numpy.empty((n, hsz), x.dtype) for _ in range(4))
    ifo = numpy.empty((n, hsz, 3), x.dtype)
    _lstm_step(c_prev, x.reshape(n, hsz, 4), a, ifo, tc, c, h, t(0.5))
    return c, h, (a, ifo, tc)


def lstm_step_grad(a, ifo, tc, c_prev, gc_out, gh):
    """``(gc_prev, gx)`` of one step from what the forward kept; ``gx`` is (N, 4H)."""
    n, hsz = a.shape
    gc_prev = numpy.empty((n, hsz), a.dtype)
    gx = numpy.empty((n, hsz, 4), a.dtype)
    _lstm_step_grad(a, ifo, tc, c_prev, gc_out, gh, gc_prev, gx, a.dtype.type(1.0))
    return gc_prev, gx.reshape(n, 4 * hsz)


def sequence_step(c_prev, a, f, ig, o, c, tc, h):
    """One step's gates of ``lstm_sequence``, in place on its (H, N) blocks (``cuda_rnn``'s contract)."""
    _sequence_step(c_prev, a, f, ig, o, c, tc, h, c_prev.dtype.type(0.5))


def sequence_step_grad(gh, carry, c_prev, a, f, ig, o, tc, go, ga, gf, gi, carry_out):
    """One step's gate gradients of ``lstm_sequence`` (``cuda_rnn``'s contract)."""
    _sequence_step_grad(gh, carry, c_prev, a, f, ig, o, tc, go, ga, gf, gi, carry_out, gh.dtype.type(1.0))
