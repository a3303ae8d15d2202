"""The all-reduce sweep against a link with a set latency and bandwidth, and the real cpu:dp2 one."""
import subprocess
import sys
import time

import numpy
import pytest

from benchbench.core import backend
from benchbench.executor import bandwidth


class SleepLink:
    """A 2-rank communicator whose all-reduce of S bytes takes ``a + S / b`` seconds of a virtual
    clock (so that the truth holds on a busy machine too)."""

    def __init__(self, a, b, size=2):
        self.a, self.b, self.rank, self.size = a, b, 0, size
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def allreduce_sum(self, buf):
        self.now += self.a + buf.nbytes / self.b
        return buf

    def barrier(self):
        pass

    def allgather_obj(self, obj):
        return [obj] * self.size


def test_sweep_with_a_real_sleep_sees_the_link(monkeypatch):
    class Sleeping(SleepLink):
        def allreduce_sum(self, buf):
            time.sleep(self.a + buf.nbytes / self.b)
            return buf

    # A real clock on a busy machine: sleep() only oversleeps, so only bounds hold.
    result = bandwidth.sweep(Sleeping(0.002, 1e9), [1024, 8 << 20], reps=2, warmup=0)
    small, large = result["points"]
    assert small["time_s"] >= 0.002 and large["time_s"] >= 0.002 + (8 << 20) / 1e9


def test_sweep_recovers_a_set_latency_and_bandwidth(monkeypatch):
    a, b = 0.004, 2e9  # 4 ms per all-reduce (2 ms per hop on 2 ranks), 2 GB/s
    sizes = [1024, 1 << 20, 4 << 20, 16 << 20, 32 << 20]
    link = SleepLink(a, b)
    monkeypatch.setattr(backend, "time", link)  # the clock of backend.synced_timer
    result = bandwidth.sweep(link, sizes, reps=3, warmup=1)
    fit = result["fit"]
    assert fit["accepted"] is True and fit["fixed_s"] == pytest.approx(a, rel=1e-6)
    assert fit["latency_s"] is None  # one rank count: no per-hop split
    assert fit["bandwidth_bytes_per_s"] == pytest.approx(b, rel=1e-6)
    assert fit["max_abs_residual"] < 1e-6 and len(fit["residuals"]) == 5
    p = result["points"][-1]
    assert p["algbw_gbs"] == pytest.approx((32 << 20) / p["time_s"] / 1e9)
    assert p["busbw_gbs"] == pytest.approx(p["algbw_gbs"])  # 2(n-1)/n = 1 on two ranks
    text = bandwidth.format_sweep(result, "test")
    assert "busbw (GB/s)" in text and "latency" in text


def test_per_hop_latency_needs_two_rank_counts():
    from benchbench import link_model

    lat, bw = 5e-6, 10e9
    sweeps = [{"ranks": n, "points": [{"bytes": s, "time_s": 2 * (n - 1) * lat + 2 * (n - 1) / n * s / bw}
                                      for s in (1024, 1 << 20, 1 << 22, 1 << 24)]} for n in (2, 4)]
    one = bandwidth.fit_link(sweeps[1]["points"], 4)
    assert one["accepted"] and one["latency_s"] is None and one["fixed_s"] == pytest.approx(6 * lat)
    assert one["bandwidth_bytes_per_s"] == pytest.approx(bw) and one["max_abs_residual"] < 1e-9
    both = link_model.fit_link_counts(sweeps)
    assert both["accepted"] and both["latency_s"] == pytest.approx(lat) and both["bandwidth_bytes_per_s"] == pytest.approx(bw)
    assert link_model.fit_link_counts(sweeps[:1])["accepted"] is False


class TwoProtocolLink(SleepLink):
    """Small messages by a low-latency protocol, large ones by a high-bandwidth one (as NCCL's LL and
    Simple): no single line fits the whole sweep."""

    def allreduce_sum(self, buf):
        small = buf.nbytes < 256 << 10
        self.now += (2e-6 + buf.nbytes / 0.5e9) if small else (100e-6 + buf.nbytes / 8e9)
        return buf


