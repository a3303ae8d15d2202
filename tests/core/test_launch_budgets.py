"""Kernel launches per float32 training step, held to budgets (counted by the simulated GPUs).

Counts come from ``benchmarks/launches.py`` (its ``per_step``), the tool that prints the table in
``benchmarks/README.md``. The count does not depend on the batch (every kernel covers the whole
batch), so the steps run at batch 2 to keep CI cheap; ``test_the_count_does_not_depend_on_the_batch``
holds that at the MLP's quick-plan batch of 100.

Beside each budget: the baseline (one cupy call per array operation, before the fused kernels),
the issue's target (a third of the baseline) and the floor the count is measured against, GEMMs
plus one kernel per fused operation:
- mlp_mnist: 8 GEMMs (3 forward, 3 weight, 2 input gradients) + 2 bias-and-relu + 1 bias add + 2 relu
  gradients + 3 bias gradients + softmax cross-entropy 3 (rows, which also count the valid labels,
  write the loss's seed and the accuracy's hits; the loss reduction; the gradient) + the accuracy's
  mean 1 + gradient packing 1 + update 1 = 22.
- cnn/lenet5: per convolution im2col + GEMM + bias-and-layout forward, layout + bias gradient + 2
  GEMMs + col2im backward; per pooling 1 + 1; per activation 1 + 1 (the fully connected hidden layer's
  bias and activation in one); the MLP head as above.
- resnet18: per convolution as above without a bias; per BatchNorm 2 reductions + 1 pass + running
  averages forward, 2 reductions + 1 pass backward; relu 1 + 1; residual add 1.
- lstm per-step: per time step 3 linear layers (GEMM + bias forward, GEMMs + bias gradient backward,
  a shared weight's gradient added inside its GEMM and a shared bias's inside its reduction), the
  recurrent add, the fused gate kernel each way: about 21 a step over 50 steps, plus the loss (2 + 1) and
  the first addition of each shared gradient.
- lstm fused: per time step one GEMM and one gate kernel each way (4 x 50), plus the sequence's setup
  (weights gathered 1, inputs packed 1; backward: the recurrent matrix 1, the weight gradients 2 GEMMs
  + their split 1, the input gradient 1) and the linear layers and loss around it.
"""
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.simgpu

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "launches.py"

# workload: (budget = today's count, baseline, the issue's target = a third of the issue's baseline)
BUDGETS = {
    "mlp_mnist": (22, 63, 22),
    "cnn_mnist": (39, 213, 57),
    "lenet5_cifar10": (49, 261, 71),
    "resnet_cifar10:depth=18": (354, 1271, 433),
    "lstm_sine": (1102, 2958, 1152),
    "lstm_sine:fused=true": (222, 689, 222),
}


@pytest.fixture(scope="module")
def launches():
    spec = importlib.util.spec_from_file_location("benchbench_benchmark_launches", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("workload", sorted(BUDGETS))
def test_a_training_step_stays_within_its_launch_budget(launches, workload):
    budget, baseline, target = BUDGETS[workload]
    r = launches.per_step(workload, batch_size=2)
    assert r["syncs"] == 0  # a float32 step reads nothing back to the host
    assert r["launches"] <= budget, f"{workload}: {r['launches']} launches a step, budget {budget}"
    assert budget < baseline / 2


@pytest.mark.parametrize("workload", sorted(BUDGETS))
def test_every_budget_is_within_the_issues_target_of_a_third_of_the_baseline(workload):
    budget, _, target = BUDGETS[workload]
    assert budget <= target


def test_the_count_does_not_depend_on_the_batch(launches):
    assert launches.per_step("mlp_mnist")["launches"] == launches.per_step("mlp_mnist", batch_size=2)["launches"]
