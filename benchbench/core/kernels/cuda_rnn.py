"""LSTM gates as one kernel each way (Chainer's ``lstm`` / ``lstm_grad`` kernels).

``lstm_step`` / ``lstm_step_grad`` work on the interleaved layout of ``functions.rnn.lstm`` (gate
``k`` of unit ``j`` in column ``4*j + k``); the backward recomputes the activations from the
pre-activations instead of keeping them. ``sequence_forward`` / ``sequence_backward`` run
``lstm_sequence`` on its feature-major blocks: per step one GEMM and one gate kernel each way, and
the setup in a few kernels (the weights gathered into gate blocks, the inputs packed, the backward's
recurrent matrix, the weight gradients split); the step kernels write the outputs and the gate
gradients in the layouts that follow them, so that no copy is left between.
Sigmoids go through tanh (``sigmoid(z) = tanh(z/2)/2 + 1/2``) as the unfused code does.
"""
from __future__ import annotations

import numpy

from .fusion import get

_GATES = """T a = tanh(x[4 * i]);
T ig = tanh(x[4 * i + 1] * (T)0.5) * (T)0.5 + (T)0.5;
T f = tanh(x[4 * i + 2] * (T)0.5) * (T)0.5 + (T)0.5;
T o = tanh(x[4 * i + 3] * (T)0.5) * (T)0.5 + (T)0.5;
"""

