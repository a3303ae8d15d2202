"""Links with parameters, Chainer's names and argument orders (``import ... as L``).

Example:
    >>> from benchbench.core import links as L, functions as F
    >>> model = L.Sequential(L.Linear(None, 100), F.relu, L.Linear(None, 10))
"""
from ..link import Chain, ChainList, Link, Sequential  # noqa: F401
from .connection import Convolution2D, Linear  # noqa: F401
from .normalization import BatchNormalization  # noqa: F401
from .rnn import LSTM, LSTMSequence  # noqa: F401

__all__ = [
    "Link", "Chain", "ChainList", "Sequential",
    "Linear", "Convolution2D", "BatchNormalization", "LSTM", "LSTMSequence",
]
