"""host_allocator.tune: against the kernel's own count of page faults, and never over the user's settings."""
import json
import subprocess
import sys
import textwrap

import pytest

from benchbench.core import host_allocator

glibc = pytest.mark.skipif(host_allocator._glibc()[0] is None, reason="needs glibc")

# Allocate, fill and free eight arrays of about 3 MiB (as a step's activations are: above glibc's
# default mmap threshold, below numpy's huge-page size) a few times; print each round's minor faults.
_ROUNDS = textwrap.dedent("""
    import json, resource, sys
    import numpy
    from benchbench.core import host_allocator
    record = host_allocator.tune() if sys.argv[1] == "tune" else None
    faults = []
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        arrays = [numpy.ones((3 << 20) // 4 + 1024 * k, dtype=numpy.float32) for k in range(8)]
        del arrays
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(json.dumps({"record": record, "faults": faults}))
""")


def _rounds(mode, env=None):
    out = subprocess.run([sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True, check=True,
                         env=env, timeout=120)
    return json.loads(out.stdout)


@glibc
def test_tuned_process_reuses_freed_pages(monkeypatch):
    for name in host_allocator.USER_SETTINGS + ("GLIBC_TUNABLES",):
        monkeypatch.delenv(name, raising=False)
    pages = 8 * (3 << 20) // 4096
    plain = _rounds("plain")
    assert min(plain["faults"][1:]) > pages // 2  # every round maps and faults the array afresh
    tuned = _rounds("tune")
    assert tuned["record"]["applied"] is True
    assert tuned["record"]["mmap_threshold"] == host_allocator.MMAP_THRESHOLD
    assert tuned["record"]["allocator"].startswith("glibc ")
    assert tuned["faults"][0] > pages // 2  # the first round still faults the pages in
    assert max(tuned["faults"][1:]) < pages // 50  # later rounds reuse them


# The same from a worker thread, two arrays of 40 MiB at a time (as the convolution workers'
# transformed filters and their gradient at 512 channels): together too large for one of the
# 64 MiB maps that make up a thread's own arena.
_THREAD_ROUNDS = textwrap.dedent("""
    import concurrent.futures, json, resource, sys
    import numpy
    from benchbench.core import host_allocator
    record = host_allocator.tune() if sys.argv[1] == "tune" else None
    worker = concurrent.futures.ThreadPoolExecutor(1)
    def allocate():
        arrays = [numpy.ones((40 << 20) // 4 + 1024 * k, dtype=numpy.float32) for k in range(2)]
        del arrays
    faults = []
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        worker.submit(allocate).result()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(json.dumps({"record": record, "faults": faults}))
""")


@glibc
def test_worker_threads_reuse_freed_pages_too(monkeypatch):
    for name in host_allocator.USER_SETTINGS + ("GLIBC_TUNABLES",):
        monkeypatch.delenv(name, raising=False)
    out = subprocess.run([sys.executable, "-c", _THREAD_ROUNDS, "tune"], capture_output=True, text=True,
                         check=True, timeout=120)
    tuned = json.loads(out.stdout)
    assert tuned["record"]["arenas"] == host_allocator.ARENAS == 1
    huge_pages = 2 * (40 << 20) // (2 << 20)  # the fewest faults that can bring 80 MiB in
    assert tuned["faults"][0] >= huge_pages
    assert max(tuned["faults"][1:]) < huge_pages // 4  # later rounds reuse the pages


@glibc
@pytest.mark.parametrize("name,value", [("MALLOC_MMAP_THRESHOLD_", "65536"), ("MALLOC_TOP_PAD_", "0"),
                                        ("MALLOC_ARENA_MAX", "4"),
                                        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")])
def test_user_settings_are_left_alone(monkeypatch, name, value):
    monkeypatch.setattr(host_allocator, "_done", {})
    record = host_allocator.tune({name: value})
    assert record["applied"] is False
    assert record["reason"] == f"left as the user set it ({name})"


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(host_allocator, "_done", {})
    monkeypatch.setattr(host_allocator, "_glibc", lambda: (None, "the C library is not glibc"))
    assert host_allocator.tune({}) == {"applied": False, "reason": "the C library is not glibc"}


def test_once_per_process_and_a_copy_each_time(monkeypatch):
    monkeypatch.setattr(host_allocator, "_done", {})
    calls = []
    monkeypatch.setattr(host_allocator, "_glibc", lambda: calls.append(1) or (None, "no glibc"))
    first = host_allocator.tune({})
    first["applied"] = "changed"
    assert host_allocator.tune({}) == {"applied": False, "reason": "no glibc"} and len(calls) == 1


def test_describe_says_what_was_done():
    record = {"applied": True, "allocator": "glibc 2.36", "mmap_threshold": 1 << 30, "trim_threshold": 2 << 30,
              "arenas": 1}
    assert host_allocator.describe(record) == ("host allocator: glibc 2.36, freed blocks up to 1024 MiB reused, "
                                               "1 arena for all threads")
    del record["arenas"]  # a record from before the arenas were set
    assert host_allocator.describe(record).endswith("1024 MiB reused")
    assert host_allocator.describe({"applied": False, "reason": "no glibc"}) == "host allocator: as it was (no glibc)"
