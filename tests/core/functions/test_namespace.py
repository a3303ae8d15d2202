"""``benchbench.core.functions`` (``F``) exports functions only: speed machinery (algorithm
choices, kernels, geometry helpers) lives in ``core/kernels``, not beside ``F.relu``."""
import inspect

from benchbench.core import functions as F


def test_F_exports_only_functions():
    public = {n: getattr(F, n) for n in dir(F) if not n.startswith("_")}
    others = sorted(n for n, v in public.items() if not inspect.ismodule(v) and not inspect.isfunction(v))
    assert not others, f"F exports things that are not functions: {others}"
    assert not hasattr(F, "use_winograd") and not hasattr(F, "conv_algorithm")
    assert callable(F.convolution_2d) and callable(F.relu)
