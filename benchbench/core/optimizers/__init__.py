"""Optimizers (Chainer's names): ``opt = Adam(); opt.setup(model); ...; opt.update()``.

Parameters are packed into flat buffers and updated with a few in-place array
operations; see ``optimizer.py`` for the packing and for ``flat_grad()``.
"""
from .adam import Adam  # noqa: F401
from .momentum_sgd import MomentumSGD  # noqa: F401
from .hooks import GradientClipping, GradientHardClipping, WeightDecay  # noqa: F401
from .optimizer import Hyperparameter, Optimizer, PackedGroup  # noqa: F401
from .sgd import SGD  # noqa: F401
from .wrapper import OptimizerWrapper  # noqa: F401

__all__ = [
    "Optimizer", "Hyperparameter", "PackedGroup", "SGD", "MomentumSGD", "Adam",
    "WeightDecay", "GradientClipping", "GradientHardClipping", "OptimizerWrapper",
]
