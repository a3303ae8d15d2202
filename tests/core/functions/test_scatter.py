"""The deterministic scatter-add against numpy's ordered add.at, and get_item's deterministic backward."""
import numpy
import pytest

from benchbench.core import Variable, functions as F, using_config
from benchbench.core.functions._scatter import scatter_add


@pytest.mark.parametrize("key", [
    numpy.array([0, 2, 0, 0, 3]),
    (numpy.array([1, 1, 0]), slice(None)),
    (slice(None), numpy.array([[0, 1], [1, 1]])),
])
def test_scatter_add_equals_add_at(key):
    rng = numpy.random.default_rng(0)
    shape = (4, 3)
    ref = numpy.zeros(shape, numpy.float32)
    picked = ref[key]
    values = rng.standard_normal(picked.shape).astype(numpy.float32)
    numpy.add.at(ref, key, values)
    got = scatter_add(numpy, shape, numpy.float32, key, values)
    assert got.dtype == numpy.float32 and got.shape == shape
    numpy.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


def test_scatter_add_of_nothing_is_zeros():
    got = scatter_add(numpy, (3,), numpy.float32, numpy.array([], dtype=numpy.int64), numpy.zeros(0, numpy.float32))
    assert (got == 0).all()


def test_get_item_backward_in_deterministic_mode(xp):
    x = Variable(xp.asarray(numpy.arange(12, dtype=numpy.float32).reshape(4, 3)))
    idx = xp.asarray(numpy.array([3, 1, 3, 3]))
    grads = []
    for _ in range(2):
        x.cleargrad()
        with using_config("deterministic", True):
            y = F.get_item(x, idx)
            F.sum(y * y).backward()
        grads.append(numpy.asarray(x.grad.get() if hasattr(x.grad, "get") else x.grad))
    expected = numpy.zeros((4, 3), numpy.float32)
    a = numpy.arange(12, dtype=numpy.float32).reshape(4, 3)
    numpy.add.at(expected, numpy.array([3, 1, 3, 3]), 2 * a[[3, 1, 3, 3]])
    numpy.testing.assert_allclose(grads[0], expected, rtol=1e-6)
    assert grads[0].tobytes() == grads[1].tobytes()