def test_a_two_protocol_link_is_fitted_above_its_knee(monkeypatch):
    sizes = [4096 * 4 ** k for k in range(8)]  # 4 KiB ... 64 MiB
    link = TwoProtocolLink(0, 1)
    monkeypatch.setattr(backend, "time", link)  # the clock of backend.synced_timer
    result = bandwidth.sweep(link, sizes, reps=2, warmup=0)
    fit = result["fit"]
    assert fit["accepted"] and fit["from_bytes"] == 256 << 10 and fit["points_fitted"] == 5
    assert fit["bandwidth_bytes_per_s"] == pytest.approx(8e9, rel=1e-6) and fit["max_abs_residual"] < 1e-6
    assert max(abs(r) for r in fit["residuals"][:4]) > 0.2  # the small sizes are off the line
    # A line through the whole sweep (the old fit, taken unchecked) is far off at its worst point.
    sz = numpy.array([p["bytes"] for p in result["points"]], float)
    t = numpy.array([p["time_s"] for p in result["points"]])
    (a, b), *_ = numpy.linalg.lstsq(numpy.stack([1 / t, sz / t], 1), numpy.ones_like(t), rcond=None)
    assert numpy.max(numpy.abs((a + b * sz) / t - 1)) > 0.2
    assert "from 262,144 bytes up" in bandwidth.format_sweep(result)


def test_a_fit_that_does_not_hold_is_refused_and_says_why():
    # Noise of a busy machine: every other size took 3x as long.
    pts = [{"bytes": 4096 * 4 ** k, "time_s": (1e-4 + 4096 * 4 ** k / 2e9) * (3.0 if k % 2 else 1.0)}
           for k in range(6)]
    fit = bandwidth.fit_link(pts, 2)
    assert fit["accepted"] is False and "largest residual" in fit["reason"] and "> 20%" in fit["reason"]
    assert fit["bandwidth_bytes_per_s"] is None and fit["fixed_s"] is None
    text = bandwidth.format_sweep({"ranks": 2, "points": [dict(p, algbw_gbs=0, busbw_gbs=0) for p in pts],
                                   "fit": fit})
    assert "refused" in text and "no latency or bandwidth" in text
    assert bandwidth.fit_link(pts[:2], 2)["accepted"] is False  # two points: a line always fits


def test_a_cell_sweeps_up_to_its_gradient_size():
    assert bandwidth.sizes_up_to(None) == list(bandwidth.CELL_SIZES)
    sizes = bandwidth.sizes_up_to(45_000_000)  # ResNet-18's gradient, about 45 MB
    assert sizes[:6] == list(bandwidth.CELL_SIZES) and sizes[-2] < 45_000_000 <= sizes[-1]


def test_validation():
    with pytest.raises(ValueError, match="at least 2 ranks"):
        bandwidth.sweep(SleepLink(0, 1, size=1))
    with pytest.raises(ValueError, match="two distinct message sizes"):
        bandwidth.sweep(SleepLink(0, 1e9), [1024, 1024])
    with pytest.raises(ValueError, match="multiples of 4"):
        bandwidth.sweep(SleepLink(0, 1e9), [1023, 2048])
    with pytest.raises(ValueError, match="ranks"):
        bandwidth.fit_link([{"bytes": 4, "time_s": 1.0}, {"bytes": 8, "time_s": 2.0}], 1)


def test_bandwidth_command_rejects_a_single_device(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchbench", "bandwidth", "--device", "cpu"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "data-parallel group" in proc.stderr


@pytest.mark.mpi
def test_bandwidth_command_on_cpu_dp2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchbench", "bandwidth", "--device", "cpu:dp2",
                           "--sizes", "4096,65536,1048576", "--reps", "3", "--json", str(tmp_path / "bw.json")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "all-reduce sweep on cpu:dp2: 2 ranks" in proc.stdout
    # The line is taken or refused (a busy machine's sweep may not follow one), and the output says which.
    assert ("ring model" in proc.stdout) != ("refused" in proc.stdout), proc.stdout
    import json

    result = json.loads((tmp_path / "bw.json").read_text())
    assert [p["bytes"] for p in result["points"]] == [4096, 65536, 1048576]
    assert all(p["time_s"] > 0 for p in result["points"]) and result["communicator"] == "mpi"


@pytest.mark.mpi
@pytest.mark.multi_gpu(2)
def test_bandwidth_command_on_gpu_0_1(tmp_path):
    """NCCL over two GPUs, each rank on its node-local GPU (two ranks on one GPU would be refused)."""
    proc = subprocess.run([sys.executable, "-m", "benchbench", "bandwidth", "--device", "gpu:0,1",
                           "--sizes", "4096,65536,1048576", "--reps", "2", "--json", str(tmp_path / "bw.json")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json

    result = json.loads((tmp_path / "bw.json").read_text())
    assert result["communicator"] == "nccl" and result["ranks"] == 2 and len(result["points"]) == 3
