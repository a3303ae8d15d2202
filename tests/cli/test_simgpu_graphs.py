"""``benchbench run --device all --gpu-graphs on,off`` on two simulated GPUs: every GPU cell of mode
``on`` replays its CUDA graph (one graph launch and no kernel launch per timed step, as the simulator
counts them) and trains exactly as its eager twin over the steps they share; ``report`` sets eager
and graph throughput side by side.

Run with ``PYTHONPATH=tests/simgpu`` (as CI does).
"""
import pytest

from benchbench import results

from ..plans import fast_plan
from .conftest import cli

pytestmark = [pytest.mark.simgpu, pytest.mark.multi_gpu(2), pytest.mark.mpi]


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("graphs")
    (cwd / "plan.yaml").write_text(fast_plan("['mlp_mnist:small']", "all", timeout_s=300))
    proc = cli(cwd, "run", "--config", "plan.yaml", "--output", "results", "--gpu-graphs", "on,off", timeout=600)
    files = results.find_runs(cwd / "results")
    assert len(files) == 1, proc.stdout + proc.stderr
    return cwd, proc, results.load(files[0])


def test_graph_cells_replay_their_graph_and_train_as_the_eager_cells(graph_run):
    _, proc, run = graph_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cells = {c["id"]: c for c in run["cells"]}
    assert all(c["status"] == "ok" for c in cells.values()), {i: c["reason"] for i, c in cells.items()}
    assert cells["mlp_mnist:small/cpu/r0"]["graph"]["used"] is False
    for device in ("gpu:0", "gpu:1", "gpu:0,1"):
        on, off = cells[f"mlp_mnist:small@graphs-on/{device}/r0"], cells[f"mlp_mnist:small@graphs-off/{device}/r0"]
        graph = on["graph"]
        assert graph["used"] and graph["requested"] == "on" and graph["self_check"]["identical"], graph
        assert off["graph"]["used"] is False and "off" in off["graph"]["reason"]
        timed = len(on["timing"]["step_s"])
        assert timed == 3 and on["timing"]["warmup_steps"] == 2  # the capture step is warm-up
        assert graph["simulated_launches_per_step"] == {"graph": [1] * timed, "kernel": [0] * timed}
        assert graph["host_launch_s"] > 0 and graph["gpu_step_s"] > 0
        shared = min(len(on["loss_curve"]), len(off["loss_curve"]))
        assert shared == 4 and on["loss_curve"][:shared] == off["loss_curve"][:shared], device
        assert set(on["timing"]["phases_s"]) == {"data", "graph"}


def test_the_report_sets_eager_and_graph_throughput_side_by_side(graph_run, capsys):
    from benchbench import cli as cli_module

    cwd, _, run = graph_run
    assert cli_module.main(["report", str(results.find_runs(cwd / "results")[0])]) == 0
    out = capsys.readouterr().out
    section = out[out.index("== CUDA graphs =="):]
    assert "eager vs CUDA graph" in section
    for device in ("gpu:0", "gpu:1", "gpu:0,1"):
        assert any(line.split()[:2] == ["mlp_mnist", device] for line in section.splitlines()), section
    assert "mlp_mnist@graphs-on" in out and "mlp_mnist@graphs-off" in out  # the two modes in rows of their own
