"""Link, Chain, ChainList, Sequential: registration, naming, devices."""
import numpy
import pytest

from benchbench.core import Parameter, Variable, backend, initializers
from benchbench.core import functions as F
from benchbench.core import links as L
from benchbench.core.link import Chain, ChainList, Link, Sequential


class MLP(Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.l2 = L.Linear(4, 3)
            self.l1 = L.Linear(None, 4)
            self.bn = L.BatchNormalization(3)

    def forward(self, x):
        return self.bn(self.l2(F.relu(self.l1(x))))


def test_namedparams_sorted_full_names():
    m = MLP()
    names = [n for n, _ in m.namedparams()]
    assert names == ["/bn/beta", "/bn/gamma", "/l1/W", "/l1/b", "/l2/W", "/l2/b"]
    assert [p.name for p in m.params()] == ["beta", "gamma", "W", "b", "W", "b"]
    assert all(isinstance(p, Parameter) for p in m.params())


def test_uninitialised_params_listed_only_when_asked():
    m = MLP()
    assert "/l1/W" not in [n for n, _ in m.namedparams(include_uninit=False)]
    assert m.l1.W.array is None
    m(numpy.ones((2, 6), numpy.float32))
    assert m.l1.W.shape == (4, 6)
    assert "/l1/W" in [n for n, _ in m.namedparams(include_uninit=False)]


def test_count_params():
    m = MLP()
    m(numpy.ones((2, 6), numpy.float32))
    assert m.count_params() == (4 * 6 + 4) + (3 * 4 + 3) + 3 + 3


def test_namedpersistents_and_links():
    m = MLP()
    assert [n for n, _ in m.namedpersistents()] == ["/bn/N", "/bn/avg_mean", "/bn/avg_var"]
    assert [n for n, _ in m.namedlinks()] == ["/", "/bn", "/l1", "/l2"]
    assert [n for n, _ in m.namedlinks(skipself=True)] == ["/bn", "/l1", "/l2"]
    assert list(m.children()) == [m.bn, m.l1, m.l2]


def test_reassigning_attribute_unregisters():
    m = MLP()
    m.l1 = None
    assert "/l1/W" not in [n for n, _ in m.namedparams()]
    del m.l2
    assert [n for n, _ in m.namedlinks(skipself=True)] == ["/bn"]


def test_setattr_before_init_is_an_error():
    class Bad(Link):
        def __init__(self):
            self.W = Parameter(numpy.zeros(2, numpy.float32))

    with pytest.raises(RuntimeError, match="super"):
        Bad()


def test_add_param_and_persistent():
    link = Link()
    link.add_param("W", (2, 3), initializer=initializers.Constant(2.0))
    link.add_param("u")
    link.add_persistent("count", 0)
    assert link.W.array.shape == (2, 3) and float(link.W.array[0, 0]) == 2.0
    assert link.u.array is None
    assert [n for n, _ in link.namedparams()] == ["/W", "/u"]
    assert [n for n, _ in link.namedpersistents()] == ["/count"]
    with pytest.raises(AttributeError, match="already has"):
        link.add_param("W", (1,))
    with pytest.raises(TypeError, match="count2"):
        link.add_persistent("count2", "text")
    with pytest.raises(ValueError, match="identifier"):
        link.add_param("a/b", (1,))


def test_reassigning_a_persistent_keeps_it_registered():
    bn = L.BatchNormalization(2)
    bn.N += 1
    bn.avg_mean = numpy.ones(2, numpy.float32)
    assert [n for n, _ in bn.namedpersistents()] == ["/N", "/avg_mean", "/avg_var"]
    bn.avg_var = Parameter(numpy.ones(2, numpy.float32))
    assert [n for n, _ in bn.namedpersistents()] == ["/N", "/avg_mean"]


def test_cleargrads_and_zerograds():
    m = L.Linear(3, 2)
    m.zerograds()
    assert all(p.grad is not None and not p.grad.any() for p in m.params())
    m.cleargrads()
    assert all(p.grad is None for p in m.params())


def test_call_goes_to_forward():
    class Twice(Link):
        def forward(self, x, k=2):
            return x * k

    assert Twice()(3, k=4) == 12


def test_sequential_mixes_links_and_callables():
    seq = Sequential(L.Linear(None, 5), F.relu, L.Linear(None, 2))
    y = seq(numpy.ones((3, 4), numpy.float32))
    assert y.shape == (3, 2)
    assert len(seq) == 3 and seq[1] is F.relu
    assert [n for n, _ in seq.namedparams()] == ["/0/W", "/0/b", "/1/W", "/1/b"]
    assert list(seq)[2] is seq[2]
    with pytest.raises(TypeError, match="Sequential"):
        Sequential(L.Linear(2, 2), 3)


def test_chainlist_indexing():
    cl = ChainList(L.Linear(2, 3), L.Linear(3, 1))
    assert len(cl) == 2 and cl[1].W.shape == (1, 3)
    assert [n for n, _ in cl.namedparams()] == ["/0/W", "/0/b", "/1/W", "/1/b"]
    with pytest.raises(TypeError, match="add_link"):
        cl.add_link(F.relu)


def test_copyparams():
    a, b = MLP(), MLP()
    x = numpy.ones((2, 6), numpy.float32)
    a(x)
    b(x)
    a.bn.avg_mean[...] = 3.0
    b.copyparams(a)
    for (_, p), (_, q) in zip(a.namedparams(), b.namedparams()):
        numpy.testing.assert_array_equal(p.array, q.array)
    numpy.testing.assert_array_equal(b.bn.avg_mean, a.bn.avg_mean)


def test_to_device_cpu_keeps_numpy():
    m = MLP()
    assert m.to_device("cpu") is m
    assert str(m.device) == "cpu" and m.xp is numpy
    assert isinstance(m.l2.W.array, numpy.ndarray)


@pytest.mark.skipif(backend.cupy_available(), reason="checks the error raised without cupy")
def test_to_device_gpu_without_cupy_is_a_clear_error():
    m = MLP()
    with pytest.raises(RuntimeError, match="cupy"):
        m.to_device("gpu:0")
    assert str(m.device) == "cpu"


def test_to_device_rejects_bad_spec():
    with pytest.raises(ValueError, match="cpu"):
        MLP().to_device("tpu")


@pytest.mark.gpu
def test_to_device_gpu_moves_params_and_persistents():
    cupy = backend.cupy
    m = MLP()
    m.l2.W.grad = numpy.ones((3, 4), numpy.float32)
    m.to_device("gpu:0")
    assert str(m.bn.device) == "gpu:0"
    assert isinstance(m.l2.W.array, cupy.ndarray) and isinstance(m.l2.W.grad, cupy.ndarray)
    assert isinstance(m.bn.avg_mean, cupy.ndarray)
    y = m(cupy.ones((2, 6), cupy.float32))  # the lazy l1 is created on the GPU
    assert isinstance(y.array, cupy.ndarray) and isinstance(m.l1.W.array, cupy.ndarray)
    m.to_cpu()
    assert isinstance(m.l1.W.array, numpy.ndarray) and isinstance(m.bn.avg_var, numpy.ndarray)


def test_params_of_link_are_trained_leaves():
    m = L.Linear(3, 2)
    x = Variable(numpy.ones((4, 3), numpy.float32), requires_grad=False)
    F.sum(m(x)).backward()
    numpy.testing.assert_allclose(m.W.grad, numpy.full((2, 3), 4.0))
    numpy.testing.assert_allclose(m.b.grad, numpy.full((2,), 4.0))
