"""The phase names are defined once and shared by the executor and the reports."""
from benchbench import phases
from benchbench.executor import timing
from benchbench.reporting import summary


def test_phase_names_in_step_order():
    assert phases.PHASES == ("data", "forward", "backward", "update", "allreduce", "graph")


def test_executor_and_reports_share_the_one_definition():
    assert timing.PHASES is phases.PHASES
    assert summary.PHASES is phases.PHASES


def test_every_phase_is_described_in_the_module_docstring():
    for name in phases.PHASES:
        assert f"``{name}``:" in phases.__doc__
