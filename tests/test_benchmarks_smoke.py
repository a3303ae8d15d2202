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
    # 5x5 Winograd is the compiled kernels' only
    assert set(rows[1]["ms"]) == {"im2col", "auto"} | more | ({"winograd"} if cpu_compiled.active() else set())
    assert all(_positive(v) for r in rows for v in r["ms"].values()) and rows[0]["layers"] == 2
    assert rows[1]["gflops"]["auto"] == pytest.approx(ca.flops(2, 3, 4, 8, 5, 1, 0, False) / rows[1]["ms"]["auto"] / 1e6)
    import os

    assert os.environ["BENCHBENCH_CONV_ALGORITHM"] == "im2col"


def _result(threads, rows):
    blas = [{"internal_api": "openblas", "version": "0", "architecture": "Test", "num_threads": threads}]
    return {"machine": {"blas": blas, "loadavg_start": [0.1, 0.1, 0.1]},
            "workloads": [{"key": k, "label": k, "benchbench": {"ms_median": bb},
                           **({"torch": {"ms_median": pt}, "ratio": bb / pt} if pt else {})}
                          for k, bb, pt in rows]}


def test_speedups_judge_benchbench_against_pytorch(train_step):
    results = {1: _result(1, [("mlp", 10.0, 8.0), ("cnn", 20.0, 10.0), ("solo", 4.0, None)]),
               2: _result(2, [("mlp", 6.0, 5.0), ("cnn", 16.0, 5.0), ("solo", 2.0, None)])}
    lines = train_step.format_speedups(results)
    mlp = next(line for line in lines if line.startswith("mlp"))
    cnn = next(line for line in lines if line.startswith("cnn"))
    # mlp: benchbench 10/6 = 1.67x against PyTorch 8/5 = 1.60x; cnn: 1.25x against 2.00x
    assert "1.67x" in mlp and "1.60x" in mlp and mlp.endswith("ok")
    assert "1.25x" in cnn and "2.00x" in cnn and cnn.endswith("MISS")
    assert "1.25" in mlp and "2.00" in cnn  # the ratios at 1 thread
    assert next(line for line in lines if line.startswith("solo")).rstrip().endswith("2.00x")


def test_threads_runs_one_process_per_count_with_its_thread_variables(train_step, tmp_path, capsys):
    seen = []

    def runner(cmd, env):
        n = int(env["OPENBLAS_NUM_THREADS"])
        seen.append((n, env["NUMBA_NUM_THREADS"], env["OMP_NUM_THREADS"], cmd))
        Path(cmd[cmd.index("--json") + 1]).write_text(json.dumps(_result(n, [("mlp", 10.0 / n, 8.0 / n)])))
        return 0

    argv = train_step._without_threads(["--workload", "mlp", "--threads", "1,2", "--json", "x.json"])
    assert argv == ["--workload", "mlp"]
    out = tmp_path / "both.json"
    assert train_step.run_thread_counts([1, 2], argv, json_out=str(out), runner=runner) == 0
    assert [s[:3] for s in seen] == [(1, "1", "1"), (2, "2", "2")]
    assert all(s[3][2:4] == ["--workload", "mlp"] for s in seen)
    assert set(json.loads(out.read_text())) == {"1", "2"}
    assert "2.00x" in capsys.readouterr().out
    assert train_step.run_thread_counts([1], argv, runner=lambda cmd, env: 1) == 1


@pytest.mark.parametrize("text", ["0", "1,1", "a", ""])
def test_threads_refuses_a_bad_list(train_step, text):
    import argparse
    with pytest.raises(argparse.ArgumentTypeError):
        train_step._thread_list(text)
