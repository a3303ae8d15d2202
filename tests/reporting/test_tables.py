import io

import pandas as pd
import pytest

from benchbench.reporting.runs import ReportError
from benchbench.reporting.verbs import report
from benchbench.reporting.summary import summarize_run
from benchbench.reporting.render import fmt_bytes, fmt_number, fmt_seconds
from benchbench.reporting.tables import LOG_COLUMNS


@pytest.fixture(scope="module")
def terminal(alpha_path):
    return report([alpha_path])


def _cell(run, cell_id):
    return next(c for c in run.cells if c["id"] == cell_id)


def test_terminal_tables_carry_the_numbers(terminal, alpha_run):
    for workload in ("mlp_mnist (global batch 100)", "cnn_mnist", "lstm_sine (global batch 20)"):
        assert workload in terminal
    stats = _cell(alpha_run, "mlp_mnist/gpu:0,1/r0")["stats"]["samples_per_s"]
    assert f"{fmt_number(stats['median'])} [{fmt_number(stats['ci_low'])}, {fmt_number(stats['ci_high'])}]" in terminal
    s = summarize_run(alpha_run).set_index(["workload", "device"])
    eff = s.loc[("mlp_mnist", "gpu:0,1"), "scaling_efficiency"]
    assert f"{eff:.0%} (strong, vs gpu:0)" in terminal
    assert f"{s.loc[('mlp_mnist', 'gpu:0'), 'speedup_vs_cpu']:.3g}×" in terminal
    assert "accuracy 0.9812 (≥0.98 ✓)" in terminal and "mse 0.002 (≤0.01 ✓)" in terminal
    assert "10.0 min" in terminal and "450 J" in terminal and "200 MiB" in terminal


def test_terminal_shows_machine_status_and_data(terminal, build):
    assert "machine alpha-1a2b3c4d" in terminal and "2026-11-23 10:51 UTC" in terminal
    assert f"oom: CUDA out of memory {build.EVIL}" in terminal
    assert "cnn_mnist on cpu: synthetic data (offline: synthetic MNIST-shaped data)" in terminal
    line = next(l for l in terminal.splitlines() if l.startswith("cpu ") and "generated" in l)
    assert "5," in line


def test_markdown(alpha_path):
    text = report([alpha_path], fmt="markdown")
    assert "### mlp_mnist (global batch 100)" in text
    rows = [l for l in text.splitlines() if l.startswith("|") and l.split("|")[1].strip() == "gpu:0,1"]
    assert sum(r.count(" | ") == 11 for r in rows) == 1  # the run's table (the summary has one too)


def test_csv_round_trips_raw_numbers(alpha_path, beta_path, alpha_run):
    frame = pd.read_csv(io.StringIO(report([alpha_path, beta_path], fmt="csv")))
    assert set(frame["machine_id"]) == {"alpha-1a2b3c4d", "beta-5e6f7a8b"}
    row = frame[(frame["machine_id"] == "alpha-1a2b3c4d") & (frame["device"] == "gpu:0")
                & (frame["workload"] == "mlp_mnist")].iloc[0]
    assert row.samples_per_s == pytest.approx(_cell(alpha_run, "mlp_mnist/gpu:0/r0")["stats"]["samples_per_s"]["median"])


def test_output_file(tmp_path, alpha_path):
    out = tmp_path / "out" / "r.md"
    assert report([alpha_path], fmt="markdown", output=out) == f"wrote {out}"
    assert out.read_text(encoding="utf-8").startswith("# benchbench report: alpha-1a2b3c4d")


def test_epoch_log_in_chainer_columns(alpha_path):
    text = report([alpha_path], log="mlp_mnist/gpu:0/r0")
    lines = text.splitlines()
    assert lines[1].split() == list(LOG_COLUMNS)
    first = lines[2].split()
    assert first == ["1", "1", "1.1", "0.9", "0.88", "1.2"]
    assert len(lines) == 5


def test_epoch_log_errors(alpha_path):
    with pytest.raises(ReportError, match="no cell 'nope'"):
        report([alpha_path], log="nope")
    with pytest.raises(ReportError, match="no epoch log"):
        report([alpha_path], log="lstm_sine/cpu/r0")


def test_bad_format(alpha_path):
    with pytest.raises(ValueError, match="report: fmt must be one of"):
        report([alpha_path], fmt="pdf")


def test_formatters():
    assert fmt_number(float("nan")) == "—" and fmt_number(12345.6) == "12,346" and fmt_number(1.2345) == "1.23"
    assert fmt_bytes(3 << 30) == "3.00 GiB" and fmt_seconds(7200) == "2.00 h"


def test_quick_quality_is_a_sanity_value_and_full_shows_the_best(tmp_path, build):
    from benchbench.reporting.runs import Run
    from benchbench.reporting.tables import display_frame

    from .conftest import mlp_quality

    quick = build.cell("mlp_mnist", "cpu", 0.05, quality={**mlp_quality(False, None), "judged": False})
    full = build.cell("mlp_mnist", "gpu:0", 0.01, quality={**mlp_quality(True, 30.0), "value": 0.9812,
                                                           "best_value": 0.9840, "until": "epochs"})
    frame = display_frame(summarize_run(Run(tmp_path / "r.json", build.run_doc("m-1", [quick, full]))))
    assert list(frame["quality"]) == ["accuracy 0.95 (quick: sanity value)", "accuracy 0.9812, best 0.984 (≥0.98 ✓)"]
