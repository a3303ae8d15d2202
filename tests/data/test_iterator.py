import numpy as np
import pytest

from benchbench.data import BatchIterator


def _data(n=23):
    return np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n, dtype=np.int32)


def test_fixed_size_batches_drop_incomplete_last():
    x, t = _data(23)
    it = BatchIterator((x, t), batch_size=5, seed=0)
    assert it.batches_per_epoch == len(it) == 4
    seen = []
    for _ in range(4):
        xb, tb = next(it)
        assert xb.shape == (5, 2) and tb.shape == (5,)
        np.testing.assert_array_equal(xb[:, 0], 2 * tb)  # rows stay paired
        seen.extend(tb.tolist())
    assert len(set(seen)) == 20 and it.epoch == 1 and it.is_new_epoch


def test_epoch_bookkeeping():
    x, t = _data(10)
    it = BatchIterator((x, t), batch_size=3, seed=0)
    assert it.epoch == 0 and it.epoch_detail == 0.0 and not it.is_new_epoch
    next(it)
    assert it.epoch_detail == pytest.approx(1 / 3) and not it.is_new_epoch
    next(it), next(it)
    assert it.epoch == 1 and it.is_new_epoch and it.epoch_detail == 1.0
    next(it)
    assert not it.is_new_epoch and it.iteration == 4


def test_shuffle_is_seeded_and_changes_every_epoch():
    x, t = _data(40)

    def epochs(seed, n=3):
        it = BatchIterator(t, batch_size=10, seed=seed)
        return [np.concatenate([next(it)[0] for _ in range(4)]) for _ in range(n)]

    a, b, c = epochs(1), epochs(1), epochs(2)
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], c[0])
    assert all(sorted(e.tolist()) == list(range(40)) for e in a)
    assert not np.array_equal(a[0], np.arange(40))


def test_reset_replays_the_same_order():
    _, t = _data(30)
    it = BatchIterator(t, batch_size=7, seed=3)
    first = [next(it)[0] for _ in range(9)]
    it.reset()
    assert it.epoch == 0 and it.iteration == 0
    for f in first:
        np.testing.assert_array_equal(next(it)[0], f)


def test_no_shuffle_keeps_order_and_returns_copies():
    x, t = _data(12)
    it = BatchIterator((x, t), batch_size=4, shuffle=False)
    xb, tb = next(it)
    np.testing.assert_array_equal(tb, [0, 1, 2, 3])
    xb[:] = -1
    assert x.min() >= 0


@pytest.mark.parametrize("size", [2, 3, 4])
def test_shards_union_equals_single_process_global_batch(size):
    x, t = _data(50)
    per_rank = 4
    single = BatchIterator((x, t), batch_size=per_rank * size, seed=11)
    ranks = [BatchIterator((x, t), batch_size=per_rank, seed=11, rank=r, size=size) for r in range(size)]
    assert all(r.batches_per_epoch == single.batches_per_epoch for r in ranks)
    for _ in range(3 * single.batches_per_epoch):  # across several epochs
        xs, ts = next(single)
        parts = [next(r) for r in ranks]
        assert all(len(p[1]) == per_rank for p in parts)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), ts)
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), xs)
        assert len(set(np.concatenate([p[1] for p in parts]).tolist())) == per_rank * size  # disjoint
        assert all(r.is_new_epoch == single.is_new_epoch and r.epoch == single.epoch for r in ranks)


def test_validation_mode_covers_every_sample_once():
    x, t = _data(23)
    it = BatchIterator((x, t), batch_size=5, shuffle=False, repeat=False)
    batches = list(it)
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3] and it.batches_per_epoch == 5
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), t)
    with pytest.raises(StopIteration):
        next(it)
    it.reset()
    assert len(list(it)) == 5


def test_validation_mode_sharded_covers_every_sample_once():
    x, t = _data(23)
    shards = [list(BatchIterator((x, t), batch_size=4, shuffle=False, repeat=False, rank=r, size=2))
              for r in range(2)]
    got = np.sort(np.concatenate([b[1] for shard in shards for b in shard]))
    np.testing.assert_array_equal(got, t)
    assert [len(b[1]) for b in shards[0]] == [4, 4, 3] and [len(b[1]) for b in shards[1]] == [4, 4, 4]


def test_validation():
    x, t = _data(10)
    with pytest.raises(ValueError, match="BatchIterator: arrays must have the same length"):
        BatchIterator((x, t[:5]), 2)
    with pytest.raises(TypeError, match="BatchIterator: arrays must be"):
        BatchIterator([], 2)
    with pytest.raises(ValueError, match="BatchIterator: rank must be < size"):
        BatchIterator(t, 2, rank=2, size=2)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        BatchIterator(t, 4, size=3)
    with pytest.raises(TypeError, match="BatchIterator: batch_size must be an int"):
        BatchIterator(t, 2.0)
