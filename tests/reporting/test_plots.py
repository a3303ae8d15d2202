import numpy as np
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer

from benchbench.reporting.plots import (build_figures, phases_figure, plot, scaling_figure, throughput_figure,
                                        tta_figure)


def _caption(fig):
    return " ".join(t.get_text() for t in fig.texts)


def test_throughput_figure(alpha_run):
    fig = throughput_figure(alpha_run)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["mlp_mnist", "cnn_mnist", "lstm_sine"]  # a panel per workload
    assert all(ax.get_yscale() == "linear" for ax in axes)  # bar lengths mean something: never log bars
    assert "throughput" in fig.get_suptitle().lower() and "alpha-1a2b3c4d" in fig.get_suptitle()
    assert "samples/s" in axes[0].get_ylabel()
    bars = [c for c in axes[0].containers if isinstance(c, BarContainer)]
    assert len(bars) == 1 and len(bars[0].patches) == 5  # cpu, gpu:0, gpu:1, gpu:0,1, gpu:0,1,2,3
    assert len([c for c in axes[0].containers if isinstance(c, ErrorbarContainer)]) == 1
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["cpu", "gpu:0", "gpu:1", "gpu:0,1", "gpu:0,1,2,3"]
    heights = sorted(p.get_height() for p in bars[0].patches)
    assert heights[-1] == pytest.approx(alpha_run.cells[4]["stats"]["samples_per_s"]["median"])
    assert "machine alpha-1a2b3c4d" in _caption(fig) and "2026-11-23" in _caption(fig)
    assert "synthetic data: cnn_mnist on cpu" in _caption(fig)  # the footer names it


def test_scaling_figure(alpha_run):
    fig = scaling_figure(alpha_run, "mlp_mnist")
    (ax,) = fig.axes
    assert "samples/s" in ax.get_ylabel() and "devices" in ax.get_xlabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["GPU ideal (linear)", "GPU ring all-reduce model", "GPU measured (strong scaling)"]
    measured = ax.containers[0]
    x, y = measured.lines[0].get_data()
    assert list(x) == [1, 2, 4]
    model_line = next(l for l in ax.get_lines() if l.get_label() == "GPU ring all-reduce model")
    assert model_line.get_linestyle() == "--"
    ideal = next(l for l in ax.get_lines() if l.get_label() == "GPU ideal (linear)")
    assert ideal.get_ydata()[1] == pytest.approx(2 * y[0])
    notes = [t.get_text() for t in ax.texts]
    assert notes == [f"{y[1] / (2 * y[0]):.0%}", f"{y[2] / (4 * y[0]):.0%}"]
    assert scaling_figure(alpha_run, "cnn_mnist") is None


def test_tta_figure(alpha_run):
    fig = tta_figure(alpha_run, "mlp_mnist")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "validation accuracy" and "(s" in ax.get_xlabel()
    labels = [l.get_label() for l in ax.get_lines() if not l.get_label().startswith("_")]
    assert labels == ["cpu", "gpu:0", "gpu:1", "gpu:0,1", "gpu:0,1,2,3", "target 0.98"]
    assert list(ax.get_lines()[0].get_ydata()) == [0.88, 0.94, 0.96]
    assert tta_figure(alpha_run, "lstm_sine") is None


def test_phases_figure(alpha_run):
    fig = phases_figure(alpha_run, "mlp_mnist")
    ax, share = fig.axes
    assert "mlp_mnist" in fig.get_suptitle() and share.get_ylabel() == "share of the step (%)"
    tops = [sum(c.patches[i].get_height() for c in share.containers) for i in range(4)]
    assert tops == pytest.approx([100.0] * 4)
    assert ax.get_ylabel() == "median time per step (ms)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cpu", "gpu:0", "gpu:0,1", "gpu:0,1,2,3"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["median step", "data", "forward", "backward", "update",
                                                                   "allreduce"]
    allreduce = ax.containers[-1]
    cell = next(c for c in alpha_run.cells if c["id"] == "mlp_mnist/gpu:0,1/r0")
    assert allreduce.patches[2].get_height() == pytest.approx(np.median(cell["timing"]["phases_s"]["allreduce"]) * 1e3)
    assert allreduce.patches[0].get_height() == 0.0
    assert phases_figure(alpha_run, "cnn_mnist") is None


def test_build_figures_skips_with_notes(beta_run):
    figures, notes = build_figures(beta_run, "all")
    names = [n for n, _ in figures]
    assert names == ["throughput"]
    assert any("scaling plot of mlp_mnist skipped" in n for n in notes)
    assert any("tta plot of cnn_mnist skipped" in n for n in notes)
    with pytest.raises(ValueError, match="plot: kind"):
        build_figures(beta_run, "pie")


def test_plot_writes_png_and_svg(tmp_path, alpha_path):
    notes = []
    paths = plot([alpha_path], kind="phases", outdir=tmp_path / "plots", on_note=notes.append)
    assert [p.name for p in paths] == ["alpha-1a2b3c4d_20261123T105100Z-3f9c2a_phases_mlp_mnist.png",
                                       "alpha-1a2b3c4d_20261123T105100Z-3f9c2a_phases_mlp_mnist.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:2000]
    assert len(notes) == 2 and all("phases plot" in n for n in notes)
    with pytest.raises(ValueError, match="plot: kind"):
        plot([alpha_path], kind="pie", outdir=tmp_path)


def test_weak_scaling_on_cpu_processes(tmp_path, build):
    from benchbench.reporting.runs import Run

    cells = [build.cell("mlp_mnist", "cpu", 0.05, seed=1),
             build.cell("mlp_mnist", "cpu:dp2", 0.06, seed=2, batch=200, scaling="weak",
                        phases={"forward": 0.02, "backward": 0.03, "allreduce": 0.01})]
    fig = scaling_figure(Run(tmp_path / "r.json", build.run_doc("m-1", cells, gpus=0)), "mlp_mnist")
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # Two device counts cannot determine the all-reduce terms: no model curve rather than a guess.
    assert "CPU measured (weak scaling)" in labels and "CPU ring all-reduce model" not in labels
    x, y = ax.containers[0].lines[0].get_data()
    assert [t.get_text() for t in ax.texts] == [f"{y[1] / (2 * y[0]):.0%}"]
