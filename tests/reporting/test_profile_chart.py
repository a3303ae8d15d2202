"""The profile bar chart: one bar per call plus update and overhead, titled and labelled."""
from benchbench.reporting.profile_chart import profile_figure, save_profile_chart


def _result():
    rows = [{"index": i, "scope": f"/Net/l{i}", "function": "LinearFunction", "forward_s": 0.001 * (i + 1),
             "backward_s": 0.002 * (i + 1), "flops_forward": 1e6, "flops_backward": 2e6} for i in range(4)]
    return {"spec": "mlp_mnist", "device": "cpu", "batch_size": 100, "rows": rows, "update_s": 0.004,
            "overhead_s": 0.001, "profiled_step_s": 0.035, "step_s": 0.034, "steps": 5,
            "data": {"source": "synthetic"}}


def test_bars_cover_calls_update_and_overhead():
    fig = profile_figure(_result(), top=3)
    ax = fig.axes[0]
    ticks = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())), reverse=True)
    labels = [text for _, text in ticks]  # top of the chart first
    assert labels[0] == "#3 l3 LinearFunction"  # the slowest call on top
    assert labels[-2:] == ["optimizer update", "framework overhead"]
    assert len(labels) == 3 + 2
    assert "mlp_mnist on cpu" in ax.get_title() and "ms" in ax.get_xlabel()
    shares = [t.get_text() for t in ax.texts]
    assert "34.3%" in shares  # l3: (4 + 8) ms of a 35 ms step


def test_save_writes_png_and_svg(tmp_path):
    paths = save_profile_chart(_result(), tmp_path / "prof")
    assert sorted(p.suffix for p in paths) == [".png", ".svg"] and all(p.stat().st_size > 0 for p in paths)
