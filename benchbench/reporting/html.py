"""One self-contained HTML page per run or comparison: tables and plots, no network needed.

Plots are embedded as base64 PNG, the style sheet is inline, and there is no script. Every string
that comes from a results file goes through ``html.escape``.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path


from benchbench.reporting.compare import compare_frame, compare_notes, display_compare
from benchbench.reporting.compare_gate import metadata_diff, pairing_warnings
from benchbench.reporting.plots import build_figures
from benchbench.reporting.render import drop_empty_columns, html_table
from benchbench.reporting.runs import Run, file_stem, refuse_simulated_against_real, resolve_runs, runs_label
from benchbench.reporting.sections import render_html_banner, render_html_section, report_sections
from benchbench.reporting.summary import summarize_run

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } tr:nth-child(even) td { background: #fafafa; }
.meta { color: #555; font-size: 0.9em; margin: 0.2em 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.85em; } ul.notes { font-size: 0.9em; color: #444; }
.banner { border: 3px solid #b00020; background: #fff4f4; padding: 0.4em 1em; margin: 1em 0; }
.banner p { margin: 0.3em 0; } pre { font-size: 0.8em; background: #f7f7f7; padding: 0.5em; overflow-x: auto; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def figure_html(fig, alt: str) -> str:
    """A figure as an ``<img>`` with its PNG embedded in base64."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></figure>'


def _list(items: list[str], cls: str = "notes") -> str:
    return f'<ul class="{cls}">' + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>" if items else ""


def _figures_html(run: Run, plots: str) -> str:
    if not plots:
        return ""
    figures, skipped = build_figures(run, plots)
    parts = [figure_html(fig, f"{name} — {run.caption}") for name, fig in figures]
    if skipped:
        parts.append("<p><strong>Plots skipped</strong></p>" + _list(skipped))
    return "\n".join(parts)


def run_section(run: Run, plots: str = "all") -> str:
    """The whole report of one run (banner, summary, tables, every caveat section, figures), as HTML."""
    return _sections_html([run], plots)


def _sections_html(runs: list[Run], plots: str = "all", prices: dict | None = None, baseline: str | None = None,
                   lead: str = "") -> str:
    summaries = [summarize_run(r) for r in runs]
    banner, sections = report_sections(runs, summaries, baseline, prices)
    parts = [render_html_banner(banner), lead]
    run_sections = iter(runs)
    for sec in sections:
        extra = _figures_html(next(run_sections), plots) if sec.key == "run" else ""
        parts.append(render_html_section(sec, extra))
    return "\n".join(p for p in parts if p)


def comparison_section(runs: list[Run], prices: dict[str, float] | None = None) -> str:
    """The side-by-side comparison of two or more runs, as an HTML fragment."""
    frame = compare_frame(runs, prices)
    labels = list(runs_label(runs).values())
    table = drop_empty_columns(display_compare(frame, labels), keep=2)
    diff = metadata_diff(runs)
    parts = ['<section id="comparison"><h2>Comparison</h2>', html_table(table),
             _list(pairing_warnings(runs) + compare_notes(runs, frame))]
    if not diff.empty:
        parts.append("<h3>What differs between the machines and runs</h3>" + html_table(diff))
    return "\n".join(parts + ["</section>"])


def page(title: str, body: str) -> str:
    """A complete HTML document with the inline style sheet."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n<h1>{_e(title)}</h1>\n{body}\n</body></html>\n")


def html_report(paths: list[Path] | None = None, results_dir: Path = Path("results"), output: Path | None = None,
                prices: dict[str, float] | None = None, plots: str = "all", baseline: str | None = None,
                skipped: list[str] | None = None, comparison: bool = True) -> Path:
    """Writes one self-contained HTML page for a run, or a comparison of several runs.

    Args:
        paths: results files or folders; ``None`` takes the newest run under ``results_dir``.
            Two or more runs give a comparison (the first is the baseline) followed by each run.
        results_dir: where runs are looked for, and where the page goes when ``output`` is ``None``
            (``<results_dir>/reports/<machine>_<run>.html`` or ``compare_<run>_<run>.html``).
        output: the file to write.
        prices: machine id -> price, for the comparison's performance per price.
        plots: which figures to embed (``all``, ``throughput``, ``scaling``, ``tta``, ``phases``)
            or ``""`` for none.
        baseline: normalise the summary to this device or run (``--baseline``).
        skipped: lines naming files that were not reported, shown at the top.
        comparison: with several runs, a comparison page (the first run the baseline; simulated and
            real runs refused); ``False``: every run's report on one page (``report FOLDER``).

    Returns:
        The path written.

    Raises:
        ReportError: no results, a malformed or wrong-version file, an empty run.
    """
    runs = resolve_runs(paths, results_dir)
    if len(runs) == 1 or not comparison:
        title = "benchbench report: " + ", ".join(f"{r.label} ({r.date})" for r in runs)
        body = _sections_html(runs, plots, prices, baseline)
        default = file_stem("_".join(f"{r.machine_id}_{r.run_id}" for r in runs[:3])) + ".html"
    else:
        refuse_simulated_against_real(runs)
        labels = runs_label(runs)
        title = "benchbench comparison: " + " vs ".join(labels.values())
        body = _sections_html(runs, plots, prices, baseline, lead=comparison_section(runs, prices))
        default = file_stem("compare_" + "_".join(r.run_id for r in runs)) + ".html"
    output = Path(output) if output is not None else Path(results_dir) / "reports" / default
    output.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f'<p class="meta">{_e(line)}</p>' for line in skipped or []) + body
    output.write_text(page(title, body), encoding="utf-8")
    return output
