"""The sections every report carries, in every medium: terminal, Markdown and HTML hold the same ones.

``report_sections()`` builds the report once as a list of :class:`Section` — the banner, the
buyer's summary, each run's tables, what the figures cover, contention reasons, data notes,
repeatability, the scaling model and the batch tables — and ``render_terminal`` /
``render_markdown`` / ``render_html`` only lay them out. A section with nothing to say still
appears, saying so, so a reader (or a test) can tell "nothing to report" from "left out".
"""
from __future__ import annotations

import html
import os
import sys
import textwrap
from dataclasses import dataclass, field

import pandas as pd

from benchbench.reporting import marks
from benchbench.reporting.batch import batch_text
from benchbench.reporting.buyer import summary_tables
from benchbench.reporting.determinism import determinism_text
from benchbench.reporting.graphs import graph_text
from benchbench.reporting.quality import quality_text
from benchbench.reporting.render import drop_empty_columns, html_table, markdown_table, terminal_table, terminal_width
from benchbench.reporting.runs import Run
from benchbench.reporting.scaling_report import scaling_text
from benchbench.reporting.tables import _batch_text, data_notes, display_frame, figure_notes, run_header

SECTION_TITLES = ("Summary", "What the figures cover", "Contention", "Data", "Repeatability", "Scaling model",
                  "Batch sizes", "CUDA graphs")


