"""Data-parallel training over 2 MPI ranks matches one process with the same global batch."""
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from benchbench.core import Variable, links as L, optimizers
from benchbench.executor import communicators
from benchbench.executor.cell.data_parallel import DataParallelOptimizer

SCRIPT = Path(__file__).parent / "mpi_scripts" / "dp_train.py"
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")


def _train(tmp_path, spec, batch, steps, n):
    out = tmp_path / f"{n}.npz"
    if n == 1:
        cmd = [sys.executable, str(SCRIPT), spec, str(batch), str(steps), str(out), "single"]
    else:
        cmd = [MPIEXEC, "-n", str(n), sys.executable, str(SCRIPT), spec, str(batch), str(steps), str(out), "mpi"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    return dict(numpy.load(out))


@pytest.mark.mpi
@pytest.mark.parametrize("spec,batch,steps", [("mlp_mnist:units=64", 32, 5), ("lenet5_cifar10", 16, 4)])
def test_two_ranks_match_one_process(tmp_path, spec, batch, steps):
    single = _train(tmp_path, spec, batch, steps, 1)
    dp = _train(tmp_path, spec, batch, steps, 2)
    assert set(single) == set(dp)
    numpy.testing.assert_allclose(dp["__losses__"], single["__losses__"], rtol=1e-4, atol=1e-5)
    for name in single:
        numpy.testing.assert_allclose(dp[name], single[name], rtol=1e-4, atol=1e-5, err_msg=name)
    # and training moved the weights at all
    assert not numpy.allclose(single["__losses__"][0], single["__losses__"][-1])


def test_wrapper_on_single_communicator_equals_plain_optimizer():
    x = numpy.random.default_rng(0).standard_normal((8, 5)).astype(numpy.float32)

    def run(wrap):
        from benchbench.core import seed

        seed(1)
        model = L.Linear(5, 3)
        opt = optimizers.Adam()
        if wrap:
            opt = DataParallelOptimizer(opt, communicators.create("single"))
        opt.setup(model)
        for _ in range(3):
            y = model(Variable(x, requires_grad=False))
            from benchbench.core import functions as F

            loss = F.sum(y * y)
            model.cleargrads()
            loss.backward()
            opt.update()
        return model.W.array.copy(), getattr(opt, "last_allreduce_s", None)

    plain, _ = run(False)
    wrapped, t = run(True)
    numpy.testing.assert_array_equal(plain, wrapped)
    assert t is not None and t >= 0


def test_wrapper_rejects_non_optimizers():
    with pytest.raises(TypeError, match="inner must be a benchbench optimizer"):
        DataParallelOptimizer(object(), communicators.create("single"))


def test_hyperparameters_set_on_the_wrapper_reach_the_inner_optimizer():
    inner = optimizers.MomentumSGD(lr=0.1)
    opt = DataParallelOptimizer(inner, communicators.create("single"))
    opt.lr = 0.01  # what a learning-rate schedule does
    assert inner.lr == 0.01 and opt.lr == 0.01