KERNELS = {
    "lstm_step": ("elementwise", (
        "T c_prev, raw T x", "T c, T h",
        _GATES + "c = a * ig + f * c_prev;\nh = o * tanh(c)", "benchbench_lstm_step")),
    "lstm_step_grad": ("elementwise", (
        "T c_prev, raw T x, T c, T gc_out, T gh", "T gc_prev, raw T gx",
        _GATES + """T tc = tanh(c);
T gc = ((T)1 - tc * tc) * o * gh + gc_out;
gx[4 * i] = ((T)1 - a * a) * ig * gc;
gx[4 * i + 1] = ((T)1 - ig) * ig * a * gc;
gx[4 * i + 2] = ((T)1 - f) * f * c_prev * gc;
gx[4 * i + 3] = ((T)1 - o) * o * tc * gh;
gc_prev = gc * f""", "benchbench_lstm_step_grad")),
    # z rows (a, f, i, o) hold the GEMM's pre-activations (the sigmoid rows pre-scaled by 1/2) and
    # get the activations, which backward reads again; h goes to the next step's GEMM input and hs to
    # the (T, N, H) output (a transposed view)
    "lstm_sequence_step": ("elementwise", (
        "T c_prev", "T a, T f, T ig, T o, T c, T tc, T h, T hs",
        """a = tanh(a);
f = tanh(f) * (T)0.5 + (T)0.5;
ig = tanh(ig) * (T)0.5 + (T)0.5;
o = tanh(o) * (T)0.5 + (T)0.5;
c = c_prev * f + a * ig;
tc = tanh(c);
h = o * tc;
hs = h""", "benchbench_lstm_sequence_step")),
    # backward step t: the incoming output gradient (gh_a where has_gh, plus gh_seq[t] on the last step)
    # and the carried cell gradient (where has_carry) give the gate gradients, written for the step's
    # GEMM (go, ga, gf, gi) and, in the weights' interleaved row order, for the weight gradients (zo, za,
    # zf, zi: views); ghp gets gh_seq[t - 1] (0 at t = 0), which the GEMM adds into step t - 1's gh
    "lstm_sequence_step_grad": ("elementwise", (
        "T gh_a, int32 has_gh, raw T ghs, int32 add_last, T carry, int32 has_carry, T c_prev, T a, T f, T ig, "
        "T o, T tc, int32 t, int32 n, int32 hsz",
        "T go, T ga, T gf, T gi, T carry_out, T ghp, T zo, T za, T zf, T zi",
        """ptrdiff_t j = i / n;
ptrdiff_t nn = i % n;
T gh = (has_gh ? gh_a : (T)0) + (add_last ? ghs[((ptrdiff_t)t * n + nn) * hsz + j] : (T)0);
T gc = gh * (((T)1 - tc * tc) * o) + (has_carry ? carry : (T)0);
go = gh * (((T)1 - o) * o * tc);
ga = gc * (((T)1 - a * a) * ig);
gf = gc * (((T)1 - f) * f * c_prev);
gi = gc * (((T)1 - ig) * ig * a);
carry_out = gc * f;
ghp = t > 0 ? ghs[((ptrdiff_t)(t - 1) * n + nn) * hsz + j] : (T)0;
zo = go;
za = ga;
zf = gf;
zi = gi""", "benchbench_lstm_sequence_step_grad")),
    # [W_x | b | W_h] with its rows gathered from the interleaved layout (row 4j + gate) into gate blocks
    # (block k holds gate g_k of every unit), the blocks after the first times ``scale``
    "lstm_sequence_weights": ("elementwise", (
        "raw T wx, raw T b, raw T wh, int32 hsz, int32 in_size, int32 has_bias, int32 g0, int32 g1, int32 g2, "
        "int32 g3, T scale", "T w",
        """int kk = in_size + has_bias + hsz;
ptrdiff_t r = i / kk;
int col = i % kk;
int blk = r / hsz;
ptrdiff_t src = 4 * (r % hsz) + (blk == 0 ? g0 : (blk == 1 ? g1 : (blk == 2 ? g2 : g3)));
T v = col < in_size ? wx[src * in_size + col]
    : (col < in_size + has_bias ? b[src] : wh[src * hsz + (col - in_size - has_bias)]);
w = blk > 0 ? v * scale : v""", "benchbench_lstm_sequence_weights")),
    # the weight gradient (4H, [x | 1 | h]) split into those of W_x, b and W_h
    "lstm_sequence_weight_grads": ("elementwise", (
        "T gw, int32 hsz, int32 in_size, int32 has_bias", "raw T gwx, raw T gb, raw T gwh",
        """int kk = in_size + has_bias + hsz;
ptrdiff_t dst = i / kk;
int col = i % kk;
if (col < in_size) {
  gwx[dst * in_size + col] = gw;
} else if (col < in_size + has_bias) {
  gb[dst] = gw;
} else {
  gwh[dst * hsz + (col - in_size - has_bias)] = gw;
}""", "benchbench_lstm_sequence_weight_grads")),
    # xh[t] = [x_t; 1; h_t] (feature-major, (K, N)) gets the inputs, the bias ones and h0; st[0, 0] gets c0
    "lstm_sequence_pack": ("elementwise", (
        "raw T x, raw T h0, raw T c0, int32 t_len, int32 n, int32 in_size, int32 has_bias, int32 hsz, "
        "int32 zero_h0, int32 zero_c0", "raw T xh, raw T st",
        """int k_in = in_size + has_bias;
int nn = i % n;
ptrdiff_t r = i / n;
int row = r % (k_in + hsz);
ptrdiff_t t = r / (k_in + hsz);
if (row < in_size) {
  if (t < t_len) { xh[i] = x[(t * n + nn) * in_size + row]; }
} else if (row < k_in) {
  xh[i] = (T)1;
} else if (t == 0) {
  xh[i] = zero_h0 ? (T)0 : h0[(ptrdiff_t)nn * hsz + (row - k_in)];
}
if (i < (ptrdiff_t)hsz * n) { st[i] = zero_c0 ? (T)0 : c0[(ptrdiff_t)nn * hsz + i / n]; }""", "benchbench_lstm_sequence_pack")),
    # the backward's recurrent matrix from W_h (interleaved rows 4q + gate): block rows 0-4
    # [W_h^T x4 (gate blocks g0..g3) | 0 | I] (the output gradient of the step before), block rows 5-8
    # [0 | I | 0] (the carried cell gradient); (9H, 6H)
    "lstm_sequence_recurrent_matrix": ("elementwise", (
        "raw T wh, int32 hsz, int32 g0, int32 g1, int32 g2, int32 g3", "T wbig",
        """ptrdiff_t row = i / (6 * hsz);
int col = i % (6 * hsz);
int br = row / hsz;
int p = row % hsz;
int bc = col / hsz;
int q = col % hsz;
T v = (T)0;
if (br < 5 && bc < 4) {
  v = wh[(4 * (ptrdiff_t)q + (bc == 0 ? g0 : (bc == 1 ? g1 : (bc == 2 ? g2 : g3)))) * hsz + p];
} else if (p == q && ((br < 5 && bc == 5) || (br >= 5 && bc == 4))) {
  v = (T)1;
}
wbig = v""", "benchbench_lstm_sequence_recurrent_matrix")),
}