@dataclass
class Section:
    """One titled part of a report: tables (title, frame, index name), list items and preformatted text."""

    title: str
    key: str
    tables: list[tuple[str, pd.DataFrame, str | None]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    text: str = ""


def _split_notes(run: Run, summary: pd.DataFrame) -> tuple[list[str], list[str]]:
    notes = figure_notes(run, summary)
    return [n for n in notes if not n.startswith(marks.CONTENDED)], [n for n in notes if n.startswith(marks.CONTENDED)]


def _strip_heading(text: str) -> str:
    lines = text.strip("\n").splitlines()
    return "\n".join(lines[1:] if lines and lines[0].endswith(":") else lines)


def report_sections(runs: list[Run], summaries: list[pd.DataFrame], baseline: str | None = None,
                    prices: dict | None = None, per_run_tables: bool = True) -> tuple[list[tuple[str, str]], list[Section]]:
    """The banner and the sections of a report of ``runs``.

    Args:
        runs: the loaded runs.
        summaries: their ``summarize_run()`` frames.
        baseline: ``--baseline`` for the summary's normalisation.
        prices: machine id or label -> price.
        per_run_tables: include each run's workload tables (``compare`` has its own table instead).

    Returns:
        ``(banner, sections)``; the banner as ``marks.banner()`` gives it.
    """
    banner = marks.banner(runs, summaries)
    thr, share, notes = summary_tables(runs, summaries, baseline, prices)
    used = {m for frame in (thr,) for v in frame.to_numpy().ravel() for m in marks.MARKS if m in str(v)}
    summary = Section("Summary", "summary", items=notes + ([marks.legend(used)] if used else []))
    if not thr.empty:
        index = "workload"
        if thr.shape[1] > 4:  # many devices: one row each, so that the table fits a terminal
            thr, share, index = thr.T, share.T, "device"
        summary.tables = [("throughput, samples/s: median [95% CI]", thr, index),
                          ("share of the device's measured GEMM peak", share, index)]
    sections = [summary]
    cover, contention, data, runs_part = [], [], [], []
    for run, s in zip(runs, summaries):
        c, k = _split_notes(run, s)
        prefix = f"{run.machine_id}: " if len(runs) > 1 else ""
        cover += [prefix + n for n in c]
        contention += [prefix + n for n in k]
        data += [prefix + n for n in data_notes(s)]
        if per_run_tables:
            sec = Section(f"Machine {run.label} — run {run.run_id}",
                          "run", items=run_header(run))
            for workload, sub in s.groupby("workload", sort=False):
                sec.tables.append((f"{workload} ({_batch_text(sub)})", drop_empty_columns(display_frame(sub).reset_index(drop=True)), None))
            runs_part.append(sec)
    sections.append(Section("What the figures cover", "cover", items=cover or ["no interval or probe recorded"]))
    sections.append(Section("Contention", "contention",
                            items=contention or ["every cell ran quiet: no other process or moved probe was seen"]))
    sections.append(Section("Data", "data", items=data or ["every cell trained on the real (or generated) dataset"]))
    quality = "\n".join(t for t in (quality_text(r) for r in runs) if t)
    sections.append(Section("Quality and time to target", "quality",
                            text=_strip_heading(quality).strip("\n") if quality else "",
                            items=[] if quality else ["no cell trained judged epochs: the full profile "
                                                      "(--profile full --until target, --seeds N) gives them"]))
    rep = determinism_text(runs)
    sections.append(Section("Repeatability", "repeatability", text=_strip_heading(rep) if rep else "",
                            items=[] if rep else ["no cell was repeated: run with --repeat 3 to see run-to-run "
                                                  "variation and whether repeats are bit-identical"]))
    scaling = "\n".join(t for t in (scaling_text(r) for r in runs) if t)
    sections.append(Section("Scaling model", "scaling", text=scaling.strip("\n"),
                            items=[] if scaling else ["no data-parallel series: nothing to model"]))
    batch = "\n".join(t for t in (batch_text(r) for r in runs) if t)
    sections.append(Section("Batch sizes", "batch", text=batch.strip("\n"),
                            items=[] if batch else ["no batch sweep (run --batch-size 32,64,128 or max)"]))
    graphs = "\n".join(t for t in (graph_text(r) for r in runs) if t)
    sections.append(Section("CUDA graphs", "graphs", text=graphs.strip("\n"),
                            items=[] if graphs else ["no GPU cell replayed a CUDA graph (run --gpu-graphs on,off on "
                                                     "a GPU to see eager against graph throughput)"]))
    # The caveats come right after the summary, before the details they qualify.
    return banner, sections + runs_part


_ANSI = {"simulated": "\x1b[1;31m", "contended": "\x1b[1;33m", "synthetic": "\x1b[1;35m"}


def colour_wanted() -> bool:
    """Colour the terminal banner: stdout is a terminal and ``NO_COLOR`` is not set."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def render_terminal(title: str, banner, sections: list[Section], skipped: list[str] | None = None,
                    colour: bool = False) -> str:
    """The report as terminal text: a framed banner (in colour with ``colour``), then each section."""
    out = list(skipped or [])
    if banner:
        width = min(max(len(line) for _, line in banner) + 2, (terminal_width() or 100) - 2)
        out.append("!" * (width + 2))
        for kind, line in banner:
            start, end = (_ANSI[kind], "\x1b[0m") if colour else ("", "")
            out += [f"! {start}{part}{end}" for part in textwrap.wrap(line, width)]
        out += ["!" * (width + 2), ""]
    out.append(title)
    for sec in sections:
        out += ["", f"== {sec.title} =="]
        for caption, frame, index in sec.tables:
            shown = frame.reset_index(names=index) if index else frame
            out += ["", caption, terminal_table(shown)]
        if sec.items:
            out += [""] + [f"- {i}" for i in sec.items]
        if sec.text:
            out += ["", sec.text]
    return "\n".join(out) + "\n"


def render_markdown(title: str, banner, sections: list[Section], skipped: list[str] | None = None) -> str:
    """The report as GitHub Markdown: the banner as a quote, then a ``##`` heading per section."""
    out = [f"# {title}", ""] + [f"- {line}" for line in skipped or []]
    for i, (_, line) in enumerate(banner):
        head, sep, rest = line.partition(":")
        out += ([">"] if i else []) + [f"> **{head}{sep}**{rest}"]  # one paragraph per line of the banner
    for sec in sections:
        out += ["", f"## {sec.title}"]
        for caption, frame, index in sec.tables:
            out += ["", f"### {caption}", "", markdown_table(frame, index=index is not None)
                    if index is None else markdown_table(frame.rename_axis(index), index=True)]
        if sec.items:
            out += [""] + [f"- {i}" for i in sec.items]
        if sec.text:
            out += ["", "```", sec.text, "```"]
    return "\n".join(out) + "\n"


_BANNER_COLOURS = {"simulated": "#b00020", "contended": "#b35900", "synthetic": "#6a1b9a"}


def render_html_banner(banner) -> str:
    """The coloured banner at the top of an HTML page (one line per kind)."""
    if not banner:
        return ""
    def one(kind: str, line: str) -> str:
        head, sep, rest = line.partition(":")
        return (f'<p class="banner-{kind}" style="color:{_BANNER_COLOURS[kind]}"><strong>{html.escape(head + sep)}</strong>'
                f"{html.escape(rest)}</p>")

    lines = "".join(one(k, line) for k, line in banner)
    return f'<div class="banner" role="alert">{lines}</div>'


def render_html_section(sec: Section, extra: str = "") -> str:
    """One section as an HTML fragment (``extra``: figures appended after the section's content)."""
    parts = [f'<section id="{sec.key}"><h2>{html.escape(sec.title)}</h2>']
    for caption, frame, index in sec.tables:
        shown = frame.reset_index(names=index) if index else frame
        parts.append(f"<h3>{html.escape(caption)}</h3>" + html_table(shown))
    if sec.items:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(i)}</li>" for i in sec.items) + "</ul>")
    if sec.text:
        parts.append(f"<pre>{html.escape(sec.text)}</pre>")
    return "\n".join(parts) + extra + "</section>"
