"""LSTM: one fused step (``lstm``) and a fused whole sequence (``lstm_sequence``).

Gate layout (Chainer's, used by ``lstm``, ``lstm_sequence``, ``links.LSTM`` and
``links.LSTMSequence`` alike): the ``4*H`` gate columns are *interleaved per unit*,
column ``4*j + k`` holding gate ``k`` of unit ``j`` with ``k`` in the order
``a`` (cell input, tanh), ``i`` (input gate), ``f`` (forget gate), ``o`` (output
gate), i.e. ``a, i, f, o = x.reshape(N, H, 4)[:, :, k]``. Then::

    c = tanh(a) * sigmoid(i) + sigmoid(f) * c_prev
    h = sigmoid(o) * tanh(c)

``lstm_sequence`` gathers its weight rows once per call into a blocked layout (each
gate a contiguous block of rows) so that the per-step gate math runs on contiguous
blocks, and scatters the weight gradients back.
"""
from __future__ import annotations

import functools

import numpy

from .. import kernels
from ..kernels import cpu_compiled
from ..backend import get_array_module
from ..function import Function
from ._checks import array_of, check_float

__all__ = ["lstm", "lstm_sequence"]


def _sigmoid_(x, xp):
    """In-place logistic sigmoid, through tanh so that no exp overflows."""
    x *= 0.5
    xp.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


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
        if kernels.fusable(c_prev, x) and c_prev.dtype == x.dtype:
            from ..kernels import cuda_rnn

            c, h = cuda_rnn.lstm_step(xp, c_prev, x)
            self._saved = ("fused", c)
            return c, h
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
        if isinstance(self._saved[0], str):  # the forward ran the fused kernel
            from ..kernels import cuda_rnn

            c, self._saved = self._saved[1], None
            gc_prev, gx = cuda_rnn.lstm_step_grad(xp, c_prev, x, c, gc_out.astype(x.dtype, copy=False),
                                                  gh.astype(x.dtype, copy=False))
            need = self.needs_input_grad
            return gc_prev if need[0] else None, gx if need[1] else None
        a, ifo, tc = self._saved
        self._saved = None
        if cpu_compiled.usable(a, c_prev, gc_out, gh) and c_prev.dtype == gc_out.dtype == gh.dtype == a.dtype:
            from ..kernels import cpu_rnn

            gc_prev, gx = cpu_rnn.lstm_step_grad(a, ifo, tc, c_prev, gc_out, gh)
            need = self.needs_input_grad
            return gc_prev if need[0] else None, gx if need[1] else None
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
    ca = check_float("lstm", "c_prev", c_prev, 2)
    xa = check_float("lstm", "x", x, 2)
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


@functools.lru_cache(maxsize=64)
def _blocked_order(hsz, gates, inverse=False):
    """Row indices that gather the interleaved gate rows into contiguous blocks, in the order
    ``gates`` (gate numbers 0..3 for ``a, i, f, o``), or with ``inverse`` the indices that
    gather them back. Cached; the arrays are read-only."""
    perm = numpy.arange(4 * hsz).reshape(hsz, 4)[:, list(gates)].T.reshape(-1)
    if inverse:
        perm = numpy.argsort(perm)
    perm.setflags(write=False)
    return perm


# Block orders used by LSTMSequence: forward gates [a, f, i, o] (so that [c_prev, a] and
# [f, i] are adjacent pairs and the three sigmoid gates are one block); backward [o, a, f, i].
_FWD_GATES = (0, 2, 1, 3)
_BWD_GATES = (3, 0, 2, 1)


