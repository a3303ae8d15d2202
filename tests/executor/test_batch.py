"""Batch sweeps: parsing, the largest-batch search, the CPU memory budget, the learning-rate rule."""
import subprocess
import sys
import textwrap

import pytest

from benchbench.executor.planning import batch
from benchbench.executor.cell import batch_run, batch_search
from benchbench.executor.planning.plan import PlanError, load_plan, plan_from_dict


@pytest.mark.parametrize("text, want", [("32,64,128", [32, 64, 128]), ("max", ["max"]), (" 16 , MAX", [16, "max"]),
                                        (8, [8]), ([4, "max"], [4, "max"])])
def test_parse_batch_sizes(text, want):
    assert batch.parse_batch_sizes(text) == want


@pytest.mark.parametrize("text, needle", [("0", "positive integer"), ("abc", "positive integer"), ("-4", "positive"),
                                          ("32,32", "given twice"), ("max,max", "given twice"), ("", "positive"),
                                          ("1.5", "positive integer"), ([], "at least one"), (True, "positive")])
def test_parse_batch_sizes_rejects(text, needle):
    with pytest.raises(ValueError, match=needle):
        batch.parse_batch_sizes(text)


@pytest.mark.parametrize("text, want", [("2GiB", 2 << 30), ("512MiB", 512 << 20), ("1.5G", 1_500_000_000),
                                        ("1000", 1000), (4096, 4096), ("64 kib", 65536)])
def test_parse_bytes(text, want):
    assert batch.parse_bytes(text) == want


@pytest.mark.parametrize("text", ["", "lots", "2XB", "0", "-1GiB", "0.1"])
def test_parse_bytes_rejects(text):
    with pytest.raises(ValueError, match="memory limit"):
        batch.parse_bytes(text)


def test_plan_takes_batch_sizes_and_limit_and_names_bad_values():
    plan = load_plan(None, {"batch_size": "16,max", "memory_limit": "1MiB"})
    assert plan.batch_size == [16, "max"] and plan.memory_limit == 1 << 20
    assert plan.as_dict()["batch_size"] == [16, "max"]
    again = plan_from_dict(plan.as_dict())  # --resume runs the same batch sizes
    assert again.batch_size == [16, "max"] and again.memory_limit == 1 << 20
    with pytest.raises(PlanError, match="'batch_size'.*'abc'"):
        load_plan(None, {"batch_size": "abc"})


def fake_probe(limit, log=None):
    def probe(b):
        if log is not None:
            log.append(b)
        return b <= limit, b * 10 if b <= limit else None

    return probe


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 40, 64, 65, 1000])
def test_search_finds_the_exact_largest_batch(limit):
    log = []
    r = batch_search.search(fake_probe(limit, log), cap=1 << 16)
    assert r["max_batch"] == limit and r["stopped_by"] == "oom"
    # doubling up to the first failure, then bisection between the last success and it
    k = limit.bit_length()
    assert log[:k + 1] == [1 << i for i in range(k + 1)]
    assert len(log) == len(set(log))
    assert [p["batch"] for p in r["probes"]] == log
    assert all(p["ok"] == (p["batch"] <= limit) for p in r["probes"])
    assert all((p["bytes"] == p["batch"] * 10) if p["ok"] else p["bytes"] is None for p in r["probes"])


def test_search_says_when_the_cap_stopped_it():
    r = batch_search.search(fake_probe(10**9), cap=100)
    assert r["max_batch"] == 100 and r["stopped_by"] == "cap"
    assert [p["batch"] for p in r["probes"]] == [1, 2, 4, 8, 16, 32, 64, 100]


def test_search_when_nothing_fits():
    r = batch_search.search(fake_probe(0), cap=100)
    assert r["max_batch"] is None and r["stopped_by"] == "oom_at_start" and len(r["probes"]) == 1


def test_search_propagates_errors_other_than_oom_and_checks_its_arguments():
    def broken(b):
        raise RuntimeError("not memory")

    with pytest.raises(RuntimeError, match="not memory"):
        batch_search.search(broken)
    with pytest.raises(ValueError, match="cap"):
        batch_search.search(fake_probe(3), cap=0)
    with pytest.raises(ValueError, match="start"):
        batch_search.search(fake_probe(3), cap=4, start=5)


