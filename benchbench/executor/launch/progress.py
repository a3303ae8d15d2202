"""What ``benchbench run`` shows while it works and when it is done (rich).

``RunProgress`` shows one line per finished cell, and on a terminal a live bar for
the cell in progress; when the output is not a terminal (a batch job's log) it prints
a line per finished epoch and at least one line every ``heartbeat_s`` seconds instead. The table at
the end of a run is reporting's (what ``benchbench report`` prints of the run's file).
"""
from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

_STATUS_STYLE = {"ok": "green", "failed": "red", "oom": "red", "timeout": "yellow", "diverged": "magenta"}


def make_console(stderr: bool = False) -> Console:
    """A console; wide enough for the table when the output is not a terminal."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, width=160, no_color=True, highlight=False)


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _sig(x: float) -> str:
    """A number with three significant figures, without scientific notation for common sizes."""
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.01:
        return f"{x:.3g}"
    return f"{x:.2e}"


def throughput_text(cell: dict) -> str:
    """``median [ci_low–ci_high]`` samples/s of a cell, or ``-``."""
    sps = ((cell.get("stats") or {}).get("samples_per_s")) or None
    if not sps:
        return "-"
    noisy = " ~noisy" if sps.get("noisy") else ""
    contended = " ~contended" if (cell.get("interference") or {}).get("verdict") == "contended" else ""
    return f"{_sig(sps['median'])} [{_sig(sps['ci_low'])}–{_sig(sps['ci_high'])}]{noisy}{contended}"


def quality_text(cell: dict) -> str:
    """The validation metric (and time to target when reached) of a cell, or ``-``."""
    q = cell.get("quality") or {}
    if q.get("value") is None:
        return "-"
    name = "acc" if q.get("metric") == "accuracy" else (q.get("metric") or "metric")
    text = f"{name} {q['value']:.4g}"
    if q.get("time_to_target_s") is not None:
        text += f" (target in {q['time_to_target_s']:.1f} s)"
    return text


def status_text(cell: dict) -> Text:
    status = cell.get("status", "?")
    text = Text(status, style=_STATUS_STYLE.get(status, ""))
    if cell.get("reason"):
        text.append(f": {cell['reason']}")
    return text


def cell_label(cell_or_desc: dict) -> str:
    """``workload on device`` (with the seed in a run of several, and the repeat when there are several)."""
    wl = cell_or_desc.get("workload")
    if cell_or_desc.get("id"):
        wl = cell_or_desc["id"].split("/")[0]
    label = f"{wl} on {cell_or_desc.get('device')}"
    if "/s" in str(cell_or_desc.get("id", "")):
        label += f" seed {cell_or_desc.get('seed')}"
    if cell_or_desc.get("repeat"):
        label += f" (repeat {cell_or_desc['repeat']})"
    return label


class RunProgress:
    """Progress of a run: a line per finished cell, plus a live bar on a terminal.

    Args:
        total: the number of cells.
        console: where to draw (stderr by default).
        heartbeat_s: off a terminal, the longest silence between two progress lines (> 0).
    """

    def __init__(self, total: int, console: Console | None = None, heartbeat_s: float = 30.0):
        if not heartbeat_s > 0:
            raise ValueError(f"RunProgress: heartbeat_s must be > 0, got {heartbeat_s!r}")
        self.total = total
        self.console = console or make_console(stderr=True)
        self._live = None
        self._task = None
        self._heartbeat_s = heartbeat_s
        self._current = None       # (index, label, start time, last event) of the cell in progress
        self._last_line = time.monotonic()
        self._stop = threading.Event()
        self._beat = None
        if not self.console.is_terminal:
            self._beat = threading.Thread(target=self._heartbeat, name="benchbench-progress", daemon=True)
            self._beat.start()
        if self.console.is_terminal:
            self._live = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                  TimeElapsedColumn(), console=self.console, transient=True)
            self._live.start()

    def _say(self, text: str) -> None:
        self._last_line = time.monotonic()
        self.console.print(text, soft_wrap=True, highlight=False)

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(self._heartbeat_s, 1.0)):
            cur = self._current
            if cur is None or time.monotonic() - self._last_line < self._heartbeat_s:
                continue
            index, label, t0, event = cur
            info = ""
            if event.get("done") is not None and event.get("total"):
                info = f" step {event['done']}/{event['total']}"
            if event.get("epoch") is not None:
                info += f" epoch {event['epoch']}"
            self._say(f"[{index + 1}/{self.total}] {label}: running{info} ({time.monotonic() - t0:.0f} s)")

    def start(self, index: int, desc: dict) -> None:
        """A cell starts."""
        self._current = (index, cell_label(desc), time.monotonic(), {})
        if self._live is not None:
            if self._task is not None:
                self._live.remove_task(self._task)
            self._task = self._live.add_task(f"[{index + 1}/{self.total}] {cell_label(desc)}", total=None, info="starting")

    def update(self, index: int, event: dict) -> None:
        """A progress event from the worker (``done``, ``total``, ``loss``, ``epoch_done``...)."""
        if self._current is not None and self._current[0] == index and "epoch_done" not in event:
            self._current = self._current[:3] + (event,)
        if self._live is None:
            if "epoch_done" in event and self._current is not None:
                row = event.get("row") or {}
                cols = "  ".join(f"{k} {v:.4g}" for k, v in row.items()
                                 if k != "epoch" and isinstance(v, (int, float)))
                self._say(f"[{index + 1}/{self.total}] {self._current[1]}: epoch {event['epoch_done']}  {cols}")
            return
        if self._task is None or "epoch_done" in event:
            return
        info = event.get("phase") or (f"epoch {event['epoch']}" if "epoch" in event else "")
        if event.get("loss") is not None:
            info += f" loss {event['loss']:.4g}"
        self._live.update(self._task, completed=event.get("done", 0), total=event.get("total"), info=info.strip())

    def done(self, index: int, cell: dict) -> None:
        """A cell finished (with any status)."""
        line = Text(f"[{index + 1}/{self.total}] {cell_label(cell)}: ")
        line.append_text(status_text(cell))
        tput = throughput_text(cell)
        if tput != "-":
            line.append(f"  {tput} samples/s")
        line.append(f"  ({cell.get('duration_s') or 0.0:.1f} s)")
        self._current = None
        self._last_line = time.monotonic()
        self.console.print(line)

    def close(self) -> None:
        """Stop the live display (and the heartbeat)."""
        self._stop.set()
        if self._live is not None:
            self._live.stop()
            self._live = None
