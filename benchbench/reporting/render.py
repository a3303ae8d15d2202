"""The one renderer per medium: rich for the terminal, pandas for Markdown, CSV and HTML.

The number formatters every report shares live in ``formats`` (re-exported here). This module
imports no other reporting module but ``formats``, so tables, comparisons, batch sections and the
HTML page all build on it without a cycle.
"""
from __future__ import annotations

import html
import io
import math
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from benchbench.reporting.formats import _finite, fmt_bytes, fmt_energy, fmt_number, fmt_seconds  # noqa: F401

FORMATS = ("terminal", "markdown", "csv", "html")



def _check_frame(frame, who: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{who}: frame must be a pandas DataFrame, got {type(frame).__name__}")


def terminal_width() -> int | None:
    """The width to fit tables into: ``$COLUMNS`` when set, the terminal's when stdout is one, else None."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) >= 40:
        return int(env)
    try:
        if sys.stdout.isatty():
            return max(40, shutil.get_terminal_size().columns)
    except (OSError, ValueError):
        pass
    return None


def drop_empty_columns(frame: pd.DataFrame, keep: int = 1) -> pd.DataFrame:
    """``frame`` without the columns (after the first ``keep``) whose every cell is empty or ``—``."""
    empty = [c for c in list(frame.columns)[keep:]
             if all(str(v).strip() in ("", "—", "-", "nan", "None") for v in frame[c])]
    return frame.drop(columns=empty) if len(frame) else frame


def terminal_table(frame: pd.DataFrame, title: str | None = None, width: int | None = None) -> str:
    """``frame`` as a rich table, rendered to plain text (no colour codes).

    Without ``width`` (and with no terminal width known: see :func:`terminal_width`) the table is
    as wide as its widest row, so that the text is the same whether or not the output is a
    terminal and a reader (or a test) finds every cell's text whole on one line. Where a width is
    known and the table is wider, cells wrap within it.

    Args:
        frame: the table; the index is not shown.
        title: a line shown above the table, or ``None``.
        width: the width to fit into (default: :func:`terminal_width`).

    Returns:
        The table as text, without trailing spaces.
    """
    _check_frame(frame, "terminal_table")
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", show_edge=False, pad_edge=False)
    columns = [str(c) for c in frame.columns]
    cells = [[str(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    natural = max(sum(widths) + 3 * len(widths) + 2, len(title or "") + 2, 20)
    limit = width if width is not None else terminal_width()
    wrap = limit is not None and natural > limit
    for i, c in enumerate(columns):
        # Wrapped cells break between words, never inside one (a word of up to 24 characters).
        words = [len(w) for text in [c] + [r[i] for r in cells] for w in text.split()] or [1]
        table.add_column(c, overflow="fold", no_wrap=not wrap, min_width=min(max(words), 24) if wrap else None)
    for row in cells:
        table.add_row(*row)
    width = limit if wrap else natural
    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True, highlight=False, emoji=False, markup=False,
            force_terminal=False, color_system=None).print(table)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()).strip("\n")


def markdown_table(frame: pd.DataFrame, index: bool = False) -> str:
    """A GitHub-flavoured Markdown table (``DataFrame.to_markdown``); ``|`` inside cells is escaped.

    Args:
        frame: the table.
        index: show the index as the first column.
    """
    _check_frame(frame, "markdown_table")

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    safe = frame.map(cell)
    safe.columns = [cell(c) for c in frame.columns]
    if index:
        safe.index = [cell(i) for i in frame.index]
        safe.index.name = cell(frame.index.name or "")
    return safe.to_markdown(index=index, tablefmt="github", disable_numparse=True)


def html_table(frame: pd.DataFrame, index_name: str | None = None) -> str:
    """An HTML table of ``frame`` (``DataFrame.to_html``) with every header and cell escaped.

    Args:
        frame: the table; its index is shown as the first column when ``index_name`` is given.
        index_name: the header of the index column, or ``None`` to leave the index out.
    """
    _check_frame(frame, "html_table")

    def escape(value) -> str:  # quotes too, which ``to_html(escape=True)`` leaves as they are
        return html.escape(str(value), quote=True)

    shown = frame.map(escape)
    shown.columns = [escape(c) for c in frame.columns]
    if index_name is not None:
        shown.index = [escape(i) for i in frame.index]
        shown.index.name = escape(index_name)
    return shown.to_html(index=index_name is not None, escape=False, border=0, na_rep="—")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    """A cell a spreadsheet will not run: text starting with = + - @ (or a tab, a return) gets a
    leading quote, as spreadsheets expect; a plain number (``-1.5``) stays a number."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV with every text cell and header safe from formula injection.

    Example:
        >>> csv_text(pd.DataFrame({"a": ["=1+1", "-2"]}))
        "a\n'=1+1\n-2\n"
    """
    _check_frame(frame, "csv_text")
    safe = frame.map(_csv_cell)
    safe.columns = [_csv_cell(str(c)) for c in frame.columns]
    return safe.to_csv(index=False)


def markdown_safe(text: str) -> str:
    """Markdown with any HTML in it shown as text (``&`` and ``<`` escaped: no tag or entity can
    start): a workload name or a note from a results file cannot put a script or a tag into a
    rendered report. ``>`` stays, as Markdown's own block quotes need it."""
    return text.replace("&", "&amp;").replace("<", "&lt;")


def write_output(text: str, output: Path | None) -> str:
    """``text`` itself when ``output`` is ``None``; else writes it there and says ``wrote PATH``."""
    if output is None:
        return text
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return f"wrote {output}"
