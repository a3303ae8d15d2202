"""The bar chart of ``benchbench profile``: where one training step's time goes, layer by layer."""
from __future__ import annotations

from pathlib import Path

from benchbench.reporting.plots import _figure, _plain


def profile_figure(result: dict, top: int = 25):
    """Horizontal stacked bars (forward, backward) of the ``top`` slowest calls, plus the update
    and the framework overhead, in milliseconds, with each bar's share of the step.

    Args:
        result: what ``executor.profile.profile_workload`` returns (or its JSON).
        top: how many function calls to show.
    """
    rows = sorted(result["rows"], key=lambda r: -(r["forward_s"] + r["backward_s"]))[:top]
    labels = [_plain(f"#{r['index']} {r['scope'].rsplit('/', 1)[-1] or '/'} {r['function']}") for r in rows]
    fwd = [r["forward_s"] * 1e3 for r in rows]
    bwd = [r["backward_s"] * 1e3 for r in rows]
    labels += ["optimizer update", "framework overhead"]
    fwd += [result["update_s"] * 1e3, result["overhead_s"] * 1e3]
    bwd += [0.0, 0.0]
    step_ms = result["profiled_step_s"] * 1e3
    fig = _figure(9.0, max(3.0, 0.32 * len(labels) + 1.5))
    ax = fig.add_subplot()
    y = list(range(len(labels)))[::-1]
    ax.barh(y, fwd, label="forward (update / overhead)")
    ax.barh(y, bwd, left=fwd, label="backward")
    for yi, f, b in zip(y, fwd, bwd):
        share = (f + b) / step_ms if step_ms > 0 else 0.0
        ax.annotate(f"{share:.1%}", (f + b, yi), textcoords="offset points", xytext=(3, -3), fontsize=7)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("time per step (ms, median over steps)")
    ax.set_title(_plain(f"Where a training step goes — {result['spec']} on {result['device']}, "
                        f"batch {result['batch_size']} ({step_ms:.1f} ms/step profiled)"))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.text(0.01, 0.005, _plain(f"data: {result['data']['source']}; {result['steps']} profiled steps; "
                                 f"unprofiled step {result['step_s'] * 1e3:.1f} ms"), fontsize=7, color="0.35")
    return fig


def save_profile_chart(result: dict, path, top: int = 25) -> list[Path]:
    """Save the chart as ``path`` (its suffix .png or .svg) — or both when the suffix is neither."""
    path = Path(path)
    fig = profile_figure(result, top=top)
    targets = [path] if path.suffix in (".png", ".svg") else [path.with_suffix(".png"), path.with_suffix(".svg")]
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(t)
    return targets
