"""What ``benchbench report`` and ``benchbench compare`` print: the choice of medium per format.

The top of the reporting package: it picks the tables (``tables``, ``compare``) or the HTML page
(``html``); none of those imports this module.
"""
from __future__ import annotations

from pathlib import Path

from benchbench.reporting.batch import batch_text
from benchbench.reporting.compare import compare_text
from benchbench.reporting.determinism import determinism_text
from benchbench.reporting.html import html_report
from benchbench.reporting.render import FORMATS, csv_text, markdown_safe, write_output
from benchbench.reporting.runs import ReportError, refuse_simulated_against_real, resolve_runs
from benchbench.reporting.scaling_report import scaling_text
from benchbench.reporting.summary import summarize_run
from benchbench.reporting.tables import csv_frame, epoch_log_text, run_text


def report(paths: list[Path] | None = None, results_dir: Path = Path("results"), fmt: str = "terminal",
           output: Path | None = None, log: str | None = None) -> str:
    """Tables of one or more runs, per workload × device (what ``benchbench report`` prints).

    Args:
        paths: results files or folders (a folder means its newest run); ``None`` takes the newest
            run under ``results_dir``.
        results_dir: where runs are looked for when ``paths`` is empty.
        fmt: ``terminal``, ``markdown``, ``csv`` or ``html`` (a self-contained page with the plots).
        output: the file to write; ``None`` returns the text (for ``html``, the page is written to
            ``<results_dir>/reports/`` instead).
        log: a cell id: give that cell's epoch log instead of the tables.

    Returns:
        The text to print: the report itself, or ``wrote PATH`` where a file was written.

    Raises:
        ReportError: no results, a malformed or wrong-version file, an empty run, an unknown cell.
        ValueError: ``fmt`` is not one of ``FORMATS``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"report: fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    runs = resolve_runs(paths, results_dir)
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
        return f"wrote {html_report([r.path for r in runs], results_dir=results_dir, output=output)}"
    elif fmt == "csv":
        text = csv_text(csv_frame(runs))
    else:
        markdown = fmt == "markdown"
        text = "\n".join(run_text(run, summarize_run(run), markdown=markdown) for run in runs)
        extras = [determinism_text(runs)] + [scaling_text(run) for run in runs]
        extras += [batch_text(run, markdown=markdown) for run in runs]
        for extra in extras:
            if extra:
                text += "\n" + extra
        if markdown:
            text = markdown_safe(text)
    return write_output(text, output)


def compare(paths: list[Path], prices: dict[str, float] | None = None, fmt: str = "terminal",
            output: Path | None = None, results_dir: Path = Path("results")) -> str:
    """Compares runs of different machines (what ``benchbench compare`` prints).

    Args:
        paths: two or more results files or folders (a folder means its newest run); the first is
            the baseline.
        prices: machine id -> price (any currency), e.g. parsed from ``--price machine-id=12000``.
        fmt: ``terminal``, ``markdown``, ``csv`` or ``html`` (a self-contained page).
        output: the file to write; ``None`` returns the text (for ``html``, the page goes to
            ``<results_dir>/reports/``).
        results_dir: where the HTML page goes when no output is given.

    Returns:
        The text to print: the comparison, or ``wrote PATH`` where a file was written.

    Raises:
        ReportError: fewer than two runs, a malformed or wrong-version file, an empty run, a price
            for a machine not compared, a price that is not positive.
        ValueError: unknown ``fmt``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"compare: fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not paths or not isinstance(paths, (list, tuple)) or len(paths) < 2:
        raise ReportError("compare needs at least two results files or folders, e.g. "
                          "`benchbench compare results/machine-a results/machine-b`")
    runs = resolve_runs(list(paths), results_dir)
    refuse_simulated_against_real(runs)
    if fmt == "html":
        written = html_report([r.path for r in runs], results_dir=results_dir, output=output, prices=prices)
        return f"wrote {written}"
    text = compare_text(runs, prices, fmt)
    return write_output(markdown_safe(text) if fmt == "markdown" else text, output)
