"""benchbench.core: a small define-by-run framework (numpy on the CPU, cupy on GPUs).

Example:
    >>> from benchbench.core import functions as F, links as L, optimizers, seed
    >>> seed(0)
    >>> model = L.Sequential(L.Linear(None, 100), F.relu, L.Linear(None, 10))
    >>> opt = optimizers.Adam(); opt.setup(model)
"""
from . import backend, config as _config_module, initializers  # noqa: F401
from .backend import Device, get_array_module, cuda_available  # noqa: F401
from .config import config, no_backprop_mode, using_config  # noqa: F401
from .function import Function  # noqa: F401
from .random import seed  # noqa: F401
from .variable import Parameter, Variable, as_variable  # noqa: F401


def __getattr__(name):
    # functions, links, optimizers, serializers load on first use: no import-time work.
    import importlib

    if name in ("functions", "links", "optimizers", "serializers", "gradient_check", "profiler"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'benchbench.core' has no attribute {name!r}")
