"""``lstm_sequence`` on a GPU: a state of zeros is never read from the stand-in input, outputs without a
gradient cost no fill, and every output and gradient equals the unfused path. Run under the simulated
GPUs."""
import numpy
import pytest

from benchbench.core import backend, functions as F, Variable
from benchbench.core.functions.rnn import LSTMSequence

from .conftest import rand
from .test_cuda_functions import _same

pytestmark = pytest.mark.simgpu


def _all_outputs(x, wx, wh, b):
    h_seq, h, c = F.lstm_sequence(x, None, None, wx, wh, b)
    t, n, hsz = h_seq.shape
    return F.concat([F.reshape(h_seq, (t * n, hsz)), h, c], axis=0)


def test_a_zero_state_equals_the_unfused_path(cupy, unfused, launches):
    _same(cupy, unfused, launches, _all_outputs, [rand((4, 3, 2), 0), rand((20, 2), 1), rand((20, 5), 2), rand((20,), 3)],
          rtol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_the_stand_in_of_a_zero_state_is_never_read(cupy, unfused, fused):
    x, wx, wh, b = (backend.to_device(a, "gpu:0") for a in (rand((3, 2, 2)), rand((12, 2), 1), rand((12, 3), 2),
                                                             rand((12,), 3)))
    nan = backend.cupy.full((2, 3), numpy.nan, dtype=numpy.float32)
    zero = backend.cupy.zeros((2, 3), dtype=numpy.float32)

    def run(h0, c0, zero_state):
        outs = LSTMSequence(True, zero_state).apply((x, h0, c0, wx, wh, b))
        return [backend.as_numpy(o.array) for o in outs]

    def both():
        return run(nan, nan, (True, True)), run(zero, zero, (False, False))

    if fused:
        stood_in, explicit = both()
    else:
        with unfused():
            stood_in, explicit = both()
    for a, e in zip(stood_in, explicit):
        numpy.testing.assert_array_equal(a, e)


def test_outputs_without_a_gradient_cost_no_fill(cupy, launches):
    x, wx, wh = (Variable(backend.to_device(a, "gpu:0")) for a in (rand((5, 2, 3)), rand((8, 3), 1), rand((8, 2), 2)))
    h_seq, h, c = F.lstm_sequence(x, None, None, wx, wh)
    loss = F.sum(h_seq)
    _, n = launches(loss.backward)
    # sum's seed and gradient 2; per step a kernel and a GEMM; recurrent matrix 1; input gradient 1;
    # the inputs as (K, T*N) 1, the weight gradient's GEMM 1 and its split 1: no zeros for h and c
    assert n == 2 + 2 * 5 + 1 + 1 + 3
