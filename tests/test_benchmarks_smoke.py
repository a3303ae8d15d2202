"""Smoke test of benchmarks/train_step.py: its benchbench half runs and reports numbers (no timing asserted)."""
import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "train_step.py"


@pytest.fixture(scope="module")
def train_step():
    spec = importlib.util.spec_from_file_location("benchbench_benchmark_train_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive(v):
    return isinstance(v, float) and math.isfinite(v) and v > 0


def test_measure_mlp_benchbench_half(train_step):
    row = train_step.measure("mlp_mnist", steps=2, warmup=1, torch_models=None, settle=0)
    bb = row["benchbench"]
    assert row["batch_size"] == 100
    assert len(bb["step_ms"]) == 2
    assert all(_positive(v) for v in bb["step_ms"])
    assert _positive(bb["samples_per_s"]) and _positive(bb["gflops"])
    assert bb["ms_min"] <= bb["ms_median"]
    assert math.isfinite(bb["first_loss"])
    assert "torch" not in row and "ratio" not in row


def test_measure_rejects_bad_steps(train_step):
    with pytest.raises(ValueError, match="steps"):
        train_step.measure("mlp_mnist", steps=0, warmup=0)


def test_main_writes_json_without_torch(train_step, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_step, "measure_gemm", lambda torch=None: {"n": 8, "numpy_gflops": 1.0})
    out = tmp_path / "result.json"
    rc = train_step.main(["--workload", "mlp", "--steps", "2", "--warmup", "0", "--settle", "0",
                          "--no-torch", "--json", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert [w["key"] for w in result["workloads"]] == ["mlp"]
    assert _positive(result["overhead"]["benchbench_us_per_op"])
    assert "torch" not in result["machine"]
    printed = capsys.readouterr().out
    assert "MLP/MNIST" in printed and "PyTorch: not asked for" in printed


@pytest.mark.multi_gpu(2)
def test_measure_on_the_second_gpu(train_step):
    row = train_step.measure("mlp_mnist:small", steps=1, warmup=1, torch_models=None, settle=0, device="gpu:1")
    assert math.isfinite(row["benchbench"]["first_loss"]) and len(row["benchbench"]["step_ms"]) == 1


def test_profile_takes_the_device(train_step):
    text = train_step.profile("mlp_mnist:small", steps=1, top=3, device="cpu")
    assert "cumulative" in text


def test_tf32_is_off_on_both_sides_for_a_gpu(train_step):
    class Flags:
        allow_tf32 = True

    class FakeTorch:
        class backends:
            class cuda:
                matmul = Flags()

            cudnn = Flags()

    env = {"CUPY_TF32": "1"}
    record = train_step.tf32_off("gpu:0", FakeTorch, env)
    assert env == {"CUPY_TF32": "0", "NVIDIA_TF32_OVERRIDE": "0"}
    assert FakeTorch.backends.cuda.matmul.allow_tf32 is False and FakeTorch.backends.cudnn.allow_tf32 is False
    assert record["torch.backends.cuda.matmul.allow_tf32"] is False and record["torch.backends.cudnn.allow_tf32"] is False
    cpu_env = {}
    assert train_step.tf32_off("cpu", FakeTorch, cpu_env)["applies"] is False and cpu_env == {}
def test_ceiling_fraction_of_each_framework(train_step):
    ceiling = train_step.gemm_ceiling({"n": 8, "numpy_gflops": 150.0, "torch_gflops": 200.0},
                                      {"n": 8, "numpy_gflops": 180.0})
    assert ceiling == 200.0
    row = {"label": "X", "batch_size": 4, "target": 1.2, "ratio": 1.5, "ratio_min": 1.4,
           "benchbench": {"ms_median": 2.0, "ms_iqr": 0.1, "samples_per_s": 2000.0, "gflops": 50.0, "first_loss": 1.0},
           "torch": {"ms_median": 1.0, "ms_iqr": 0.1, "samples_per_s": 4000.0, "gflops": 100.0, "first_loss": 1.0}}
    train_step.add_ceiling_fractions(row, ceiling)
    assert row["benchbench"]["ceiling_fraction"] == pytest.approx(0.25)
    assert row["torch"]["ceiling_fraction"] == pytest.approx(0.5)
    line = train_step.format_row(row)
    assert " 25%" in line and " 50%" in line and "MISS" in line
    with pytest.raises(ValueError, match="ceiling"):
        train_step.add_ceiling_fractions(row, 0.0)
    with pytest.raises(ValueError, match="no GEMM rate"):
        train_step.gemm_ceiling({"n": 8})


def test_run_reports_the_ceiling_fraction(train_step, monkeypatch):
    rates = iter([40.0, 60.0])
    monkeypatch.setattr(train_step, "measure_gemm", lambda torch=None: {"n": 8, "numpy_gflops": next(rates)})
    result = train_step.run(["mlp"], steps=1, warmup=0, use_torch=False, overhead_repeats=2, settle=0,
                            log=lambda line: None)
    assert result["gemm_ceiling_gflops"] == 60.0
    bb = result["workloads"][0]["benchbench"]
    assert bb["ceiling_fraction"] == pytest.approx(bb["gflops"] / 60.0)
    assert any("ceiling (best GEMM rate of this run): 60.0" in line for line in train_step.format_report(result))


def test_profile_runs_on_the_cpu(train_step):
    text = train_step.profile("mlp_mnist", steps=1, top=5, device="cpu")
    assert "function calls" in text


def test_conv_chunks_ab_restores_the_budget_and_times_both(monkeypatch):
    spec = importlib.util.spec_from_file_location("benchbench_benchmark_conv_chunks_ab",
                                                  SCRIPT.parent / "conv_chunks_ab.py")
    ab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ab)
    from benchbench.core.kernels import conv_chunks as _conv_chunks

    before = _conv_chunks.COL_CHUNK_BYTES, _conv_chunks.HOLD_COL_BYTES
    med = ab.compare((3, 2, 4, 6, 3, 1, 1), {"kept": (1 << 62, 1 << 62), "split": (1, 0)}, rounds=1)
    assert set(med) == {"kept", "split"} and all(_positive(v) for v in med.values())
    assert (_conv_chunks.COL_CHUNK_BYTES, _conv_chunks.HOLD_COL_BYTES) == before


def test_conv_algorithms_times_every_algorithm_that_applies_and_leaves_the_setting(monkeypatch):
    spec = importlib.util.spec_from_file_location("benchbench_benchmark_conv_algorithms",
                                                  SCRIPT.parent / "conv_algorithms.py")
    ca = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ca)
    monkeypatch.setenv("BENCHBENCH_CONV_ALGORITHM", "im2col")
    monkeypatch.setattr(ca, "SHAPES", {"3x3": (2, 3, 4, 6, 3, 1, 1, True, 2), "5x5": (2, 3, 4, 8, 5, 1, 0, False, 1)})
    rows = ca.run(["3x3", "5x5"], rounds=1, use_torch=False, log=lambda line: None, settle=0)
    from benchbench.core.kernels import cpu_compiled

    more = {"direct", "numpy"} if cpu_compiled.active() else set()
    assert set(rows[0]["ms"]) == {"im2col", "winograd", "auto"} | more
    assert set(rows[1]["ms"]) == {"im2col", "auto"} | more
    assert all(_positive(v) for r in rows for v in r["ms"].values()) and rows[0]["layers"] == 2
    assert rows[1]["gflops"]["auto"] == pytest.approx(ca.flops(2, 3, 4, 8, 5, 1, 0, False) / rows[1]["ms"]["auto"] / 1e6)
    import os

    assert os.environ["BENCHBENCH_CONV_ALGORITHM"] == "im2col"
