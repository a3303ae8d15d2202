"""backend.synced_timer: the one device-synchronised timer, against a known sleep and its syncs."""
import time

import numpy
import pytest

from benchbench.core import backend


def test_a_known_sleep_is_timed():
    with backend.synced_timer("cpu") as span:
        time.sleep(0.05)
    assert 0.05 <= span.seconds < 5.0  # sleep() only oversleeps; the bound is loose for a busy machine


def test_the_device_is_synchronised_before_the_first_and_the_last_clock_read(monkeypatch):
    events = []

    class Clock:
        def perf_counter(self):
            events.append("clock")
            return float(len(events))

    monkeypatch.setattr(backend, "time", Clock())
    monkeypatch.setattr(backend, "synchronize", lambda a: events.append("sync"))
    with backend.synced_timer(numpy.zeros(3)) as span:  # an array: its own device is synchronised
        events.append("work")
    assert events == ["sync", "clock", "work", "sync", "clock"]
    assert span.seconds == 3.0


def test_the_span_is_set_even_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with backend.synced_timer(None) as span:
            raise RuntimeError("x")
    assert span.seconds >= 0
