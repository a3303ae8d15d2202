"""BatchNormalization link: learned scale and shift, running statistics for inference."""
from __future__ import annotations

import numpy

from ..config import config
from ..functions import normalization as _norm
from ..functions.array import cast
from ..link import Link
from ..variable import Parameter


class BatchNormalization(Link):
    """Batch normalization over every axis but the channel axis 1 (Chainer's ``L.BatchNormalization``).

    In training (``config.train`` True) the batch statistics normalise the input and update
    the running averages ``avg_mean`` / ``avg_var`` (persistent buffers) with
    ``avg = decay * avg + (1 - decay) * batch_stat``; otherwise the running averages are used.
    Under ``config.compute_dtype`` (mixed precision) the input is cast up to the parameters'
    dtype, normalised there (a float16 sum of squares overflows) and the output cast back.

    Args:
        size: number of channels (int), or the shape of ``gamma`` (tuple).
        decay: running-average decay.
        eps: added to the variance.
        dtype: parameter dtype.
        use_gamma: learn a scale (otherwise fixed at 1).
        use_beta: learn a shift (otherwise fixed at 0).

    Example:
        >>> bn = BatchNormalization(64)      # after a Convolution2D(None, 64, 3, pad=1)
    """

    def __init__(self, size, decay=0.9, eps=2e-5, dtype=numpy.float32, use_gamma=True, use_beta=True):
        super().__init__()
        if isinstance(size, (int, numpy.integer)) and not isinstance(size, bool):
            size = (int(size),)
        if (not isinstance(size, tuple) or not size
                or not all(isinstance(s, (int, numpy.integer)) and not isinstance(s, bool) and s > 0 for s in size)):
            raise ValueError(f"BatchNormalization: size must be a positive int or a tuple of them, got {size!r}")
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"BatchNormalization: decay must be in [0, 1), got {decay!r}")
        if not float(eps) > 0.0:
            raise ValueError(f"BatchNormalization: eps must be positive, got {eps!r}")
        dtype = numpy.dtype(dtype)
        self.size = size
        self.decay = float(decay)
        self.eps = float(eps)
        self.gamma = Parameter(numpy.ones(size, dtype)) if use_gamma else None
        self.beta = Parameter(numpy.zeros(size, dtype)) if use_beta else None
        self.add_persistent("avg_mean", numpy.zeros(size, dtype))
        self.add_persistent("avg_var", numpy.ones(size, dtype))
        self.add_persistent("N", 0)

    def forward(self, x, activation=None):
        """Normalise ``x`` (with the batch's statistics in training, the running ones otherwise),
        then ``activation`` when given: a ReLU is fused into the normalisation where it can be
        (``functions.batch_normalization``)."""
        dt = config.compute_dtype
        if dt is not None:
            x = cast(x, self.avg_mean.dtype)
        xp = self.xp
        dtype = self.avg_mean.dtype
        gamma = self.gamma if self.gamma is not None else xp.ones(self.size, dtype)
        beta = self.beta if self.beta is not None else xp.zeros(self.size, dtype)
        fused = config.train and dt is None  # the activation goes into the normalisation
        if config.train:
            self.N += 1
            y = _norm.batch_normalization(
                x, gamma, beta, eps=self.eps, running_mean=self.avg_mean, running_var=self.avg_var,
                decay=self.decay, activation=activation if fused else None,
            )
        else:
            y = _norm.fixed_batch_normalization(x, gamma, beta, self.avg_mean, self.avg_var, eps=self.eps)
        y = y if dt is None else cast(y, dt)
        return y if activation is None or fused else activation(y)

    def __repr__(self):
        return f"BatchNormalization({self.size}, decay={self.decay}, eps={self.eps})"
