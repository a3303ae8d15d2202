"""``--gpu-graphs``: parsing, the cells a list of modes makes, and what each cell is told."""
import pytest

from benchbench import registry
from benchbench.errors import PlanError
from benchbench.executor.planning import graph_modes
from benchbench.executor.planning.plan import load_plan, plan_from_dict
from benchbench.executor.run import plan_cells, resolve_workloads


@pytest.mark.parametrize("value, want", [("auto", ["auto"]), ("on,off", ["on", "off"]), (" OFF ", ["off"]),
                                         (True, ["on"]), ([True, False], ["on", "off"]), (["auto", "on"], ["auto", "on"])])
def test_parse_modes(value, want):
    assert graph_modes.parse_modes(value) == want


@pytest.mark.parametrize("value, needle", [("yes", "on, off or auto"), ("on,on", "given twice"), ([], "at least one"),
                                           ("", "on, off or auto"), (3, "on, off or auto")])
def test_parse_modes_rejects(value, needle):
    with pytest.raises(ValueError, match=needle):
        graph_modes.parse_modes(value)


def _cells(devices, modes, gpus=2):
    plan = load_plan(None, {"workloads": ["mlp_mnist:small"], "devices": devices, "gpu_graphs": modes})
    return plan, plan_cells(plan, resolve_workloads(plan, registry.discover(), True), gpus)[0]


def test_a_list_of_modes_makes_a_gpu_cell_per_mode_and_one_cpu_cell():
    plan, cells = _cells(["all"], "on,off")
    assert plan.gpu_graphs == ["on", "off"] and plan_from_dict(plan.as_dict()).gpu_graphs == ["on", "off"]
    ids = [c.id for c in cells]
    assert ids == ["mlp_mnist:small/cpu/r0",
                   "mlp_mnist:small@graphs-on/gpu:0/r0", "mlp_mnist:small@graphs-off/gpu:0/r0",
                   "mlp_mnist:small@graphs-on/gpu:1/r0", "mlp_mnist:small@graphs-off/gpu:1/r0",
                   "mlp_mnist:small@graphs-on/gpu:0,1/r0", "mlp_mnist:small@graphs-off/gpu:0,1/r0"]
    assert [c.gpu_graphs for c in cells] == [None, "on", "off", "on", "off", "on", "off"]


def test_one_mode_keeps_the_ids_and_tells_the_gpu_cells():
    _, cells = _cells(["all"], None)  # the default: auto
    assert [c.id for c in cells] == ["mlp_mnist:small/cpu/r0", "mlp_mnist:small/gpu:0/r0", "mlp_mnist:small/gpu:1/r0",
                                     "mlp_mnist:small/gpu:0,1/r0"]
    assert [c.gpu_graphs for c in cells] == [None, "auto", "auto", "auto"]


def test_graphs_on_without_a_gpu_is_a_usage_error():
    with pytest.raises(PlanError, match="--gpu-graphs on needs a GPU"):
        _cells(["cpu"], "on", gpus=0)
    _, cells = _cells(["cpu"], "auto", gpus=0)  # auto (and off) run anywhere
    assert [c.gpu_graphs for c in cells] == [None]


def test_a_bad_mode_names_the_plan_key():
    with pytest.raises(PlanError, match="'gpu_graphs'.*'sometimes'"):
        load_plan(None, {"gpu_graphs": "sometimes"})
