"""Reports, plots and HTML from a real short run on the CPU (the executor writes the file)."""
import subprocess
import sys

import pytest

from benchbench.reporting.html import html_report
from benchbench.reporting.plots import build_figures
from benchbench.reporting.runs import resolve_runs
from benchbench.reporting.render import fmt_number
from benchbench.reporting.verbs import report


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("real")
    cmd = [sys.executable, "-m", "benchbench", "run", "--device", "cpu", "--workload", "lstm_sine",
           "--profile", "quick", "--data", "synthetic", "--output", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_report_plots_and_html_of_a_real_run(real_dir, tmp_path):
    (run,) = resolve_runs(None, real_dir)
    cell = run.cells[0]
    assert cell["status"] == "ok"
    text = report(None, real_dir)
    assert f"machine {run.machine_id}" in text and "lstm_sine (global batch" in text
    assert fmt_number(cell["stats"]["samples_per_s"]["median"]) in text
    figures, _ = build_figures(run, "all")
    names = [n for n, _ in figures]
    assert "throughput" in names and "phases_lstm_sine" in names
    page = html_report(None, real_dir, output=tmp_path / "r.html", plots="throughput").read_text(encoding="utf-8")
    assert "<h3>lstm_sine (global batch" in page and "data:image/png;base64," in page
