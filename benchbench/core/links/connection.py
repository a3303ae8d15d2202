"""Linear and Convolution2D links (weights ``(out, in)`` and ``(out, in, kh, kw)``, Chainer's layout)."""
from __future__ import annotations

import numpy

from .. import initializers
from ..backend import get_array_module
from ..config import config
from ..functions.connection import convolution_2d, linear
from ..link import Link
from ..mixed_precision import to_compute_dtype
from ..variable import Parameter


def _check_size(cls, argname, value, allow_none):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value <= 0:
        raise ValueError(f"{cls}: {argname} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _bias_initializer(initial_bias):
    return initializers.Zero() if initial_bias is None else initial_bias


class Linear(Link):
    """Fully connected layer ``y = x W^T + b`` (Chainer's ``L.Linear``).

    Every axis of the input after the first is flattened into the input size. Under
    ``config.compute_dtype`` the input and the parameters are cast to it at use.

    Args:
        in_size: input size, or None to infer it from the first input (``W`` is then created
            on that input's device). ``Linear(out)`` is accepted as ``Linear(None, out)``.
        out_size: output size.
        nobias: no bias term.
        initialW: initializer for ``W`` (default LeCunNormal), or an array.
        initial_bias: initializer or scalar for ``b`` (default 0), or an array.

    Example:
        >>> fc = Linear(None, 10)     # W gets shape (10, 784) at the first call on (N, 784) data
    """

    def __init__(self, in_size, out_size=None, nobias=False, initialW=None, initial_bias=None):
        super().__init__()
        if out_size is None:
            in_size, out_size = None, in_size
        self.in_size = _check_size("Linear", "in_size", in_size, True)
        self.out_size = _check_size("Linear", "out_size", out_size, False)
        self.W = Parameter(initialW)
        if self.in_size is not None and self.W.array is None:
            self.W.initialize((self.out_size, self.in_size))
        if nobias:
            self.b = None
        else:
            self.b = Parameter(_bias_initializer(initial_bias))
            if self.b.array is None:
                self.b.initialize((self.out_size,))

    def forward(self, x, activation=None):
        """``x W^T + b``, or ``activation(x W^T + b)`` (fused on a GPU where ``linear`` fuses it)."""
        if self.W.array is None:
            shape = x.shape
            if len(shape) < 2:
                raise ValueError(f"Linear: input must have a batch axis and features, got shape {tuple(shape)}")
            self.in_size = int(numpy.prod(shape[1:]))
            self.W.initialize((self.out_size, self.in_size), xp=get_array_module(x))
        dt = config.compute_dtype
        if dt is None:
            return linear(x, self.W, self.b, activation=activation)
        return linear(*to_compute_dtype(dt, x, self.W, self.b), activation=activation)

    def __repr__(self):
        return f"Linear({self.in_size}, {self.out_size}, nobias={self.b is None})"


class Convolution2D(Link):
    """Two-dimensional convolution layer (Chainer's ``L.Convolution2D``).

    Under ``config.compute_dtype`` the input and the parameters are cast to it at use.

    Args:
        in_channels: input channels, or None to infer them from the first input.
            ``Convolution2D(out, k)`` is accepted as ``Convolution2D(None, out, k)``.
        out_channels: output channels.
        ksize: kernel size, int or ``(kh, kw)``.
        stride: int or ``(sy, sx)``.
        pad: int or ``(ph, pw)``.
        nobias: no bias term.
        initialW: initializer for ``W`` (default LeCunNormal), or an array.
        initial_bias: initializer or scalar for ``b`` (default 0), or an array.

    Example:
        >>> conv = Convolution2D(None, 32, 5)     # W (32, C, 5, 5) once C is seen
    """

    def __init__(self, in_channels, out_channels, ksize=None, stride=1, pad=0, nobias=False,
                 initialW=None, initial_bias=None):
        super().__init__()
        if ksize is None:
            in_channels, out_channels, ksize = None, in_channels, out_channels
        self.in_channels = _check_size("Convolution2D", "in_channels", in_channels, True)
        self.out_channels = _check_size("Convolution2D", "out_channels", out_channels, False)
        self.ksize = self._pair("ksize", ksize, 1)
        self.stride = self._pair("stride", stride, 1)
        self.pad = self._pair("pad", pad, 0)
        self.W = Parameter(initialW)
        if self.in_channels is not None and self.W.array is None:
            self.W.initialize((self.out_channels, self.in_channels) + self.ksize)
        if nobias:
            self.b = None
        else:
            self.b = Parameter(_bias_initializer(initial_bias))
            if self.b.array is None:
                self.b.initialize((self.out_channels,))

    @staticmethod
    def _pair(argname, value, minimum):
        pair = (value, value) if isinstance(value, (int, numpy.integer)) and not isinstance(value, bool) else value
        if (not isinstance(pair, (tuple, list)) or len(pair) != 2
                or not all(isinstance(v, (int, numpy.integer)) and not isinstance(v, bool) and v >= minimum
                           for v in pair)):
            raise ValueError(f"Convolution2D: {argname} must be an int or a pair of ints >= {minimum}, got {value!r}")
        return int(pair[0]), int(pair[1])

    def forward(self, x):
        if self.W.array is None:
            if len(x.shape) != 4:
                raise ValueError(f"Convolution2D: input must be (N, C, H, W), got shape {tuple(x.shape)}")
            self.in_channels = int(x.shape[1])
            self.W.initialize((self.out_channels, self.in_channels) + self.ksize, xp=get_array_module(x))
        dt = config.compute_dtype
        if dt is None:
            return convolution_2d(x, self.W, self.b, stride=self.stride, pad=self.pad)
        x, W, b = to_compute_dtype(dt, x, self.W, self.b)
        return convolution_2d(x, W, b, stride=self.stride, pad=self.pad)

    def __repr__(self):
        return (f"Convolution2D({self.in_channels}, {self.out_channels}, ksize={self.ksize}, "
                f"stride={self.stride}, pad={self.pad})")

