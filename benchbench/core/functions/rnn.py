"""LSTM: one fused step (``lstm``) and a fused whole sequence (``lstm_sequence``).

Gate layout (Chainer's, used by ``lstm``, ``lstm_sequence``, ``links.LSTM`` and
``links.LSTMSequence`` alike): the ``4*H`` gate columns are *interleaved per unit*,
column ``4*j + k`` holding gate ``k`` of unit ``j`` with ``k`` in the order
``a`` (cell input, tanh), ``i`` (input gate), ``f`` (forget gate), ``o`` (output
gate), i.e. ``a, i, f, o = x.reshape(N, H, 4)[:, :, k]``. Then::

    c = tanh(a) * sigmoid(i) + sigmoid(f) * c_prev
    h = sigmoid(o) * tanh(c)

``lstm_sequence`` permutes its weights once per call to a blocked layout
(``[a | i | f | o]``, each gate a contiguous column block) so that the per-step
gate math runs on contiguous blocks, and permutes the weight gradients back.
"""
from __future__ import annotations

import numpy

from ..backend import get_array_module
from ..function import Function
from ..variable import Variable

__all__ = ["lstm", "lstm_sequence"]


def _sigmoid_(x, xp):
    """In-place logistic sigmoid, through tanh so that no exp overflows."""
    x *= 0.5
    xp.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def _array_of(x):
    return x.array if isinstance(x, Variable) else x


def _check_float(fname, argname, a, ndim):
    if a is None:
        raise TypeError(f"{fname}: {argname} must be an array or Variable, got None")
    if not hasattr(a, "dtype") or not hasattr(a, "shape"):
        raise TypeError(f"{fname}: {argname} must be an array or Variable, got {type(a).__name__}")
    if a.dtype.kind != "f":
        raise TypeError(f"{fname}: {argname} must have a float dtype, got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{fname}: {argname} must have {ndim} axes, got shape {a.shape}")


def _gate_grads(xp, a, i, f, o, c_prev, tc, gc, gh, ga, gi, gf, go):
    """Gate pre-activation gradients, in place into ``ga, gi, gf, go``:
    ga = gc i (1 - a^2); gi = gc a i (1 - i); gf = gc c_prev f (1 - f); go = gh tc o (1 - o)."""
    xp.multiply(a, a, out=ga)
    xp.subtract(1, ga, out=ga)
    ga *= i
    ga *= gc
    xp.subtract(1, i, out=gi)
    gi *= i
    gi *= a
    gi *= gc
    xp.subtract(1, f, out=gf)
    gf *= f
    gf *= c_prev
    gf *= gc
    xp.subtract(1, o, out=go)
    go *= o
    go *= tc
    go *= gh


