"""`--device all` expands to cells that run; a named spec that cannot split the batch is an error."""
import pytest

from benchbench import registry
from benchbench.executor.planning import batch_split
from benchbench.executor.launch import launcher
from benchbench.executor.run import describe_cell
from benchbench.executor.planning.devices import DeviceSpecError, parse_specs
from benchbench.executor.planning.plan import load_plan

QUICK = ["mlp_mnist", "cnn_mnist", "lenet5_cifar10", "lstm_sine", "resnet_cifar10"]


def _descs(devices, n_gpus, scaling="strong"):
    plan = load_plan(None, {"devices": devices, "workloads": QUICK, "profile": "quick", "scaling": scaling})
    reg = registry.discover()
    specs, _ = parse_specs(plan.devices, n_gpus)
    out = []
    for name in QUICK:
        wl, params = registry.resolve(name, reg)
        for spec in specs:
            out.append(describe_cell(plan, wl, params, wl.label(params), spec, 0))
    return plan, out


def _batches():
    reg = registry.discover()
    return {name: registry.resolve(name, reg)[0].batch_size for name in QUICK}


@pytest.mark.parametrize("n_gpus", [2, 3, 4, 6, 8])
def test_all_keeps_exactly_the_cells_whose_batch_splits(n_gpus):
    plan, descs = _descs("all", n_gpus)
    kept, notices = batch_split.keep_splittable(descs, batch_split.named_specs(parse_specs(plan.devices, n_gpus)[0]))
    batches = _batches()
    for d in descs:
        splits = batches[d["workload_name"]] % d["n_ranks"] == 0
        assert (d in kept) == splits, (d["workload"], d["device"])
    # every single device is always kept
    assert {d["device"] for d in kept} >= {"cpu"} | {f"gpu:{i}" for i in range(n_gpus)}
    dropped = {d["device"] for d in descs if d not in kept}
    assert len(notices) == len(dropped)
    for spec in dropped:
        assert any(line.startswith(f"--device all: {spec} left out for ") for line in notices), notices


def test_all_on_three_gpus_leaves_out_the_three_rank_cells_and_says_why():
    plan, descs = _descs("all", 3)
    kept, notices = batch_split.keep_splittable(descs, batch_split.named_specs(parse_specs(plan.devices, 3)[0]))
    assert "gpu:0,1,2" not in {d["device"] for d in kept}  # batches 100, 20 and 64: none divides by 3
    assert {d["device"] for d in kept if d["n_ranks"] == 2} == {"gpu:0,1"}
    assert notices == [
        "--device all: gpu:0,1,2 left out for cnn_mnist (batch 100), lenet5_cifar10 (batch 100), "
        "lstm_sine (batch 20), mlp_mnist (batch 100), resnet_cifar10 (batch 64): the batch does not "
        "split over 3 ranks under strong scaling (--scaling weak runs it)"]


def test_all_on_eight_gpus_keeps_eight_ranks_for_the_batch_of_64_only():
    plan, descs = _descs("all", 8)
    kept, _ = batch_split.keep_splittable(descs, batch_split.named_specs(parse_specs(plan.devices, 8)[0]))
    eight = [d["workload_name"] for d in kept if d["n_ranks"] == 8]
    assert eight == ["resnet_cifar10"]


def test_weak_scaling_keeps_every_cell():
    plan, descs = _descs("all", 6, scaling="weak")
    kept, notices = batch_split.keep_splittable(descs, batch_split.named_specs(parse_specs(plan.devices, 6)[0]))
    assert kept == descs and notices == []


@pytest.mark.parametrize("spec", ["gpu:0,1,2", "gpu:all", "cpu:dp3"])
def test_a_named_spec_that_cannot_split_is_an_error(spec):
    plan, descs = _descs(spec, 3)
    with pytest.raises(DeviceSpecError, match=r"mlp_mnist: the global batch of 100 does not split over 3 devices under strong scaling; use --scaling weak, or a device count that divides it \(2\)"):
        batch_split.keep_splittable(descs, batch_split.named_specs(parse_specs(plan.devices, 3)[0]))


def test_named_beside_all_is_still_named():
    assert batch_split.named_specs(parse_specs(["all", "gpu:0,1,2"], 3)[0]) == {"gpu:0,1,2"}
    assert batch_split.named_specs(parse_specs("all", 3)[0]) == set()
    plan, descs = _descs(["all", "gpu:0,1,2"], 3)
    with pytest.raises(DeviceSpecError, match="gpu:0,1,2: mlp_mnist: the global batch of 100 does not split"):
        batch_split.keep_splittable(descs, batch_split.named_specs(parse_specs(plan.devices, 3)[0]))


def test_the_error_lists_the_counts_that_divide():
    d = {"n_ranks": 8, "batch_size": 100, "scaling": "strong", "device": "gpu:0,1,2,3,4,5,6,7", "workload": "w"}
    with pytest.raises(DeviceSpecError, match=r"a device count that divides it \(2, 4, 5\)"):
        batch_split.keep_splittable([d], {"gpu:0,1,2,3,4,5,6,7"})


def test_cli_refuses_a_named_spec_that_cannot_split_before_anything_runs(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "benchbench", "run", "--device", "cpu:dp3", "--workload", "mlp_mnist",
                           "--data", "synthetic", "--output", str(tmp_path / "results")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == ["benchbench: error: cpu:dp3: mlp_mnist: the global batch of 100 does not split over 3 devices under "
                     "strong scaling; use --scaling weak, or a device count that divides it (2)"]
    assert not (tmp_path / "results").exists()


@pytest.mark.simgpu
@pytest.mark.parametrize("n_gpus", [3, 6, 8])
def test_gpu_all_that_cannot_split_is_refused_on_simulated_machines(tmp_path, n_gpus):
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "benchbench", "run", "--device", "gpu:all", "--workload", "mlp_mnist",
                           "--data", "synthetic", "--output", str(tmp_path / "results")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "BENCHBENCH_SIM_GPUS": str(n_gpus)})
    spec = "gpu:" + ",".join(map(str, range(n_gpus)))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith(f"benchbench: error: {spec}: mlp_mnist: the global batch of 100 does not "
                                          f"split over {n_gpus} devices under strong scaling")
    assert not (tmp_path / "results").exists()