class LSTMSequence(Function):
    """Whole-sequence LSTM. Inputs ``(x_seq, h0, c0, W_x, W_h[, b])``; outputs ``(h_seq, h_T, c_T)``.

    Everything runs on feature-major ``(features, N)`` slices so that every per-step
    operand is a contiguous block (numpy's fast path for small arrays). Forward: each step
    is one GEMM ``[W_x | b | W_h] @ [x_t; 1; h_t]`` into the gate rows, one tanh over all
    four gates (the sigmoid rows of the weights are pre-scaled by 1/2, and
    ``sigmoid(z) = (tanh(z/2) + 1) / 2``), and six small elementwise calls. Backward: the
    gate-derivative factors that do not depend on the incoming gradient are formed for all
    steps at once; each step then costs three elementwise calls and one GEMM that also adds
    the output gradient of the step and carries the cell gradient; ``[gW_x | gb | gW_h]``
    and ``gx_seq`` are one GEMM each.
    """

    def __init__(self, has_bias):
        self.has_bias = has_bias

    def flops(self, xs, ys):
        """Forward FLOPs of the input and recurrent GEMMs (2 per multiply-add), for the profiler."""
        x_seq, w_x, w_h = xs[0], xs[3], xs[4]
        t, n = x_seq.shape[0], x_seq.shape[1]
        return 2.0 * t * n * w_x.shape[0] * (w_x.shape[1] + w_h.shape[1])

    def _gather(self, xp, xs, gates):
        """``[W_x | b | W_h]`` with its rows in block order ``gates``; (4H, in [+1] + H)."""
        w_x, w_h = xs[3], xs[4]
        hsz = w_h.shape[1]
        perm = _blocked_order(hsz, gates)
        if xp is not numpy:
            perm = xp.asarray(perm)
        parts = [w_x[perm]]
        if self.has_bias:
            parts.append(xs[5][perm][:, None])
        parts.append(w_h[perm])
        return xp.concatenate(parts, axis=1)

    def forward(self, xp, xs):
        x_seq, h0, c0 = xs[:3]
        t_len, n, in_size = x_seq.shape
        hsz = h0.shape[1]
        dtype = x_seq.dtype
        k_in = in_size + self.has_bias
        w = self._gather(xp, xs, _FWD_GATES)
        w[hsz:] *= 0.5  # sigmoid gates f, i, o: tanh(z/2)
        # xh[t] = [x_t; 1; h_t], feature-major (K, N).
        xh = xp.empty((t_len + 1, k_in + hsz, n), dtype=dtype)
        xh[:t_len, :in_size] = x_seq.transpose(0, 2, 1)
        xh[t_len, :k_in] = 0
        if self.has_bias:
            xh[:, in_size] = 1
        xh[0, k_in:] = h0.T
        # st[t] = [c_t, a, f, i, o] of step t, each (H, N); st[t_len] holds only c_T.
        st = xp.empty((t_len + 1, 5, hsz, n), dtype=dtype)
        st[0, 0] = c0.T
        st[t_len, 1:] = 0
        z = st.reshape(t_len + 1, 5 * hsz, n)[:, hsz:]  # gate rows (4H, N) of each step
        tcs = xp.empty((t_len, hsz, n), dtype=dtype)
        prod = xp.empty((2, hsz, n), dtype=dtype)
        half = xp.full((), 0.5, dtype=dtype)
        hx = xh[:, k_in:]
        fused = kernels.fusable(x_seq, w)
        if fused:
            from ..kernels import cuda_rnn
        for t in range(t_len):
            zt, s = z[t], st[t]
            xp.matmul(w, xh[t], out=zt)
            if fused:  # the gate math of the step in one kernel
                cuda_rnn.sequence_step(s[0], s[1], s[2], s[3], s[4], st[t + 1, 0], tcs[t], hx[t + 1])
                continue
            xp.tanh(zt, out=zt)
            sg = s[2:]
            xp.multiply(sg, half, out=sg)
            xp.add(sg, half, out=sg)
            xp.multiply(s[0:2], s[2:4], out=prod)  # [c_prev f, a i]
            c = st[t + 1, 0]
            xp.add(prod[0], prod[1], out=c)
            tc = tcs[t]
            xp.tanh(c, out=tc)
            xp.multiply(s[4], tc, out=hx[t + 1])
        self._saved = (xh, st, tcs)
        h_seq = xp.ascontiguousarray(hx[1:].transpose(0, 2, 1))
        return h_seq, h_seq[t_len - 1].copy(), xp.ascontiguousarray(st[t_len, 0].T)

    @staticmethod
    def _factors(xp, fac, tcs, a, f, i, o, c_prev):
        """The gate-derivative factors of every step at once (the unfused path)."""
        e, d, fa, ff, fi = fac[:, 0], fac[:, 4], fac[:, 5], fac[:, 6], fac[:, 7]
        xp.multiply(tcs, tcs, out=e)
        xp.subtract(1, e, out=e)
        e *= o
        fac[:, 1:4] = e[:, None]
        xp.subtract(1, o, out=d)
        d *= o
        d *= tcs
        xp.multiply(a, a, out=fa)
        xp.subtract(1, fa, out=fa)
        fa *= i
        xp.subtract(1, f, out=ff)
        ff *= f
        ff *= c_prev
        xp.subtract(1, i, out=fi)
        fi *= i
        fi *= a
        fac[:, 8] = f


    def backward(self, xp, xs, gys):
        x_seq = xs[0]
        gh_seq, gh_last, gc_last = gys
        xh, st, tcs = self._saved
        self._saved = None
        t_len, n, hsz = gh_seq.shape
        in_size = x_seq.shape[2]
        k_in = in_size + self.has_bias
        dtype = x_seq.dtype
        c_prev, a, f, i, o = (st[:t_len, k] for k in range(5))
        # Per step t every operand is a contiguous (k, H, N) block, so that numpy takes its
        # fast path; m = [gh_t x5, carried cell gradient x4] comes from the previous GEMM:
        #   buf[t, 0:5] = m[0:5] * fac[t, 0:5]     -> [gh e x4, go]
        #   buf[t, 0:4] += m[5:9]                  -> the total cell gradient gc, x4
        #   buf[t, 5:9] = buf[t, 0:4] * fac[t, 5:] -> [ga, gf, gi, carry]
        #   m = w_big @ buf[t, 4:10]               -> [gh_{t-1} x5, carry x4]
        # with fac = [e x4, d, fa, ff, fi, f], formed for all steps at once:
        # e = o (1 - tc^2), d = tc o (1 - o), fa = i (1 - a^2), ff = c_prev f (1 - f), fi = a i (1 - i).
        fused = kernels.fusable(x_seq, gh_seq)
        compiled = not fused and cpu_compiled.usable(x_seq, gh_seq)  # cpu_rnn's step, same contract
        fused = fused or compiled
        fac = None if fused else xp.empty((t_len, 9, hsz, n), dtype=dtype)
        if fused:  # each step's factors are computed by its kernel
            e = d = fa = ff = fi = None
        else:
            e, d, fa, ff, fi = fac[:, 0], fac[:, 4], fac[:, 5], fac[:, 6], fac[:, 7]
            self._factors(xp, fac, tcs, a, f, i, o, c_prev)
        # buf[t] = [scratch x4, go, ga, gf, gi, carry, gh_seq[t-1]], each (H, N); gate rows [o, a, f, i].
        buf = xp.empty((t_len, 10, hsz, n), dtype=dtype)
        buf[0, 9] = 0
        buf[1:, 9] = gh_seq[:t_len - 1].transpose(0, 2, 1)
        w_b = self._gather(xp, xs, _BWD_GATES)
        # w_big: block rows 0-4 [W_h^T | 0 | I] (gh_{t-1}), block rows 5-8 [0 | I | 0] (carry).
        eye = xp.eye(hsz, dtype=dtype)
        w_big = xp.zeros((9, hsz, 6, hsz), dtype=dtype)
        w_big[:5, :, :4] = w_b[:, k_in:].T.reshape(hsz, 4, hsz)
        w_big[:5, :, 5] = eye
        w_big[5:, :, 4] = eye
        w_big = w_big.reshape(9 * hsz, 6 * hsz)
        m = xp.empty((9, hsz, n), dtype=dtype)
        m[:5] = (gh_last + gh_seq[t_len - 1]).T
        m[5:] = gc_last.T
        m2 = m.reshape(9 * hsz, n)
        rows = buf.reshape(t_len, 10 * hsz, n)[:, 4 * hsz:]
        if fused:
            from ..kernels import cuda_rnn
        if compiled:
            from ..kernels import cpu_rnn as cuda_rnn
        for t in range(t_len - 1, -1, -1):
            if fused:
                r = buf[t]
                cuda_rnn.sequence_step_grad(m[0], m[5], c_prev[t], a[t], f[t], i[t], o[t], tcs[t],
                                            r[4], r[5], r[6], r[7], r[8])
                xp.matmul(w_big, rows[t], out=m2)
                continue
            r, ft = buf[t], fac[t]
            s = r[0:4]
            xp.multiply(m[0:5], ft[0:5], out=r[0:5])
            xp.add(s, m[5:], out=s)
            xp.multiply(s, ft[5:], out=r[5:9])
            xp.matmul(w_big, rows[t], out=m2)
        need = self.needs_input_grad
        # gz: gate pre-activation gradients (4H, T*N), rows [o, a, f, i], columns (t, n).
        gz = buf[:, 4:8].reshape(t_len, 4 * hsz, n).transpose(1, 0, 2).reshape(4 * hsz, t_len * n)
        g_x = (gz.T @ w_b[:, :in_size]).reshape(x_seq.shape) if need[0] else None
        g_h0 = xp.ascontiguousarray(m[0].T) if need[1] else None
        g_c0 = xp.ascontiguousarray(m[5].T) if need[2] else None
        out = [g_x, g_h0, g_c0, None, None]
        if self.has_bias:
            out.append(None)
        if any(need[3:]):
            xs_m = xh[:t_len].transpose(1, 0, 2).reshape(k_in + hsz, t_len * n)
            g_w = gz @ xs_m.T  # (4H, K), rows [o, a, f, i]
            inv = _blocked_order(hsz, _BWD_GATES, inverse=True)
            g_w = g_w[inv if xp is numpy else xp.asarray(inv)]
            if need[3]:
                out[3] = xp.ascontiguousarray(g_w[:, :in_size])
            if need[4]:
                out[4] = xp.ascontiguousarray(g_w[:, k_in:])
            if self.has_bias and need[5]:
                out[5] = g_w[:, in_size].copy()
        return tuple(out)


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
    xa = check_float(fname, "x_seq", x_seq, 3)
    wxa = check_float(fname, "W_x", W_x, 2)
    wha = check_float(fname, "W_h", W_h, 2)
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
            sa = check_float(fname, name, s, 2)
            if sa.shape != (n, hsz):
                raise ValueError(f"{fname}: {name} must have shape (N, H) = {(n, hsz)}, got {sa.shape}")
        states.append(s)
    inputs = [x_seq, states[0], states[1], W_x, W_h]
    if b is not None:
        ba = check_float(fname, "b", b, 1)
        if ba.shape != (h4,):
            raise ValueError(f"{fname}: b must have shape (4*H,) = {(h4,)}, got {ba.shape}")
        inputs.append(b)
    for name, v in zip(("x_seq", "h0", "c0", "W_x", "W_h", "b"), inputs):
        if array_of(v).dtype != dtype:
            raise TypeError(f"{fname}: {name} has dtype {array_of(v).dtype}, x_seq has {dtype}; they must match")
    return tuple(LSTMSequence(b is not None).apply(inputs))