def lstm_step(xp, c_prev, x):
    """``(c, h)`` of one step from the interleaved pre-activations ``x`` (N, 4H)."""
    return get(*KERNELS["lstm_step"])(c_prev, xp.ascontiguousarray(x))


def lstm_step_grad(xp, c_prev, x, c, gc_out, gh):
    """``(gc_prev, gx)`` of one step."""
    gx = xp.empty(x.shape, dtype=x.dtype)
    gc_prev = xp.empty(c_prev.shape, dtype=c_prev.dtype)
    get(*KERNELS["lstm_step_grad"])(c_prev, xp.ascontiguousarray(x), c, gc_out, gh, gc_prev, gx)
    return gc_prev, gx


# Block orders of ``lstm_sequence`` (gate numbers 0..3 for a, i, f, o): forward [a, f, i, o], backward
# [o, a, f, i] (``functions.rnn``'s ``_FWD_GATES`` / ``_BWD_GATES``).
FWD_GATES = (0, 2, 1, 3)
BWD_GATES = (3, 0, 2, 1)


def _i32(*values):
    return tuple(numpy.int32(v) for v in values)


def _weights(xp, xs, has_bias, gates, scale):
    """``[W_x | b | W_h]`` (4H, K) with its rows in block order ``gates``, the sigmoid blocks times ``scale``."""
    w_x, w_h = xp.ascontiguousarray(xs[3]), xp.ascontiguousarray(xs[4])
    h4, in_size = w_x.shape
    hsz = w_h.shape[1]
    b = xp.ascontiguousarray(xs[5]) if has_bias else w_x
    w = xp.empty((h4, in_size + has_bias + hsz), dtype=w_x.dtype)
    get(*KERNELS["lstm_sequence_weights"])(w_x, b, w_h, *_i32(hsz, in_size, has_bias, *gates),
                                           w_x.dtype.type(scale), w)
    return w


def sequence_forward(xp, xs, has_bias, zero_state=(False, False)):
    """``lstm_sequence``'s forward (``functions.rnn.LSTMSequence``, same layouts) with its setup in two
    kernels: ``((h_seq, h_T, c_T), (xh, st, tcs))``, the latter kept for backward. ``zero_state``: for
    h0 and c0, whether to start from zeros instead (the array given is then not read)."""
    x_seq, h0, c0 = (xp.ascontiguousarray(a) for a in xs[:3])
    t_len, n, in_size = x_seq.shape
    hsz, dtype = h0.shape[1], x_seq.dtype
    k_in = in_size + has_bias
    w = _weights(xp, xs, has_bias, FWD_GATES, 0.5)  # sigmoid gates f, i, o: tanh(z/2)
    xh = xp.empty((t_len + 1, k_in + hsz, n), dtype=dtype)  # xh[t] = [x_t; 1; h_t]
    st = xp.empty((t_len + 1, 5, hsz, n), dtype=dtype)  # st[t] = [c_t, a, f, i, o]
    get(*KERNELS["lstm_sequence_pack"])(x_seq, h0, c0, *_i32(t_len, n, in_size, has_bias, hsz, *zero_state), xh,
                                        st, size=xh.size)
    z = st.reshape(t_len + 1, 5 * hsz, n)[:, hsz:]
    tcs = xp.empty((t_len, hsz, n), dtype=dtype)
    hx = xh[:, k_in:]
    h_seq = xp.empty((t_len, n, hsz), dtype=dtype)
    h_last, c_last = xp.empty((n, hsz), dtype=dtype), xp.empty((n, hsz), dtype=dtype)
    step = get(*KERNELS["lstm_sequence_step"])
    for t in range(t_len):
        s, last = st[t], t == t_len - 1
        xp.matmul(w, xh[t], out=z[t])
        step(s[0], s[1], s[2], s[3], s[4], c_last.T if last else st[t + 1, 0], tcs[t],
             h_last.T if last else hx[t + 1], h_seq[t].T)
    return (h_seq, h_last, c_last), (xh, st, tcs)


