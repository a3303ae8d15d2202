"""Softmax cross-entropy's row kernel also counts the valid labels, writes the loss's unit seed and the
accuracy's hits: ``softmax_cross_entropy_and_accuracy`` equals the two functions apart, the loss is
seeded without a fill, and a wrong count is caught. Run under the simulated GPUs."""
import numpy
import pytest

from benchbench.core import backend, functions as F, Variable

from .conftest import rand

pytestmark = pytest.mark.simgpu


def _data(ignore):
    x = rand((13, 7)) * 4
    x[3, 4] = x[3, 1] = 9.0  # a tie: the first maximum counts, as argmax takes it
    t = numpy.random.default_rng(0).integers(0, 7, 13).astype(numpy.int32)
    t[3] = 1
    if ignore:
        t[[2, 5]] = -1  # ignored by the loss, misses for the accuracy
    return x, t


def _loss_acc_grad(x, t, pair):
    v = Variable(backend.to_device(x, "gpu:0"))
    tg = backend.to_device(t, "gpu:0")
    loss, acc = F.softmax_cross_entropy_and_accuracy(v, tg) if pair else (F.softmax_cross_entropy(v, tg),
                                                                         F.accuracy(v, tg))
    loss.backward()
    return [float(loss.array), float(acc.array), backend.as_numpy(v.grad), float(loss.grad)]


@pytest.mark.parametrize("ignore", [False, True])
def test_the_pair_equals_the_two_functions_fused_and_unfused(cupy, unfused, launches, ignore):
    x, t = _data(ignore)
    pair, n_pair = launches(lambda: _loss_acc_grad(x, t, True))
    apart, n_apart = launches(lambda: _loss_acc_grad(x, t, False))
    with unfused():
        plain = _loss_acc_grad(x, t, False)
    for got in (pair, apart):
        assert got[0] == pytest.approx(plain[0], rel=1e-6) and got[1] == pytest.approx(plain[1], rel=1e-6)
        numpy.testing.assert_allclose(got[2], plain[2], rtol=1e-6, atol=1e-7)
        assert got[3] == 1.0  # the seed
    assert plain[1] == pytest.approx(numpy.mean(x.argmax(axis=1) == t))
    # rows (softmax, loss terms, count, seed, hits) + loss reduction + accuracy mean; the gradient; no fill
    assert n_pair == 4 and n_apart == 5


def test_the_loss_is_seeded_by_its_row_kernel_not_by_a_fill(cupy, launches):
    x, t = _data(False)
    v = Variable(backend.to_device(x, "gpu:0"))
    loss = F.softmax_cross_entropy(v, backend.to_device(t, "gpu:0"))
    seed = loss.creator.unit_seed
    assert seed.shape == () and seed.dtype == numpy.float32
    _, n = launches(loss.backward)
    assert n == 1 and loss.grad is seed  # the gradient kernel only
    a, b = (Variable(backend.to_device(rand((4, 3), k), "gpu:0")) for k in (1, 2))
    mse = F.mean_squared_error(a, b)
    _, n = launches(mse.backward)
    assert n == 1 and float(mse.grad) == 1.0  # one kernel writes both gradients; no fill
    numpy.testing.assert_allclose(backend.as_numpy(b.grad), -backend.as_numpy(a.grad))
    y = F.sum(v)  # a function without its own seed: a fill, as before
    _, n = launches(y.backward)
    assert float(y.grad) == 1.0 and n >= 1


@pytest.mark.parametrize("normalize", [True, False])
def test_the_scale_counts_only_valid_labels(cupy, normalize):
    x, t = _data(True)
    loss = F.softmax_cross_entropy(backend.to_device(x, "gpu:0"), backend.to_device(t, "gpu:0"),
                                   normalize=normalize)
    z = x - x.max(axis=1, keepdims=True)
    nll = numpy.log(numpy.exp(z).sum(axis=1)) - z[numpy.arange(13), numpy.maximum(t, 0)]
    expected = nll[t >= 0].sum() / (11 if normalize else 13)
    assert float(loss.array) == pytest.approx(expected, rel=1e-5)


def test_a_wrong_count_of_valid_labels_is_caught(cupy, monkeypatch):
    from benchbench.core.kernels import cuda_loss

    kind, args = cuda_loss.KERNELS["softmax_cross_entropy_rows"]
    body = args[2].replace("labels[r] != ignore_label ? 1 : 0", "1")
    assert body != args[2]
    monkeypatch.setitem(cuda_loss.KERNELS, "softmax_cross_entropy_rows",
                        (kind, (args[0], args[1], body, "benchbench_softmax_cross_entropy_rows_wrong")))
    with pytest.raises(AssertionError):
        test_the_scale_counts_only_valid_labels(cupy, True)
