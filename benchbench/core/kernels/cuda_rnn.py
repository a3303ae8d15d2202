"""LSTM gates as one kernel each way (Chainer's ``lstm`` / ``lstm_grad`` kernels).

``lstm_step`` / ``lstm_step_grad`` work on the interleaved layout of ``functions.rnn.lstm`` (gate
``k`` of unit ``j`` in column ``4*j + k``); the backward recomputes the activations from the
pre-activations instead of keeping them. ``sequence_step`` / ``sequence_step_grad`` are the
per-step gate math of ``lstm_sequence`` on its feature-major blocks, between its per-step GEMMs.
Sigmoids go through tanh (``sigmoid(z) = tanh(z/2)/2 + 1/2``) as the unfused code does.
"""
from __future__ import annotations

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
    # get the activations, which backward reads again
    "lstm_sequence_step": ("elementwise", (
        "T c_prev", "T a, T f, T ig, T o, T c, T tc, T h",
        """a = tanh(a);
f = tanh(f) * (T)0.5 + (T)0.5;
ig = tanh(ig) * (T)0.5 + (T)0.5;
o = tanh(o) * (T)0.5 + (T)0.5;
c = c_prev * f + a * ig;
tc = tanh(c);
h = o * tc""", "benchbench_lstm_sequence_step")),
    "lstm_sequence_step_grad": ("elementwise", (
        "T gh, T carry, T c_prev, T a, T f, T ig, T o, T tc", "T go, T ga, T gf, T gi, T carry_out",
        """T gc = gh * (((T)1 - tc * tc) * o) + carry;
go = gh * (((T)1 - o) * o * tc);
ga = gc * (((T)1 - a * a) * ig);
gf = gc * (((T)1 - f) * f * c_prev);
gi = gc * (((T)1 - ig) * ig * a);
carry_out = gc * f""", "benchbench_lstm_sequence_step_grad")),
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


def sequence_step(c_prev, a, f, ig, o, c, tc, h):
    get(*KERNELS["lstm_sequence_step"])(c_prev, a, f, ig, o, c, tc, h)


def sequence_step_grad(gh, carry, c_prev, a, f, ig, o, tc, go, ga, gf, gi, carry_out):
    get(*KERNELS["lstm_sequence_step_grad"])(gh, carry, c_prev, a, f, ig, o, tc, go, ga, gf, gi, carry_out)
