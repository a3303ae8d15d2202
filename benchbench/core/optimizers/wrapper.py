"""The base of optimizers that wrap another one (data parallel, mixed precision).

A wrapper owns a few attributes of its own (``_own``) and forwards everything else to the
inner optimizer: reading ``opt.lr``, ``opt.t`` or ``opt.add_hook`` reads the inner one's, and
``opt.lr = 0.01`` (a learning-rate schedule) sets the inner one's. ``setup``, ``pack_grads``
and ``update_packed`` keep the inner optimizer's protocol, so wrappers nest:
``DataParallelOptimizer(MixedPrecisionOptimizer(Adam()), comm)``.
"""
from __future__ import annotations

__all__ = ["OptimizerWrapper"]


class OptimizerWrapper:
    """Forward attribute access, hyper-parameters, hooks and the packed-update protocol to ``inner``.

    Subclasses extend ``_own`` with the names of their own attributes (every other name is the
    inner optimizer's) and override ``update`` / ``update_packed`` with what they add.

    Args:
        inner: an optimizer from ``benchbench.core.optimizers``, or another wrapper of one.

    Attributes:
        inner: the wrapped optimizer.
        target: the link given to :meth:`setup` (None before).

    Raises:
        TypeError: ``inner`` lacks the packed-update protocol of a benchbench optimizer.

    Example:
        >>> class Logged(OptimizerWrapper):
        ...     def update_packed(self):
        ...         print("step", self.t)
        ...         super().update_packed()
    """

    _own = frozenset({"inner", "target"})
    _protocol = ("pack_grads", "update_packed", "packed_groups", "setup")

    def __init__(self, inner):
        if not all(hasattr(inner, a) for a in self._protocol):
            raise TypeError(
                f"{type(self).__name__}: inner must be a benchbench optimizer, got {type(inner).__name__}"
            )
        self.__dict__["inner"] = inner
        self.__dict__["target"] = None

    def __getattr__(self, name):
        # Called only for names the wrapper does not have: they are the inner optimizer's.
        if name in type(self)._own:
            raise AttributeError(name)
        return getattr(self.__dict__["inner"], name)

    def __setattr__(self, name, value):
        if name in type(self)._own:
            self.__dict__[name] = value
        else:
            setattr(self.inner, name, value)

    def setup(self, link):
        """Set up the inner optimizer on ``link``; returns self."""
        self.inner.setup(link)
        self.target = link
        return self

    def pack_grads(self):
        """Pack the gradients into the inner optimizer's flat buffers; returns them."""
        return self.inner.pack_grads()

    def update_packed(self):
        """Run the inner optimizer's update from its packed gradients."""
        self.inner.update_packed()

    def _grads_from(self, lossfun, *args, **kwargs):
        """Clear the target's gradients, compute ``lossfun(*args, **kwargs)`` and back-propagate it.

        The loss goes through this wrapper's ``backward`` (or the inner chain's: loss scaling
        under mixed precision) when there is one, else through ``loss.backward()``.
        """
        self.target.cleargrads()
        loss = lossfun(*args, **kwargs)
        backward = getattr(self, "backward", None)
        backward(loss) if backward is not None else loss.backward()