def test_memory_budget_raises_memory_error_past_the_budget():
    code = textwrap.dedent("""
        import numpy
        from benchbench.executor.cell.batch_search import memory_budget
        with memory_budget(64 << 20) as limit:
            assert limit is not None
            small = numpy.ones(8 << 20, numpy.uint8)   # 8 MiB: within
            try:
                numpy.ones(256 << 20, numpy.uint8)      # 256 MiB: past the budget
            except MemoryError:
                print("oom")
        big = numpy.ones(256 << 20, numpy.uint8)        # the old limit is back
        print("restored", big.nbytes)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["oom", "restored", str(256 << 20)]


def test_forked_probe_returns_the_childs_result_and_keeps_the_parent_clean():
    seen = []

    def probe(b):
        seen.append(b)  # in the child: the parent's list stays empty
        if b > 4:
            raise MemoryError("too big")
        return True, 123

    run = batch_search.forked(lambda b: _catching(probe, b))
    assert run(2) == (True, 123)
    assert run(8) == (False, None)
    assert seen == []
    def failing_probe(b):
        raise KeyError("x")

    failing = batch_search.forked(failing_probe)
    with pytest.raises(RuntimeError, match="KeyError"):
        failing(1)


def _catching(probe, b):
    try:
        return probe(b)
    except MemoryError:
        return False, None


def test_linear_scaling_rule():
    rule = batch.LinearScaling(batch=400, default_batch=100, warmup_steps=10)
    assert rule.k == 4
    assert [rule.factor(s) for s in (0, 5, 10, 50)] == [1.0, 2.5, 4.0, 4.0]
    assert batch.LinearScaling(50, 100, 0).factor(0) == 0.5
    rec = rule.record()
    assert rec["rule"] == "linear scaling with warm-up" and rec["factor"] == 4 and rec["warmup_steps"] == 10
    with pytest.raises(ValueError):
        batch.LinearScaling(0, 100, 1)


def test_lr_rule_scales_the_workloads_own_schedule():
    from benchbench.core import optimizers

    opt = optimizers.MomentumSGD(lr=0.1)
    rule = batch_run.LrRule(batch=200, default_batch=100, warmup_steps=2)
    base = rule.base(opt)
    seen = []
    for step in range(4):
        rule.apply(opt, base, step)
        seen.append(round(opt.lr, 6))
    assert seen == [0.1, 0.15, 0.2, 0.2]
    assert rule.base(opt) == 0.1           # no schedule change: the unscaled rate is kept
    opt.lr = 0.01                           # the workload's schedule steps down
    assert rule.base(opt) == 0.01
    adam = optimizers.Adam(alpha=0.002)
    assert batch.lr_attribute(adam) == "alpha" and batch.lr_attribute(opt) == "lr"


def test_scaled_batches():
    assert batch.scaled_batches(64, 1, "strong") == (64, 64)
    assert batch.scaled_batches(64, 2, "strong") == (64, 32)
    assert batch.scaled_batches(64, 2, "weak") == (128, 64)
    with pytest.raises(ValueError, match="does not split"):
        batch.scaled_batches(63, 2, "strong")


def test_batch_descs_put_the_batch_in_the_cell_id():
    desc = {"id": "mlp_mnist/gpu:0,1/r0", "n_ranks": 2, "scaling": "weak", "device_kind": "gpu", "batch_size": 100}
    out = batch.batch_descs(desc, [32, "max"], memory_limit=1000)
    assert [d["id"] for d in out] == ["mlp_mnist@b32/gpu:0,1/r0", "mlp_mnist@bmax/gpu:0,1/r0"]
    assert out[0]["batch"]["requested"] == 32 and out[0]["batch"]["per_device"] is True
    assert out[1]["batch"]["memory_limit_bytes"] is None  # a GPU's limit is its memory
    cpu = batch.batch_descs({"id": "m/cpu/r1", "device_kind": "cpu"}, ["max"], memory_limit=1000)
    assert cpu[0]["batch"]["memory_limit_bytes"] == 1000 and cpu[0]["batch"]["per_device"] is False
