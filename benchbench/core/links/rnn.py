"""LSTM links: a stateful step-by-step ``LSTM`` and a fused whole-sequence ``LSTMSequence``.

Both hold their gate weights in Chainer's interleaved gate layout (see
``functions.rnn``), so ``LSTMSequence.W_x``, ``W_h``, ``b`` equal ``LSTM.upward.W``,
``lateral.W`` and ``upward.b`` for the same network.
"""
from __future__ import annotations

import numpy

from .. import backend
from ..backend import get_array_module
from ..config import config
from ..functions.rnn import lstm, lstm_sequence
from ..link import Link
from ..mixed_precision import to_compute_dtype
from ..variable import Parameter, Variable
from .connection import Linear, _check_size


def _forget_bias_init(b_array, out_size, forget_bias):
    # Gate k of unit j sits in column 4*j + k; the forget gate is k == 2.
    b_array.reshape(out_size, 4)[:, 2] = forget_bias


class LSTM(Link):
    """Stateful LSTM layer (Chainer's ``L.LSTM``): ``h = lstm(c, upward(x) + lateral(h))``.

    Args:
        in_size: input size, or None to infer it at the first call. ``LSTM(out)`` is
            ``LSTM(None, out)``.
        out_size: number of units H.
        lateral_init, upward_init: initializers of the two weight matrices (default LeCunNormal).
        forget_bias_init: the forget gates' bias (default 1; the other gates' bias is 0).

    Attributes:
        c, h: the cell state and the output of the last step (Variables), or None after
            ``reset_state()``.

    Example:
        >>> rnn = LSTM(5, 5)
        >>> rnn.reset_state()
        >>> for x in xs: y = rnn(x)
    """

    def __init__(self, in_size, out_size=None, lateral_init=None, upward_init=None, forget_bias_init=1.0):
        super().__init__()
        if out_size is None:
            in_size, out_size = None, in_size
        in_size = _check_size("LSTM", "in_size", in_size, True)
        self.out_size = _check_size("LSTM", "out_size", out_size, False)
        self.upward = Linear(in_size, 4 * self.out_size, initialW=upward_init)
        self.lateral = Linear(self.out_size, 4 * self.out_size, nobias=True, initialW=lateral_init)
        _forget_bias_init(self.upward.b.array, self.out_size, forget_bias_init)
        self.reset_state()

    def reset_state(self):
        """Forget the cell state and the last output."""
        self.c = None
        self.h = None

    def set_state(self, c, h):
        """Set the cell state and the last output (Variables or arrays of shape (N, H))."""
        self.c = c if isinstance(c, Variable) or c is None else Variable(c, requires_grad=False)
        self.h = h if isinstance(h, Variable) or h is None else Variable(h, requires_grad=False)

    def _move_own_arrays(self, device):
        super()._move_own_arrays(device)
        for name in ("c", "h"):
            v = getattr(self, name)
            if v is not None:
                v.array = backend.to_device(v.array, device)

    def forward(self, x):
        lstm_in = self.upward(x)
        if self.h is not None:
            lstm_in = lstm_in + self.lateral(self.h)
        c = self.c
        if c is None:
            xp = get_array_module(lstm_in)
            c = xp.zeros((lstm_in.shape[0], self.out_size), dtype=lstm_in.dtype)
        elif config.compute_dtype is not None:
            (c,) = to_compute_dtype(lstm_in.dtype, c)
        self.c, self.h = lstm(c, lstm_in)
        return self.h

    def __repr__(self):
        return f"LSTM({self.upward.in_size}, {self.out_size})"


class LSTMSequence(Link):
    """An LSTM layer that runs a whole sequence in one fused Function (``functions.lstm_sequence``).

    Stateless: pass the initial state and get the final one back. Under
    ``config.compute_dtype`` the inputs, the state and the parameters are cast to it at use.

    Args:
        in_size: input size, or None to infer it at the first call. ``LSTMSequence(out)`` is
            ``LSTMSequence(None, out)``.
        out_size: number of units H.
        lateral_init, upward_init: initializers of ``W_h`` and ``W_x`` (default LeCunNormal).
        forget_bias_init: the forget gates' bias (default 1; the other gates' bias is 0).

    Example:
        >>> seq = LSTMSequence(5, 5)
        >>> h_seq, h, c = seq(x_seq)            # x_seq (T, N, 5) -> h_seq (T, N, 5)
    """

    def __init__(self, in_size, out_size=None, lateral_init=None, upward_init=None, forget_bias_init=1.0):
        super().__init__()
        if out_size is None:
            in_size, out_size = None, in_size
        self.in_size = _check_size("LSTMSequence", "in_size", in_size, True)
        self.out_size = _check_size("LSTMSequence", "out_size", out_size, False)
        h4 = 4 * self.out_size
        self.W_x = Parameter(upward_init)
        if self.in_size is not None:
            self.W_x.initialize((h4, self.in_size))
        self.W_h = Parameter(lateral_init, shape=(h4, self.out_size))
        self.b = Parameter(numpy.zeros(h4, numpy.float32))
        _forget_bias_init(self.b.array, self.out_size, forget_bias_init)

    def forward(self, x_seq, h0=None, c0=None):
        """Run the sequence.

        Args:
            x_seq: inputs, shape ``(T, N, in)``.
            h0, c0: initial output and cell state ``(N, H)``, or None for zeros.

        Returns:
            ``(h_seq, h_T, c_T)`` as :func:`~benchbench.core.functions.lstm_sequence`.
        """
        if self.W_x.array is None:
            if len(x_seq.shape) != 3:
                raise ValueError(f"LSTMSequence: x_seq must be (T, N, in), got shape {tuple(x_seq.shape)}")
            self.in_size = int(x_seq.shape[2])
            self.W_x.initialize((4 * self.out_size, self.in_size), xp=get_array_module(x_seq))
        dt = config.compute_dtype
        if dt is None:
            return lstm_sequence(x_seq, h0, c0, self.W_x, self.W_h, self.b)
        return lstm_sequence(*to_compute_dtype(dt, x_seq, h0, c0, self.W_x, self.W_h, self.b))

    def __repr__(self):
        return f"LSTMSequence({self.in_size}, {self.out_size})"
