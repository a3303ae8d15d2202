"""StepTimer / Stopwatch: structure of the samples, phases, reset, the all-reduce split."""
import time

import pytest

from benchbench.core import backend
from benchbench.executor.timing import Stopwatch, StepTimer


def test_every_step_and_phase_is_kept():
    timer = StepTimer("cpu")
    for _ in range(3):
        with timer.step():
            with timer.phase("data"):
                pass
            with timer.phase("forward"):
                time.sleep(0.002)
    assert len(timer.step_s) == 3
    assert set(timer.phases_s) == {"data", "forward"}
    assert all(len(v) == 3 for v in timer.phases_s.values())
    for i in range(3):
        assert timer.phases_s["forward"][i] >= 0.002
        assert timer.step_s[i] >= timer.phases_s["forward"][i] + timer.phases_s["data"][i]


def test_reset_drops_warmup_samples():
    timer = StepTimer("cpu")
    with timer.step():
        with timer.phase("forward"):
            pass
    timer.reset()
    assert timer.step_s == [] and timer.phases_s == {}
    with timer.step():
        pass
    assert len(timer.step_s) == 1


def test_a_step_that_raises_records_nothing():
    timer = StepTimer("cpu")
    with pytest.raises(RuntimeError):
        with timer.step():
            with timer.phase("forward"):
                raise RuntimeError("x")
    assert timer.step_s == [] and timer.phases_s == {}
    with timer.step():  # the timer is usable again
        pass
    assert len(timer.step_s) == 1


def test_split_last_moves_allreduce_out_of_update():
    timer = StepTimer("cpu")
    with timer.step():
        with timer.phase("update"):
            time.sleep(0.004)
    update = timer.phases_s["update"][0]
    timer.split_last("allreduce", 0.001, "update")
    assert timer.phases_s["allreduce"] == [0.001]
    assert timer.phases_s["update"][0] == pytest.approx(update - 0.001)
    timer.split_last("allreduce", 10.0, "update")  # never more than the phase took
    assert timer.phases_s["update"][0] == 0.0


def test_misuse_is_reported():
    timer = StepTimer("cpu")
    with pytest.raises(RuntimeError, match="inside"):
        with timer.phase("forward"):
            pass
    with pytest.raises(RuntimeError, match="nested"):
        with timer.step():
            with timer.step():
                pass
    with pytest.raises(ValueError, match="name"):
        with timer.step():
            with timer.phase(""):
                pass
    with pytest.raises(ValueError, match="no 'update' sample"):
        StepTimer("cpu").split_last("allreduce", 0.1, "update")
    with pytest.raises(ValueError, match="seconds"):
        timer.split_last("allreduce", -1.0, "update")
    with pytest.raises(ValueError):
        StepTimer("tpu:0")


def test_stopwatch_counts_up_and_resets():
    watch = Stopwatch("cpu")
    time.sleep(0.002)
    first = watch.read()
    assert first >= 0.002 and watch.read() >= first
    time.sleep(0.05)
    t0 = time.perf_counter()
    watch.reset()
    after = watch.read()
    assert after <= time.perf_counter() - t0  # counts from the reset, however long a busy machine took


@pytest.mark.gpu
def test_gpu_steps_are_timed_with_events():
    cupy = backend.cupy
    timer = StepTimer("gpu:0")
    a = cupy.ones((512, 512), dtype=cupy.float32)
    for _ in range(2):
        with timer.step():
            with timer.phase("forward"):
                a = a @ a
                a /= a.max()
    assert len(timer.step_s) == 2 and all(s > 0 for s in timer.step_s)
    assert all(f <= s for f, s in zip(timer.phases_s["forward"], timer.step_s))