class LSTMStep(Function):
    """One LSTM step on pre-activations in Chainer's interleaved layout; outputs ``(c, h)``."""

    def forward(self, xp, xs):
        c_prev, x = xs
        n, h4 = x.shape
        hsz = h4 // 4
        g = x.reshape(n, hsz, 4)
        a = xp.tanh(g[:, :, 0])
        ifo = g[:, :, 1:].copy()
        _sigmoid_(ifo, xp)
        i, f, o = ifo[:, :, 0], ifo[:, :, 1], ifo[:, :, 2]
        c = a * i
        c += f * c_prev
        tc = xp.tanh(c)
        h = o * tc
        self._saved = (a, ifo, tc)
        return c, h

    def backward(self, xp, xs, gys):
        c_prev, x = xs
        gc_out, gh = gys
        a, ifo, tc = self._saved
        self._saved = None
        i, f, o = ifo[:, :, 0], ifo[:, :, 1], ifo[:, :, 2]
        # gc = gc_out + gh * o * (1 - tanh(c)^2)
        gc = tc * tc
        xp.subtract(1, gc, out=gc)
        gc *= o
        gc *= gh
        gc += gc_out
        gx = xp.empty((x.shape[0], x.shape[1] // 4, 4), dtype=x.dtype)
        ga, gi, gf, go = gx[:, :, 0], gx[:, :, 1], gx[:, :, 2], gx[:, :, 3]
        _gate_grads(xp, a, i, f, o, c_prev, tc, gc, gh, ga, gi, gf, go)
        gc_prev = gc * f if self.needs_input_grad[0] else None
        gx = gx.reshape(x.shape) if self.needs_input_grad[1] else None
        return gc_prev, gx


def lstm(c_prev, x):
    """One LSTM step (Chainer's ``F.lstm``).

    Args:
        c_prev: previous cell state, shape ``(N, H)``.
        x: gate pre-activations, shape ``(N, 4*H)``, in the interleaved layout described in
            this module's docstring (``x.reshape(N, H, 4)[..., k]`` is gate ``a, i, f, o``).

    Returns:
        ``(c, h)``: the new cell state and the output, each a Variable of shape ``(N, H)``.

    Raises:
        TypeError: a non-float input.
        ValueError: shapes that do not agree.

    Example:
        >>> c, h = lstm(c, upward(x) + lateral(h))
    """
    ca, xa = _array_of(c_prev), _array_of(x)
    _check_float("lstm", "c_prev", ca, 2)
    _check_float("lstm", "x", xa, 2)
    if xa.shape[1] % 4 != 0:
        raise ValueError(f"lstm: x must have 4*H columns, got shape {xa.shape}")
    if ca.shape != (xa.shape[0], xa.shape[1] // 4):
        raise ValueError(
            f"lstm: c_prev must have shape (N, H) = {(xa.shape[0], xa.shape[1] // 4)} for x of shape "
            f"{xa.shape}, got {ca.shape}"
        )
    if ca.dtype != xa.dtype:
        raise TypeError(f"lstm: c_prev and x must share a dtype, got {ca.dtype} and {xa.dtype}")
    return tuple(LSTMStep().apply((c_prev, x)))


def _blocked_order(hsz):
    """Row permutation from the interleaved gate layout to the blocked one (and its inverse)."""
    perm = numpy.arange(4 * hsz).reshape(hsz, 4).T.reshape(-1)
    return perm, numpy.argsort(perm)


class LSTMSequence(Function):
    """Whole-sequence LSTM. Inputs ``(x_seq, h0, c0, W_x, W_h[, b])``; outputs ``(h_seq, h_T, c_T)``.

    Forward: one GEMM projects the inputs of all T steps; each step adds one GEMM
    ``h @ W_h^T`` and the fused gate math. Backward walks the steps in reverse inside
    this Function and forms ``gW_x``, ``gW_h`` and ``gx_seq`` with one GEMM each.
    """

    def __init__(self, has_bias):
        self.has_bias = has_bias

    def flops(self, xs, ys):
        """Forward FLOPs of the input and recurrent GEMMs (2 per multiply-add), for the profiler."""
        x_seq, w_x, w_h = xs[0], xs[3], xs[4]
        t, n = x_seq.shape[0], x_seq.shape[1]
        return 2.0 * t * n * w_x.shape[0] * (w_x.shape[1] + w_h.shape[1])

    def forward(self, xp, xs):
        x_seq, h0, c0, w_x, w_h = xs[:5]
        t_len, n, _ = x_seq.shape
        hsz = h0.shape[1]
        perm, _ = _blocked_order(hsz)
        if xp is not numpy:
            perm = xp.asarray(perm)
        w_xb = w_x[perm]  # (4H, in), blocked
        w_hb = w_h[perm]  # (4H, H), blocked
        self._w_b = (w_xb, w_hb)
        # gates[t] holds the pre-activations, then (in place) the activations a, i, f, o.
        gates = (x_seq.reshape(t_len * n, -1) @ w_xb.T).reshape(t_len, n, 4 * hsz)
        if self.has_bias:
            gates += xs[5][perm]
        hs = xp.empty((t_len + 1, n, hsz), dtype=x_seq.dtype)
        cs = xp.empty((t_len + 1, n, hsz), dtype=x_seq.dtype)
        tcs = xp.empty((t_len, n, hsz), dtype=x_seq.dtype)
        hs[0] = h0
        cs[0] = c0
        w_hbt = w_hb.T
        tmp = xp.empty((n, hsz), dtype=x_seq.dtype)
        for t in range(t_len):
            g = gates[t]
            g += hs[t] @ w_hbt
            a = g[:, :hsz]
            xp.tanh(a, out=a)
            _sigmoid_(g[:, hsz:], xp)
            c = cs[t + 1]
            xp.multiply(a, g[:, hsz:2 * hsz], out=c)
            xp.multiply(g[:, 2 * hsz:3 * hsz], cs[t], out=tmp)
            c += tmp
            xp.tanh(c, out=tcs[t])
            xp.multiply(g[:, 3 * hsz:], tcs[t], out=hs[t + 1])
        self._saved = (gates, hs, cs, tcs)
        return hs[1:], hs[t_len].copy(), cs[t_len].copy()

    def backward(self, xp, xs, gys):
        x_seq, h0, c0, w_x, w_h = xs[:5]
        gh_seq, gh_last, gc_last = gys
        gates, hs, cs, tcs = self._saved
        w_xb, w_hb = self._w_b
        self._saved = self._w_b = None
        t_len, n, hsz = gh_seq.shape
        dtype = x_seq.dtype
        gg = xp.empty_like(gates)  # gradients of the pre-activations, blocked
        gh = gh_last.copy()
        gc = gc_last.copy()
        tmp = xp.empty((n, hsz), dtype=dtype)
        for t in range(t_len - 1, -1, -1):
            g = gates[t]
            a, i, f, o = (g[:, k * hsz:(k + 1) * hsz] for k in range(4))
            tc = tcs[t]
            gh += gh_seq[t]
            # gc += gh * o * (1 - tc^2)
            xp.multiply(tc, tc, out=tmp)
            xp.subtract(1, tmp, out=tmp)
            tmp *= o
            tmp *= gh
            gc += tmp
            dg = gg[t]
            ga, gi, gf, go = (dg[:, k * hsz:(k + 1) * hsz] for k in range(4))
            _gate_grads(xp, a, i, f, o, cs[t], tc, gc, gh, ga, gi, gf, go)
            gc *= f
            xp.matmul(dg, w_hb, out=gh)
        need = self.needs_input_grad
        inv = self._perm_inverse(xp, hsz)
        gg2 = gg.reshape(t_len * n, 4 * hsz)
        g_x = (gg2 @ w_xb).reshape(x_seq.shape) if need[0] else None
        g_h0 = gh if need[1] else None
        g_c0 = gc if need[2] else None
        g_wx = (gg2.T @ x_seq.reshape(t_len * n, -1))[inv] if need[3] else None
        g_wh = (gg2.T @ hs[:t_len].reshape(t_len * n, hsz))[inv] if need[4] else None
        out = [g_x, g_h0, g_c0, g_wx, g_wh]
        if self.has_bias:
            out.append(gg2.sum(axis=0)[inv] if need[5] else None)
        return tuple(out)

    def _perm_inverse(self, xp, hsz):
        _, inv = _blocked_order(hsz)
        return inv if xp is numpy else xp.asarray(inv)


def lstm_sequence(x_seq, h0, c0, W_x, W_h, b=None):
    """A whole LSTM sequence in one fused Function.

    Step ``t`` computes the gate pre-activations ``x_seq[t] @ W_x.T + h @ W_h.T + b`` and
    applies :func:`lstm` to them. The result equals ``T`` applications of :func:`lstm`
    but runs one GEMM for the input projection of every step and one per step for the
    recurrence, and keeps its intermediate values in a few preallocated arrays.

    Args:
        x_seq: inputs, shape ``(T, N, in)``.
        h0: initial output, shape ``(N, H)``, or None for zeros.
        c0: initial cell state, shape ``(N, H)``, or None for zeros.
        W_x: input weights, shape ``(4*H, in)``, rows in the interleaved gate layout.
        W_h: recurrent weights, shape ``(4*H, H)``, same layout.
        b: bias, shape ``(4*H,)``, or None.

    Returns:
        ``(h_seq, h_T, c_T)``: every step's output ``(T, N, H)``, the last output and the
        last cell state ``(N, H)``.

    Raises:
        TypeError: a non-float input or mixed dtypes.
        ValueError: shapes that do not agree, or ``T == 0``.

    Example:
        >>> h_seq, h, c = lstm_sequence(xs, None, None, W_x, W_h, b)
    """
    fname = "lstm_sequence"
    xa, wxa, wha = _array_of(x_seq), _array_of(W_x), _array_of(W_h)
    _check_float(fname, "x_seq", xa, 3)
    _check_float(fname, "W_x", wxa, 2)
    _check_float(fname, "W_h", wha, 2)
    t_len, n, in_size = xa.shape
    if t_len == 0:
        raise ValueError(f"{fname}: x_seq must hold at least one step, got shape {xa.shape}")
    h4 = wha.shape[0]
    if h4 % 4 != 0 or wha.shape != (h4, h4 // 4):
        raise ValueError(f"{fname}: W_h must have shape (4*H, H), got {wha.shape}")
    hsz = h4 // 4
    if wxa.shape != (h4, in_size):
        raise ValueError(
            f"{fname}: W_x must have shape (4*H, in) = {(h4, in_size)} for x_seq of shape {xa.shape} "
            f"and W_h of shape {wha.shape}, got {wxa.shape}"
        )
    xp = get_array_module(xa)
    dtype = xa.dtype
    states = []
    for name, s in (("h0", h0), ("c0", c0)):
        if s is None:
            s = xp.zeros((n, hsz), dtype=dtype)
        else:
            _check_float(fname, name, _array_of(s), 2)
            if _array_of(s).shape != (n, hsz):
                raise ValueError(f"{fname}: {name} must have shape (N, H) = {(n, hsz)}, got {_array_of(s).shape}")
        states.append(s)
    inputs = [x_seq, states[0], states[1], W_x, W_h]
    if b is not None:
        ba = _array_of(b)
        _check_float(fname, "b", ba, 1)
        if ba.shape != (h4,):
            raise ValueError(f"{fname}: b must have shape (4*H,) = {(h4,)}, got {ba.shape}")
        inputs.append(b)
    for name, v in zip(("x_seq", "h0", "c0", "W_x", "W_h", "b"), inputs):
        if _array_of(v).dtype != dtype:
            raise TypeError(f"{fname}: {name} has dtype {_array_of(v).dtype}, x_seq has {dtype}; they must match")
    return tuple(LSTMSequence(b is not None).apply(inputs))

