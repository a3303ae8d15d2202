"""The table ``benchbench run`` prints when it ends: one row per cell, in reporting's formats.

Built from the cell records alone with rich (no pandas, so a run ends quickly); ``benchbench report``
gives the full tables of the same results file.
"""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchbench.reporting.formats import CONTENDED, NOISY, fmt_number, legend, mark_text

_STATUS_STYLE = {"ok": "green", "failed": "red", "oom": "red", "timeout": "yellow", "diverged": "magenta"}


def throughput_text(cell: dict) -> str:
    """``median [low, high]`` samples/s of a cell with its marks (``~noisy``, ``~contended``), or ``—``."""
    sps = (cell.get("stats") or {}).get("samples_per_s") or None
    if not sps:
        return "—"
    text = f"{fmt_number(sps.get('median'))} [{fmt_number(sps.get('ci_low'))}, {fmt_number(sps.get('ci_high'))}]"
    return text + mark_text(bool(sps.get("noisy")), (cell.get("interference") or {}).get("verdict") == "contended")


def quality_text(cell: dict) -> str:
    """The validation metric (and the time to target when reached) of a cell, or ``—``."""
    q = cell.get("quality") or {}
    if q.get("value") is None:
        return "—"
    text = f"{q.get('metric') or 'quality'} {fmt_number(q['value'], 4)}"
    if q.get("time_to_target_s") is not None:
        text += f" (target in {fmt_number(q['time_to_target_s'])} s)"
    return text


def summary_table(cells: list) -> Table:
    """The end-of-run table: workload, device, samples/s with its 95% CI, ms/step, GFLOP/s, quality, status."""
    table = Table(title="benchbench run", title_justify="left", show_lines=False)
    for name, justify in (("workload", "left"), ("device", "left"), ("samples/s [95% CI]", "right"),
                          ("ms/step", "right"), ("GFLOP/s", "right"), ("quality", "right"), ("status", "left")):
        table.add_column(name, justify=justify, overflow="fold" if name == "status" else "ellipsis")
    for cell in cells:
        st = cell.get("stats") or {}
        step = (st.get("step_s") or {}).get("median")
        status = Text(cell.get("status", "?"), style=_STATUS_STYLE.get(cell.get("status"), ""))
        if cell.get("reason"):
            status.append(f": {cell['reason']}")
        device = cell.get("device", "?") + (f" s{cell.get('seed')}" if "/s" in str(cell.get("id", "")) else "")
        device += f" r{cell['repeat']}" if cell.get("repeat") else ""
        table.add_row(cell.get("id", "").split("/")[0] or cell.get("workload", "?"), device, throughput_text(cell),
                      fmt_number(step * 1e3 if isinstance(step, (int, float)) else None),
                      fmt_number(st.get("gflops")), quality_text(cell), status)
    return table


def data_notes(cells: list) -> list[str]:
    """One line per distinct dataset source used (the synthetic stand-in is said once)."""
    seen, lines = set(), []
    for cell in cells:
        d = cell.get("data") or {}
        key = (d.get("dataset"), d.get("source"), d.get("note"))
        if d.get("source") and key not in seen:
            seen.add(key)
            lines.append(f"data: {d.get('dataset')}: {d.get('source')}" + (f" ({d['note']})" if d.get("note") else ""))
    return lines


def print_summary(cells: list, path, console: Console | None = None) -> None:
    """The end-of-run table, the data notes and where the results are."""
    if console is None:
        probe = Console()
        console = probe if probe.is_terminal else Console(width=160, no_color=True, highlight=False)
    if cells:
        console.print(summary_table(cells))
        used = {NOISY for c in cells if ((c.get("stats") or {}).get("samples_per_s") or {}).get("noisy")}
        used |= {CONTENDED for c in cells if (c.get("interference") or {}).get("verdict") == "contended"}
        if used:
            console.print(legend(used), soft_wrap=True)
    for line in data_notes(cells):
        console.print(line, soft_wrap=True)
    bad = sum(c.get("status") != "ok" for c in cells)
    tail = f"; {bad} cell(s) not ok" if bad else ""
    console.print(f"results: {path} ({len(cells)} cells{tail})", soft_wrap=True)
