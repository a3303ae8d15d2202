"""Data parallelism as a wrapper around an optimizer (the ChainerMN shape).

``setup(model)`` broadcasts every parameter from rank 0 once, so all ranks start from the
same weights. ``update()`` packs every gradient into the optimizer's flat gradient buffer (one
per dtype and device), all-reduces it (mean over ranks) and runs the inner optimizer's update
from it. Each rank trains on its own shard of every global batch; the mean of the shard-mean
gradients is the gradient of the global batch, so training matches one process with the same
global batch.
"""
from __future__ import annotations


from benchbench.core import backend
from benchbench.core.optimizers.wrapper import OptimizerWrapper


class DataParallelOptimizer(OptimizerWrapper):
    """Wrap ``inner`` so its updates are data parallel over ``comm``.

    Args:
        inner: an optimizer from ``benchbench.core.optimizers`` (not yet set up).
        comm: a communicator from ``benchbench.executor.communicators.create``.

    Attributes:
        last_allreduce_s: seconds the last gradient all-reduce took (device-synchronised).
        allreduce_bytes: bytes all-reduced per step.

    Example:
        >>> opt = DataParallelOptimizer(optimizers.Adam(), communicators.create("mpi"))
        >>> opt.setup(model)
        >>> loss.backward(); opt.update()
    """

    _own = OptimizerWrapper._own | {"comm", "last_allreduce_s", "allreduce_bytes", "_broadcast_layout"}

    def __init__(self, inner, comm):
        super().__init__(inner)
        self.comm = comm
        self.last_allreduce_s = 0.0
        self.allreduce_bytes = 0
        self._broadcast_layout = None

    def setup(self, link):
        """Set up the inner optimizer on ``link`` and broadcast its parameters from rank 0."""
        super().setup(link)
        self.broadcast_params()
        return self

    def _layout(self):
        return tuple(sorted(n for n, _ in self.target.namedparams(include_uninit=False)))

    def broadcast_params(self):
        """Give every rank rank 0's parameters (one broadcast per packed buffer)."""
        layout = self._layout()
        if layout:
            for group in self.inner.packed_groups():
                self.comm.broadcast(group.data, root=0)
        self._broadcast_layout = layout

    def update(self, lossfun=None, *args, **kwargs):
        """Optionally compute loss and gradients, then all-reduce them and run the inner update."""
        if lossfun is not None:
            self._grads_from(lossfun, *args, **kwargs)
        if self._layout() != self._broadcast_layout:
            # Lazily initialised parameters appeared at the first forward pass.
            self.broadcast_params()
        grads = self.pack_grads()
        if backend.capturing():  # captured into a CUDA graph: nothing may wait; the replay is timed whole
            for g in grads:
                self.comm.allreduce_mean(g)
            self.last_allreduce_s = 0.0
        else:
            with backend.synced_timer(grads[0] if grads else None) as span:  # the packed buffers share one device
                for g in grads:
                    self.comm.allreduce_mean(g)
            self.last_allreduce_s = span.seconds
        self.allreduce_bytes = int(sum(g.nbytes for g in grads))
        super().update_packed()


def average_persistents(model, comm) -> list[str]:
    """Average every floating-point persistent buffer of ``model`` over the ranks, in place.

    In data parallel each rank's BatchNormalization sees only its shard, so its running mean
    and variance drift apart from the other ranks'; validation and the final model would then
    depend on the rank. Called before every validation and at the end of training, this sets
    every rank's buffers to the mean over ranks (the running mean is then the running mean of
    the global batches; the running variance is the mean of the shards' running variances).
    Integer buffers (counters) are left alone.

    Args:
        model: a ``core.Link``.
        comm: the communicator (with ``allreduce_mean``).

    Returns:
        The names of the buffers averaged, in the (sorted) order every rank uses.
    """
    if comm is None or getattr(comm, "size", 1) <= 1:
        return []
    done = []
    for name, (link, attr) in sorted(model.namedpersistents(), key=lambda kv: kv[0]):
        value = getattr(link, attr, None)
        if backend.is_array(value) and value.dtype.kind == "f":
            comm.allreduce_mean(value)
            done.append(name)
    return done
