"""The all-reduce sweep against a link with a set latency and bandwidth, and the real cpu:dp2 one."""
import subprocess
import sys
import time

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
    assert fit["latency_s"] == pytest.approx(a / 2, rel=1e-6)
    assert fit["bandwidth_bytes_per_s"] == pytest.approx(b, rel=1e-6)
    assert fit["max_abs_residual"] < 1e-6 and len(fit["residuals"]) == 5
    p = result["points"][-1]
    assert p["algbw_gbs"] == pytest.approx((32 << 20) / p["time_s"] / 1e9)
    assert p["busbw_gbs"] == pytest.approx(p["algbw_gbs"])  # 2(n-1)/n = 1 on two ranks
    text = bandwidth.format_sweep(result, "test")
    assert "busbw (GB/s)" in text and "latency" in text


def test_fit_link_exact():
    n = 4
    lat, bw = 5e-6, 10e9
    pts = [{"bytes": s, "time_s": 2 * (n - 1) * lat + 2 * (n - 1) / n * s / bw} for s in (1024, 1 << 20, 1 << 24)]
    fit = bandwidth.fit_link(pts, n)
    assert fit["latency_s"] == pytest.approx(lat) and fit["bandwidth_bytes_per_s"] == pytest.approx(bw)
    assert fit["max_abs_residual"] < 1e-9


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
    assert "all-reduce sweep on cpu:dp2: 2 ranks" in proc.stdout and "ring model" in proc.stdout
    import json

    result = json.loads((tmp_path / "bw.json").read_text())
    assert [p["bytes"] for p in result["points"]] == [4096, 65536, 1048576]
    assert all(p["time_s"] > 0 for p in result["points"]) and result["communicator"] == "mpi"
