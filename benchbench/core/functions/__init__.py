"""Differentiable functions, Chainer's names and argument orders (``import ... as F``)."""
from .activation import *  # noqa: F401,F403
from .array import *  # noqa: F401,F403
from .connection import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .evaluation import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .math import *  # noqa: F401,F403
from .noise import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .reductions import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
