"""Every figure kind, rendered from one fixed results file, carries its marks (read from the figure objects)."""
import pytest

from benchbench.cli import main
from benchbench.reporting.figure_marks import CONTENDED_HATCH, WATERMARK
from benchbench.reporting.plots import build_figures
from benchbench.reporting.runs import load_run
from benchbench.reporting.scaling_report import scaling_text
from benchbench.reporting.summary import summarize_run
from benchbench.reporting.tables import display_frame


def _texts(fig):
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_gid"))]


@pytest.fixture(scope="module")
def marked(tmp_path_factory, build):
    """Simulated GPUs, a contended CPU cell, synthetic data, a variant, 212% scaling, a full-profile target."""
    cells = build.alpha_cells()
    cells[0]["interference"] = {"verdict": "contended", "reasons": ["a busy neighbour"]}
    cells[0]["quality"]["time_to_target_s"] = 63.6
    cells[0]["epoch_log"][1]["elapsed_time"] = 63.6  # reached at the end of epoch 2
    cells[3] = build.cell("mlp_mnist", "gpu:0,1", 0.00047, seed=4, epochs=3,
                          phases={"data": 0.0001, "forward": 0.0001, "backward": 0.0001, "update": 0.0001,
                                  "allreduce": 0.0001})  # 2 GPUs 4.25x one: an efficiency of 212%
    for b, step in ((32, 0.01), (64, 0.016)):  # a batch sweep of the LSTM
        sweep = build.cell("lstm_sine", "cpu", step, batch=b, seed=b)
        sweep["id"] = f"lstm_sine@b{b}/cpu/r0"
        sweep["batch"] = {"requested": b, "default": 20, "per_device": False, "value": b, "search": None,
                          "memory_limit_bytes": None}
        cells.append(sweep)
    doc = build.run_doc("alpha-1a2b3c4d", cells)
    doc["plan"]["workloads"] = ["mlp_mnist:small", "cnn_mnist", "lstm_sine"]
    doc["machine"]["simulated_gpus"] = True
    return build.write(tmp_path_factory.mktemp("marked") / "alpha-1a2b3c4d" / "r.json", doc)


def test_every_figure_kind_carries_its_marks(marked):
    run = load_run(marked)
    figures = dict(build_figures(run, "all")[0])
    figures.update(build_figures(run, "summary")[0])
    assert {"throughput", "scaling_mlp_mnist", "tta_mlp_mnist", "phases_mlp_mnist", "summary",
            "batch_lstm_sine"} <= set(figures)
    for name, fig in figures.items():
        assert WATERMARK in _texts(fig), name  # simulated: every figure
    thr = figures["throughput"]
    assert all(ax.get_yscale() == "linear" for ax in thr.axes)
    assert thr.axes[0].get_title() == "mlp_mnist:small"  # the variant
    footer = " ".join(_texts(thr)).replace("\n", " ")
    assert "synthetic data: cnn_mnist on cpu" in footer and "~contended" in footer
    cpu_bar = thr.axes[0].patches[0]
    assert cpu_bar.get_hatch() == CONTENDED_HATCH and cpu_bar.get_facecolor()[3] == 0  # hatched and hollow
    assert thr.axes[0].patches[1].get_hatch() is None
    assert all(ax.get_yscale() == "linear" for ax in figures["summary"].axes)
    # time to target: a star at the table's number, where the target was reached
    tta = figures["tta_mlp_mnist"].axes[0]
    star = next(l for l in tta.get_lines() if l.get_gid() == "tta")
    assert star.get_xdata()[0] == pytest.approx(63.6) and star.get_ydata()[0] == pytest.approx(0.98)
    table = display_frame(summarize_run(run))
    assert "63.6 s" in set(table["time to target"]) and "63.6 s" in _texts(figures["tta_mlp_mnist"])
    assert tta.get_lines()[0].get_drawstyle() == "steps-post"
    phases = figures["phases_mlp_mnist"]
    assert any("medians do not add up" in t for t in _texts(phases))
    assert "mlp_mnist:small" in phases.get_suptitle()
    scaling = figures["scaling_mlp_mnist"].axes[0]
    assert any(t.startswith("21") and "baseline contended or cache effect" in t for t in _texts(figures["scaling_mlp_mnist"]))
    assert any("model hidden: it misses the measured points" in t for t in _texts(figures["scaling_mlp_mnist"]))
    assert "mlp_mnist:small" in scaling.get_title()


def test_implausible_scaling_is_flagged_and_a_bad_model_hidden(marked):
    run = load_run(marked)
    table = display_frame(summarize_run(run))
    eff = table[table["device"] == "gpu:0,1"]["scaling eff."].iloc[0]
    assert eff.startswith("21") and "baseline contended or cache effect" in eff
    text = scaling_text(run)
    assert "no predictions: the model misses the measured points by up to" in text
    assert "NVLink" not in text


def test_what_ifs_only_for_the_kind_measured(tmp_path, build):
    cells = [build.cell("mlp_mnist", "cpu", 0.05, seed=1, phases={"forward": 0.05}),
             build.cell("mlp_mnist", "cpu:dp2", 0.0275, seed=2, phases={"forward": 0.025, "allreduce": 0.0025}),
             build.cell("mlp_mnist", "cpu:dp4", 0.01625, seed=3, phases={"forward": 0.0125, "allreduce": 0.00375})]
    for c in cells[1:]:
        c["allreduce_bytes"] = 4_000_000
    text = scaling_text(load_run(build.write(tmp_path / "m" / "r.json", build.run_doc("m-00000000", cells, gpus=0))))
    assert "network" in text and "NVLink" not in text and "PCIe" not in text


def test_plot_refuses_a_simulated_real_mix(tmp_path, marked, alpha_path, capsys):
    assert main(["plot", str(marked), str(alpha_path), "--output", str(tmp_path / "p")]) == 2
    assert "used simulated GPUs" in capsys.readouterr().err
    assert main(["plot", str(alpha_path), str(alpha_path), "--kind", "summary", "--output", str(tmp_path / "s")]) == 0
    assert sorted(p.suffix for p in (tmp_path / "s").iterdir()) == [".png", ".svg"]
