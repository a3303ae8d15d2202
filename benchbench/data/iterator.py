"""Mini-batch iteration: seeded shuffling, fixed-size batches, sharding for data parallelism."""
from collections.abc import Sequence

import numpy as np


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"BatchIterator: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"BatchIterator: {name} must be >= {minimum}, got {value}")
    return int(value)


class BatchIterator:
    """Iterates over mini-batches of a tuple of arrays that share their first axis.

    Every epoch the sample order is a new permutation drawn from a numpy Generator seeded with
    ``seed``; all ranks draw the same permutations, so their shards are disjoint. One *global*
    batch holds ``batch_size * size`` samples and rank ``r`` gets its ``r``-th contiguous slice,
    so the union of the ranks' batches is exactly the batch a single process would get with
    ``batch_size * size`` and the same seed: data-parallel training sees the same data as
    single-process training with the same global batch.

    With ``repeat=True`` (training) the iterator never ends and drops each epoch's incomplete
    last global batch. With ``repeat=False`` (validation) it stops after one epoch and, unless
    ``drop_last=True``, yields the last, smaller global batch too, split as evenly as possible
    over the ranks. Batches are fresh arrays taken with index arrays; the dataset is never
    copied as a whole.

    Args:
        arrays: an array or a sequence of arrays with the same length (e.g. ``(x, t)``).
        batch_size: samples per batch on this rank.
        shuffle: draw a new order every epoch (otherwise the stored order).
        seed: seed of the order; use the run's seed.
        rank: this process's rank, ``0 <= rank < size``.
        size: number of data-parallel processes.
        repeat: iterate forever (True) or for one epoch (False).
        drop_last: drop an incomplete last global batch; default: True when repeating, else False.

    Example:
        >>> x, t = np.arange(10.0), np.arange(10)
        >>> it = BatchIterator((x, t), batch_size=4, seed=0)
        >>> xb, tb = next(it)
        >>> xb.shape, it.batches_per_epoch
        ((4,), 2)
    """

    def __init__(self, arrays, batch_size: int, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 size: int = 1, repeat: bool = True, drop_last: bool | None = None):
        if hasattr(arrays, "shape"):
            arrays = (arrays,)
        if not isinstance(arrays, Sequence) or not arrays or not all(hasattr(a, "shape") for a in arrays):
            raise TypeError(f"BatchIterator: arrays must be an array or a non-empty sequence of arrays, "
                            f"got {type(arrays).__name__}")
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"BatchIterator: arrays must have the same length, got {[len(a) for a in arrays]}")
        self.arrays = tuple(arrays)
        self.n = lengths.pop()
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.size = _check_int("size", size, 1)
        self.rank = _check_int("rank", rank, 0)
        if self.rank >= self.size:
            raise ValueError(f"BatchIterator: rank must be < size, got rank={rank}, size={size}")
        self.seed = _check_int("seed", seed, 0)
        self.shuffle = bool(shuffle)
        self.repeat = bool(repeat)
        self.drop_last = self.repeat if drop_last is None else bool(drop_last)
        self.global_batch_size = self.batch_size * self.size
        full, rest = divmod(self.n, self.global_batch_size)
        self.batches_per_epoch = full + (1 if rest and not self.drop_last else 0)
        if self.batches_per_epoch == 0:
            raise ValueError(f"BatchIterator: {self.n} samples are fewer than one global batch "
                             f"(batch_size {self.batch_size} x size {self.size}) and drop_last is set")
        self.reset()

    def reset(self) -> None:
        """Start again from epoch 0 with the seed's first order."""
        self._rng = np.random.default_rng(self.seed)
        self.epoch = 0
        self.iteration = 0
        self.is_new_epoch = False
        self._position = 0  # global batches taken in the current epoch
        self._order = self._new_order()
        self._done = False

    def _new_order(self) -> np.ndarray | None:
        return self._rng.permutation(self.n) if self.shuffle else None

    @property
    def epoch_detail(self) -> float:
        """Epochs done, with the fraction of the current one: ``epoch + position / batches_per_epoch``."""
        return self.epoch + self._position / self.batches_per_epoch

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __next__(self) -> tuple:
        if self._done:
            raise StopIteration
        start = self._position * self.global_batch_size
        stop = min(start + self.global_batch_size, self.n)
        m = stop - start
        lo, hi = start + (m * self.rank) // self.size, start + (m * (self.rank + 1)) // self.size
        if self._order is None:
            batch = tuple(a[lo:hi].copy() for a in self.arrays)
        else:
            idx = self._order[lo:hi]
            batch = tuple(a[idx] for a in self.arrays)
        self.iteration += 1
        self._position += 1
        self.is_new_epoch = self._position == self.batches_per_epoch
        if self.is_new_epoch:
            self.epoch += 1
            self._position = 0
            if self.repeat:
                self._order = self._new_order()
            else:
                self._done = True
        return batch

    next = __next__
