import numpy as np
import pytest

from benchbench.reporting.runs import Run
from benchbench.reporting.summary import phase_medians, summarize_run


@pytest.fixture(scope="module")
def alpha(alpha_run):
    return summarize_run(alpha_run).set_index(["workload", "device"])


def _sps(run, cell_id):
    cell = next(c for c in run.cells if c["id"] == cell_id)
    return cell["stats"]["samples_per_s"]["median"]


def test_throughput_from_the_stats_block(alpha, alpha_run):
    row = alpha.loc[("mlp_mnist", "cpu")]
    assert row.samples_per_s == _sps(alpha_run, "mlp_mnist/cpu/r0")
    steps = next(c for c in alpha_run.cells if c["id"] == "mlp_mnist/cpu/r0")["timing"]["step_s"]
    assert row.ms_per_step == pytest.approx(np.median(steps) * 1e3)
    assert row.samples_per_s_ci_low <= row.samples_per_s <= row.samples_per_s_ci_high


def test_speedup_and_scaling_efficiency(alpha, alpha_run):
    cpu = _sps(alpha_run, "mlp_mnist/cpu/r0")
    g1 = _sps(alpha_run, "mlp_mnist/gpu:0/r0")
    g2 = _sps(alpha_run, "mlp_mnist/gpu:0,1/r0")
    g4 = _sps(alpha_run, "mlp_mnist/gpu:0,1,2,3/r0")
    assert alpha.loc[("mlp_mnist", "gpu:0"), "speedup_vs_cpu"] == pytest.approx(g1 / cpu)
    assert alpha.loc[("mlp_mnist", "gpu:0,1"), "scaling_efficiency"] == pytest.approx(g2 / (2 * g1))
    assert alpha.loc[("mlp_mnist", "gpu:0,1,2,3"), "scaling_efficiency"] == pytest.approx(g4 / (4 * g1))
    assert alpha.loc[("mlp_mnist", "gpu:0,1"), "baseline_device"] == "gpu:0"
    assert np.isnan(alpha.loc[("mlp_mnist", "gpu:0"), "scaling_efficiency"])


def test_failed_cell_keeps_status_and_reason(alpha, build):
    row = alpha.loc[("cnn_mnist", "gpu:0")]
    assert row.status == "oom" and build.EVIL in row.reason
    assert np.isnan(row.samples_per_s) and np.isnan(row.speedup_vs_cpu)


def test_data_source_quality_memory_energy(alpha):
    assert alpha.loc[("cnn_mnist", "cpu"), "data_source"] == "synthetic"
    assert "offline" in alpha.loc[("cnn_mnist", "cpu"), "data_note"]
    mlp = alpha.loc[("mlp_mnist", "gpu:0")]
    assert mlp.quality_value == 0.9812 and mlp.quality_reached and mlp.time_to_target_s == 30.0
    assert mlp.peak_memory_bytes == 200 << 20 and mlp.energy_j_per_epoch == 450.0
    assert alpha.loc[("mlp_mnist", "cpu"), "peak_memory_bytes"] == 300 << 20
    lstm = alpha.loc[("lstm_sine", "cpu")]
    assert lstm.quality_metric == "mse" and not lstm.higher_is_better


def test_repeats_are_pooled_and_cpu_dp_uses_the_cpu(tmp_path, build):
    cells = [build.cell("mlp_mnist", "cpu", 0.05, seed=1, repeat=0), build.cell("mlp_mnist", "cpu", 0.05, seed=2, repeat=1),
             build.cell("mlp_mnist", "cpu:dp2", 0.03, seed=3, scaling="weak"),
             build.cell("resnet_cifar10", "cpu", 0.5, params={"depth": 18}),
             build.cell("resnet_cifar10", "cpu", 0.9, params={"depth": 34})]
    run = Run(tmp_path / "r.json", build.run_doc("m-1", cells, gpus=0))
    s = summarize_run(run).set_index(["workload", "device"])
    cpu = s.loc[("mlp_mnist", "cpu")]
    assert cpu.repeats == 2
    steps = np.concatenate([c["timing"]["step_s"] for c in cells[:2]])
    assert cpu.samples_per_s == pytest.approx(np.median(100 / steps))
    dp = s.loc[("mlp_mnist", "cpu:dp2")]
    assert dp.baseline_device == "cpu" and dp.scaling == "weak"
    assert dp.scaling_efficiency == pytest.approx(dp.samples_per_s / (2 * cpu.samples_per_s))
    assert ("resnet_cifar10[depth=18]", "cpu") in s.index and ("resnet_cifar10[depth=34]", "cpu") in s.index


def test_phase_medians(alpha_run):
    cells = [c for c in alpha_run.cells if c["id"] == "mlp_mnist/gpu:0,1/r0"]
    phases = phase_medians(cells)
    assert set(phases) == {"data", "forward", "backward", "update", "allreduce"}
    assert phases["allreduce"] == pytest.approx(np.median(cells[0]["timing"]["phases_s"]["allreduce"]))


def test_unknown_values_are_null(tmp_path, build):
    from benchbench.reporting.plots import tta_figure
    from benchbench.reporting.tables import epoch_log_text
    from benchbench.reporting.verbs import report

    ok = build.cell("mlp_mnist", "cpu", 0.05, epochs=2)
    ok["epoch_log"][1]["validation/main/accuracy"] = None  # a non-finite value is written as null
    ok["memory"] = None
    ok["data"] = None
    bad = build.cell("mlp_mnist", "gpu:0", 0.0, status="failed", reason="worker died")
    bad.update(stats=None, quality=None, energy=None)
    bad["timing"]["phases_s"] = None
    path = build.write(tmp_path / "m-1" / "r.json", build.run_doc("m-1", [ok, bad], gpus=1))
    text = report([path])
    assert "failed: worker died" in text and "unknown" in text
    log = epoch_log_text(Run(path, build.run_doc("m-1", [ok, bad])), "mlp_mnist/cpu/r0").splitlines()
    assert len(log[3].split()) == 5  # the null column is left blank
    fig = tta_figure(Run(path, build.run_doc("m-1", [ok, bad])), "mlp_mnist")
    assert len(fig.axes[0].get_lines()[0].get_xdata()) == 1
