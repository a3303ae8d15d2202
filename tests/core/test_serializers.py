"""save_npz / load_npz: round trip, name and shape checks, atomic writes."""
import os

import numpy
import pytest

from benchbench.core import links as L
from benchbench.core import optimizers, seed
from benchbench.core.link import Chain
from benchbench.core.serializers import load_npz, save_npz


class Net(Chain):
    def __init__(self, hidden=4):
        super().__init__()
        self.fc = L.Linear(3, hidden)
        self.bn = L.BatchNormalization(hidden)
        self.out = L.Linear(None, 2)

    def forward(self, x):
        return self.out(self.bn(self.fc(x)))


def _trained():
    m = Net()
    m(numpy.random.default_rng(0).standard_normal((8, 3)).astype(numpy.float32))
    return m


def test_round_trip(tmp_path):
    a = _trained()
    path = tmp_path / "model.npz"
    save_npz(path, a)
    with numpy.load(path) as f:
        assert sorted(f.files) == ["bn/N", "bn/avg_mean", "bn/avg_var", "bn/beta", "bn/gamma",
                                   "fc/W", "fc/b", "out/W", "out/b"]
    seed(5)
    b = Net()
    b(numpy.zeros((1, 3), numpy.float32))
    load_npz(path, b)
    for (n, p), (_, q) in zip(a.namedparams(), b.namedparams()):
        numpy.testing.assert_array_equal(p.array, q.array, err_msg=n)
    numpy.testing.assert_array_equal(a.bn.avg_mean, b.bn.avg_mean)
    assert b.bn.N == a.bn.N == 1 and isinstance(b.bn.N, int)


def test_load_initialises_lazy_params(tmp_path):
    a = _trained()
    save_npz(tmp_path / "m.npz", a, compression=True)
    b = Net()
    assert b.out.W.array is None
    load_npz(tmp_path / "m.npz", b)
    numpy.testing.assert_array_equal(b.out.W.array, a.out.W.array)


def test_load_keeps_optimizer_packing(tmp_path):
    a = _trained()
    save_npz(tmp_path / "m.npz", a)
    b = _trained()
    opt = optimizers.SGD().setup(b)
    flat = opt.flat_param()
    load_npz(tmp_path / "m.npz", b)
    assert numpy.shares_memory(b.fc.W.array, flat)
    numpy.testing.assert_array_equal(b.fc.W.array, a.fc.W.array)


def test_shape_mismatch_names_the_key(tmp_path):
    save_npz(tmp_path / "m.npz", L.Linear(3, 4))
    b = L.Linear(3, 5)
    before = b.W.array.copy()
    with pytest.raises(ValueError, match=r"load_npz: shape mismatch for 'W'.*\(4, 3\).*\(5, 3\)"):
        load_npz(tmp_path / "m.npz", b)
    numpy.testing.assert_array_equal(b.W.array, before)  # nothing loaded
    save_npz(tmp_path / "n.npz", Net(hidden=4))
    with pytest.raises(ValueError, match=r"shape mismatch for 'bn/beta'"):
        load_npz(tmp_path / "n.npz", Net(hidden=5))


def test_missing_and_unexpected_keys(tmp_path):
    save_npz(tmp_path / "lin.npz", L.Linear(3, 4, nobias=True))
    with pytest.raises(ValueError, match="no entry 'b'"):
        load_npz(tmp_path / "lin.npz", L.Linear(3, 4))
    save_npz(tmp_path / "lin_b.npz", L.Linear(3, 4))
    with pytest.raises(ValueError, match=r"entries the link does not have: \['b'\]"):
        load_npz(tmp_path / "lin_b.npz", L.Linear(3, 4, nobias=True))
    load_npz(tmp_path / "lin_b.npz", L.Linear(3, 4, nobias=True), strict=False)


def test_atomic_write_leaves_no_temp_and_replaces(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    save_npz(str(path), L.Linear(2, 2))
    assert os.listdir(tmp_path) == ["m.npz"]
    with numpy.load(path) as f:
        assert set(f.files) == {"W", "b"}


def test_failed_write_keeps_old_file(tmp_path):
    class Exploding(L.Linear):
        def namedpersistents(self):
            raise OSError("disk full")

    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    with pytest.raises(OSError):
        save_npz(path, Exploding(2, 2))
    assert path.read_bytes() == b"old"


def test_errors(tmp_path):
    with pytest.raises(TypeError, match="save_npz: link"):
        save_npz(tmp_path / "x.npz", object())
    with pytest.raises(FileNotFoundError, match="load_npz"):
        load_npz(tmp_path / "absent.npz", L.Linear(2, 2))
