from pathlib import Path

import pytest

from benchbench.reporting.runs import ReportError
from benchbench.reporting.verbs import compare
from benchbench.reporting.compare import compare_frame, version_differences


@pytest.fixture(scope="module")
def frame(alpha_run, beta_run):
    return compare_frame([alpha_run, beta_run], prices={"beta-5e6f7a8b": 4000}).set_index(["workload", "device", "machine"])


def test_ratios_with_ci(frame):
    cpu = frame.loc[("mlp_mnist", "cpu", "beta-5e6f7a8b")]
    base = frame.loc[("mlp_mnist", "cpu", "alpha-1a2b3c4d")]
    assert cpu.ratio == pytest.approx(cpu.samples_per_s / base.samples_per_s, rel=1e-3)
    assert cpu.ratio_ci_low <= cpu.ratio <= cpu.ratio_ci_high
    # One repeat per machine: a within-run interval excludes 1, yet nothing is called significant.
    assert cpu.ratio_ci_high < 1 and not cpu.significant and cpu.interval == "within-run"
    assert 2 <= cpu.repeats_needed <= 3  # a 2x difference at the assumed 5% run-to-run variation
    gpu = frame.loc[("mlp_mnist", "gpu:0", "beta-5e6f7a8b")]
    assert gpu.ratio_ci_low < 1 < gpu.ratio_ci_high and not gpu.significant


def test_energy_price_and_missing(frame):
    alpha_gpu = frame.loc[("mlp_mnist", "gpu:0", "alpha-1a2b3c4d")]
    assert alpha_gpu.watts == pytest.approx(200.0)
    # Watts are the timed window's (1000 J over 8 s), not its joules over the whole cell's 10 s.
    beta_gpu = frame.loc[("mlp_mnist", "gpu:0", "beta-5e6f7a8b")]
    assert beta_gpu.watts == pytest.approx(125.0)
    assert alpha_gpu.samples_per_joule == pytest.approx(alpha_gpu.samples_per_s / 200.0)
    beta_cpu = frame.loc[("cnn_mnist", "cpu", "beta-5e6f7a8b")]
    assert beta_cpu.samples_per_s_per_1k_price == pytest.approx(beta_cpu.samples_per_s / 4)
    assert frame.loc[("lstm_sine", "cpu", "beta-5e6f7a8b")].status == "missing"


def test_compare_text(alpha_path, beta_path):
    text = compare([alpha_path, beta_path], prices={"alpha-1a2b3c4d": 12000})
    line = next(l for l in text.splitlines() if l.split()[:2] == ["mlp_mnist", "gpu:0"])
    assert "within-run only: not significant" in line and "repeats per machine would decide it" in line
    assert "never called significant" in text
    assert "missing on beta-5e6f7a8b: mlp_mnist on gpu:1" in text and "lstm_sine on cpu" in text
    assert "software versions differ: numpy: alpha-1a2b3c4d 2.2.1, beta-5e6f7a8b 2.1.0" in text
    assert "alpha-1a2b3c4d samples/s per 1k price" in text
    assert "beta-5e6f7a8b samples/J" in text


def test_compare_markdown_and_csv(tmp_path, alpha_path, beta_path):
    md = compare([alpha_path, beta_path], fmt="markdown")
    header = next(l for l in md.splitlines() if l.startswith("| workload ") and "/" in l)
    assert "beta-5e6f7a8b / alpha-1a2b3c4d" in [c.strip() for c in header.split("|")]
    out = tmp_path / "c.csv"
    assert compare([alpha_path, beta_path], fmt="csv", output=out) == f"wrote {out}"
    assert out.read_text().startswith("workload,device,machine")


def test_version_differences(alpha_run):
    assert version_differences([alpha_run, alpha_run]) == []


def test_bad_input(alpha_path, beta_path):
    with pytest.raises(ReportError, match="at least two"):
        compare([alpha_path])
    with pytest.raises(ReportError, match="--price nobody=5: no such machine"):
        compare([alpha_path, beta_path], prices={"nobody": 5})
    with pytest.raises(ReportError, match="--price beta-5e6f7a8b=-1: a price must be a positive number"):
        compare([alpha_path, beta_path], prices={"beta-5e6f7a8b": -1})
    with pytest.raises(ValueError, match="compare: fmt"):
        compare([alpha_path, beta_path], fmt="xls")


def _repeated_run(mid, step, repeats, spread, contended=False):
    from .conftest import cell, run_doc
    from benchbench.reporting.runs import Run

    cells = []
    for r in range(repeats):
        c = cell("mlp_mnist", "cpu", step * (1 + spread * (r - (repeats - 1) / 2)), seed=r, repeat=r)
        if contended:
            c["interference"] = {"verdict": "contended", "reasons": ["other processes used 50% of the machine's CPU time"]}
        cells.append(c)
    doc = run_doc(mid, cells, gpus=0)
    doc["probes"] = {"start": {"sgemm_gflops": 90.0 if mid.startswith("a") else 45.0, "membw_gbs": 10.0}}
    return Run(path=Path(f"/nowhere/{mid}.json"), data=doc)


def test_repeats_decide_significance_and_contention_warns():
    base = _repeated_run("alpha-1a2b3c4d", 0.05, 3, 0.02)
    fast = _repeated_run("beta-5e6f7a8b", 0.025, 3, 0.02, contended=True)
    frame = compare_frame([base, fast]).set_index(["machine"])
    row = frame.loc["beta-5e6f7a8b"]
    assert row.interval == "welch-log-medians" and row.significant and row.ratio == pytest.approx(2.0, rel=0.02)
    same = compare_frame([base, _repeated_run("beta-5e6f7a8b", 0.0502, 3, 0.05)]).set_index(["machine"])
    assert same.loc["beta-5e6f7a8b"].interval == "welch-log-medians" and not same.loc["beta-5e6f7a8b"].significant
    from benchbench.reporting.compare import compare_notes

    notes = compare_notes([base, fast], compare_frame([base, fast]))
    assert any(n.startswith("warning: mlp_mnist on cpu on beta-5e6f7a8b was contended") for n in notes)
    assert any("alpha-1a2b3c4d 90 GFLOP/s sgemm" in n and "beta-5e6f7a8b 45 GFLOP/s" in n for n in notes)
