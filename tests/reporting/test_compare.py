import pytest

from benchbench.reporting.runs import ReportError
from benchbench.reporting.compare import compare
from benchbench.reporting.compare import compare_frame, version_differences


@pytest.fixture(scope="module")
def frame(alpha_run, beta_run):
    return compare_frame([alpha_run, beta_run], prices={"beta-5e6f7a8b": 4000}).set_index(["workload", "device", "machine"])


def test_ratios_with_ci(frame):
    cpu = frame.loc[("mlp_mnist", "cpu", "beta-5e6f7a8b")]
    base = frame.loc[("mlp_mnist", "cpu", "alpha-1a2b3c4d")]
    assert cpu.ratio == pytest.approx(cpu.samples_per_s / base.samples_per_s, rel=1e-3)
    assert cpu.ratio_ci_low <= cpu.ratio <= cpu.ratio_ci_high and cpu.significant
    gpu = frame.loc[("mlp_mnist", "gpu:0", "beta-5e6f7a8b")]
    assert gpu.ratio_ci_low < 1 < gpu.ratio_ci_high and not gpu.significant


def test_energy_price_and_missing(frame):
    alpha_gpu = frame.loc[("mlp_mnist", "gpu:0", "alpha-1a2b3c4d")]
    assert alpha_gpu.watts == pytest.approx(200.0)
    assert alpha_gpu.samples_per_joule == pytest.approx(alpha_gpu.samples_per_s / 200.0)
    beta_cpu = frame.loc[("cnn_mnist", "cpu", "beta-5e6f7a8b")]
    assert beta_cpu.samples_per_s_per_1k_price == pytest.approx(beta_cpu.samples_per_s / 4)
    assert frame.loc[("lstm_sine", "cpu", "beta-5e6f7a8b")].status == "missing"


def test_compare_text(alpha_path, beta_path):
    text = compare([alpha_path, beta_path], prices={"alpha-1a2b3c4d": 12000})
    line = next(l for l in text.splitlines() if l.startswith("mlp_mnist  gpu:0 "))
    assert "no significant difference" in line
    assert "missing on beta-5e6f7a8b: mlp_mnist on gpu:1" in text and "lstm_sine on cpu" in text
    assert "software versions differ: numpy: alpha-1a2b3c4d 2.2.1, beta-5e6f7a8b 2.1.0" in text
    assert "alpha-1a2b3c4d samples/s per 1k price" in text
    assert "beta-5e6f7a8b samples/J" in text


def test_compare_markdown_and_csv(tmp_path, alpha_path, beta_path):
    md = compare([alpha_path, beta_path], fmt="markdown")
    assert "| beta-5e6f7a8b / alpha-1a2b3c4d |" in md.splitlines()[2]
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
