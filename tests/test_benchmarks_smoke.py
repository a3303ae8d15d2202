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
