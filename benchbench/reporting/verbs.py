"""What ``benchbench report`` and ``benchbench compare`` print: the choice of medium per format.

The top of the reporting package: it picks the tables (``tables``, ``compare``) or the HTML page
(``html``); none of those imports this module.
"""
from __future__ import annotations

from pathlib import Path

from benchbench.reporting.compare import compare_frame, compare_text
from benchbench.reporting.compare_gate import slower_than
from benchbench.reporting.html import html_report
from benchbench.reporting.render import FORMATS, csv_text, markdown_safe, write_output
from benchbench.reporting.runs import ReportError, refuse_simulated_against_real, resolve_every_run, resolve_runs
from benchbench.reporting.sections import colour_wanted, render_markdown, render_terminal, report_sections
from benchbench.reporting.summary import summarize_run
from benchbench.reporting.tables import csv_frame, epoch_log_text


def report(paths: list[Path] | None = None, results_dir: Path = Path("results"), fmt: str = "terminal",
           output: Path | None = None, log: str | None = None, baseline: str | None = None,
           prices: dict[str, float] | None = None) -> str:
    """Tables of one or more runs, per workload × device (what ``benchbench report`` prints).

    Args:
        paths: results files or folders (a folder means every run in it; files that cannot be
            reported are named in the report, "skipped ..."); ``None`` takes the newest run under
            ``results_dir``.
        results_dir: where runs are looked for when ``paths`` is empty.
        fmt: ``terminal``, ``markdown``, ``csv`` or ``html`` (a self-contained page with the plots).
        output: the file to write; ``None`` returns the text (for ``html``, the page is written to
            ``<results_dir>/reports/`` instead).
        log: a cell id: give that cell's epoch log instead of the tables.
        baseline: normalise the summary to this device or run (``--baseline``).
        prices: machine id or label -> price, for the summary's samples/s per price.

    Returns:
        The text to print: the report itself, or ``wrote PATH`` where a file was written.

    Raises:
        ReportError: no results, a malformed or wrong-version file, an empty run, an unknown cell.
        ValueError: ``fmt`` is not one of ``FORMATS``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"report: fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    runs, skipped = resolve_every_run(paths, results_dir)
    if log is not None:
        errors = []
        for run in runs:
            try:
                text = epoch_log_text(run, log)
                break
            except ReportError as exc:
                errors.append(exc)
        else:
            raise errors[0]
    elif fmt == "html":
        written = html_report([r.path for r in runs], results_dir=results_dir, output=output, prices=prices,
                              baseline=baseline, skipped=skipped, comparison=False)
        return "\n".join(skipped + [f"wrote {written}"])
    elif fmt == "csv":
        text = csv_text(csv_frame(runs))
    else:
        summaries = [summarize_run(run) for run in runs]
        banner, sections = report_sections(runs, summaries, baseline, prices)
        title = "benchbench report: " + ", ".join(f"{r.label} ({r.date})" for r in runs)
        if fmt == "markdown":
            text = markdown_safe(render_markdown(title, banner, sections, skipped))
        else:
            text = render_terminal(title, banner, sections, skipped, colour=output is None and colour_wanted())
    return write_output(text, output)


def compare(paths: list[Path], prices: dict[str, float] | None = None, fmt: str = "terminal",
            output: Path | None = None, results_dir: Path = Path("results"), baseline: str | None = None) -> str:
    """Compares runs of different machines (what ``benchbench compare`` prints).

    Args:
        paths: two or more results files or folders (a folder means its newest run); the first is
            the baseline.
        prices: machine id or label -> price (any currency), e.g. parsed from ``--price machine-id=12000``.
        fmt: ``terminal``, ``markdown``, ``csv`` or ``html`` (a self-contained page).
        output: the file to write; ``None`` returns the text (for ``html``, the page goes to
            ``<results_dir>/reports/``).
        results_dir: where the HTML page goes when no output is given.
        baseline: normalise the buyer's summary to this device or run (``--baseline``).

    Returns:
        The text to print: the comparison, or ``wrote PATH`` where a file was written.

    Raises:
        ReportError: fewer than two runs, a malformed or wrong-version file, an empty run, a price
            for a machine not compared, a price that is not positive, an unknown baseline.
        ValueError: unknown ``fmt``.
    """
    return compare_and_gate(paths, prices, fmt, output, results_dir, baseline)[0]


def compare_and_gate(paths: list[Path], prices: dict[str, float] | None = None, fmt: str = "terminal",
                     output: Path | None = None, results_dir: Path = Path("results"), baseline: str | None = None,
                     fail_if_slower: float | None = None) -> tuple[str, list[str]]:
    """:func:`compare`, and the regressions beyond ``fail_if_slower`` percent (``--fail-if-slower``).

    Returns:
        ``(text, regressions)``: one line per workload × device where a run is slower than the
        baseline by more than ``fail_if_slower`` percent (see ``compare_gate.slower_than``);
        empty without a threshold.
    """
    if fmt not in FORMATS:
        raise ValueError(f"compare: fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not paths or not isinstance(paths, (list, tuple)) or len(paths) < 2:
        raise ReportError("compare needs at least two results files or folders, e.g. "
                          "`benchbench compare results/machine-a results/machine-b`")
    runs = resolve_runs(list(paths), results_dir)
    refuse_simulated_against_real(runs)
    regressions = slower_than(compare_frame(runs, prices), fail_if_slower) if fail_if_slower is not None else []
    if fmt == "html":
        written = html_report([r.path for r in runs], results_dir=results_dir, output=output, prices=prices,
                              baseline=baseline)
        return f"wrote {written}", regressions
    colour = fmt == "terminal" and output is None and colour_wanted()
    text = compare_text(runs, prices, fmt, baseline, colour)
    return write_output(markdown_safe(text) if fmt == "markdown" else text, output), regressions