def sequence_backward(xp, xs, gys, saved, has_bias, need):
    """``lstm_sequence``'s backward from ``sequence_forward``'s kept arrays: per step one kernel and one
    GEMM; the recurrent matrix and the weight gradients' split one kernel each. ``gys``: the gradients
    of h_seq, h_T and c_T (the last two may be None: no gradient)."""
    gh_seq, gh_last, gc_last = gys
    xh, st, tcs = saved
    t_len, hsz, n = tcs.shape
    dtype = tcs.dtype
    gh_seq = xp.zeros((t_len, n, hsz), dtype=dtype) if gh_seq is None else xp.ascontiguousarray(gh_seq)
    in_size = xs[0].shape[2]
    k_in = in_size + has_bias
    c_prev, a, f, i, o = (st[:t_len, k] for k in range(5))
    buf = xp.empty((t_len, 10, hsz, n), dtype=dtype)  # [scratch x4, go, ga, gf, gi, carry, gh_seq[t-1]]
    gz = xp.empty((hsz, 4, t_len, n), dtype=dtype)  # gate gradients, rows 4j + gate (W_x's), columns (t, n)
    w_big = xp.empty((9 * hsz, 6 * hsz), dtype=dtype)
    get(*KERNELS["lstm_sequence_recurrent_matrix"])(xp.ascontiguousarray(xs[4]), *_i32(hsz, *BWD_GATES), w_big)
    m = xp.empty((9, hsz, n), dtype=dtype)  # [gh_{t-1} x5, carry x4] from each step's GEMM
    m2 = m.reshape(9 * hsz, n)
    rows = buf.reshape(t_len, 10 * hsz, n)[:, 4 * hsz:]
    step = get(*KERNELS["lstm_sequence_step_grad"])
    for t in range(t_len - 1, -1, -1):
        r, first = buf[t], t == t_len - 1
        gh_a = (gh_last.T if gh_last is not None else c_prev[t]) if first else m[0]
        carry = (gc_last.T if gc_last is not None else c_prev[t]) if first else m[5]
        step(gh_a, numpy.int32(not first or gh_last is not None), gh_seq, numpy.int32(first), carry,
             numpy.int32(not first or gc_last is not None), c_prev[t], a[t], f[t], i[t], o[t], tcs[t],
             *_i32(t, n, hsz), r[4], r[5], r[6], r[7], r[8], r[9], gz[:, 3, t], gz[:, 0, t], gz[:, 2, t], gz[:, 1, t])
        xp.matmul(w_big, rows[t], out=m2)
    gz = gz.reshape(4 * hsz, t_len * n)
    out = [(gz.T @ xs[3]).reshape(xs[0].shape) if need[0] else None,
           xp.ascontiguousarray(m[0].T) if need[1] else None, xp.ascontiguousarray(m[5].T) if need[2] else None,
           None, None] + [None] * has_bias
    if any(need[3:]):
        g_w = gz @ xh[:t_len].transpose(1, 0, 2).reshape(k_in + hsz, t_len * n).T  # (4H, K)
        gwx = xp.empty((4 * hsz, in_size), dtype=dtype)
        gwh = xp.empty((4 * hsz, hsz), dtype=dtype)
        gb = xp.empty(4 * hsz, dtype=dtype)
        get(*KERNELS["lstm_sequence_weight_grads"])(g_w, *_i32(hsz, in_size, has_bias), gwx, gb, gwh)
        out[3], out[4] = (gwx if need[3] else None), (gwh if need[4] else None)
        if has_bias and need[5]:
            out[5] = gb
    return tuple(out)
