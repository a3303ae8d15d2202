"""What every figure carries so that it cannot mislead: a watermark on simulated runs, hatching on
contended bars, a footer naming synthetic data, and titles with the workload's variant.

The functions take a matplotlib ``Figure`` or ``Axes`` and the run; ``plots`` calls them on every
figure it builds. Texts and artists are added with ``gid`` values (``watermark``, ``footer``) so a
test can find them on the figure object.
"""
from __future__ import annotations

import textwrap

from benchbench.reporting.marks import CONTENDED, is_simulated
from benchbench.reporting.runs import ReportError, Run

CONTENDED_HATCH = "//"
WATERMARK = "SIMULATED GPUs — not a GPU's figures"


def _plain(text) -> str:
    return str(text).replace("$", r"\$")


def workload_title(run: Run, workload: str) -> str:
    """The workload as the plan named it (``mlp_mnist:small``), so a title shows the variant.

    A key that already carries its parameters (``name[k=v]``) or a batch (``@b64``) is kept; else
    the plan's one spec of that workload, when it names a variant.
    """
    if "[" in workload or "@" in workload:
        return workload
    specs = [str(s) for s in (run.data.get("plan") or {}).get("workloads") or [] if str(s).split(":")[0] == workload]
    if len(specs) == 1:
        return specs[0]
    params = next((c.get("params") for c in run.cells if c.get("workload") == workload and c.get("params")), None)
    if params:
        return f"{workload} ({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"
    return workload


def mark_figure(fig, runs: list[Run], synthetic: list[str] | None = None, contended: bool = False) -> None:
    """Adds the watermark (simulated runs) and the footer (synthetic data, hatched contended bars)."""
    if any(is_simulated(r) for r in runs):
        fig.text(0.5, 0.5, WATERMARK, fontsize=26, color="red", alpha=0.22, rotation=25, ha="center", va="center",
                 gid="watermark", zorder=100)
    notes = []
    if synthetic:
        notes.append(f"synthetic data: {', '.join(synthetic[:4])}{', …' if len(synthetic) > 4 else ''} "
                     "(quality is not the dataset's)")
    if contended:
        notes.append(f"hatched ({CONTENDED_HATCH}) = {CONTENDED}: ran on a busy machine")
    if notes:
        engine = fig.get_layout_engine()
        if engine is not None and hasattr(engine, "set"):
            engine.set(rect=(0, 0.08, 1, 0.92))  # room for the footer above the caption line
        width = max(40, int(fig.get_figwidth() * 17))  # characters of 7-point text across the figure
        fig.text(0.01, 0.035, _plain("\n".join(textwrap.wrap(" · ".join(notes), width))), fontsize=7, color="#6a1b9a",
                 ha="left", va="bottom", gid="footer")


def hatch_contended(bars, contended: list[bool]) -> None:
    """Hatches and hollows each bar of ``bars`` whose cell was contended."""
    for bar, flag in zip(bars, contended):
        if flag:
            bar.set_hatch(CONTENDED_HATCH)
            bar.set_edgecolor(bar.get_facecolor())
            bar.set_facecolor("none")


def refuse_mixed(runs: list[Run], verb: str = "plot") -> None:
    """Raise ReportError when simulated-GPU runs and real ones are drawn together."""
    simulated = [r for r in runs if is_simulated(r)]
    if simulated and len(simulated) < len(runs):
        names = ", ".join(f"{r.machine_id} (run {r.run_id})" for r in simulated)
        raise ReportError(f"{verb}: {names} used simulated GPUs, whose figures are not a GPU's; "
                          "draw it only with other simulated runs")
