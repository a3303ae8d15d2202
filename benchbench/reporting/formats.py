"""The number formatters and the marks every report shares (standard library only, so the end-of-run
table of ``benchbench run`` renders without loading pandas). ``marks`` explains the marks."""
from __future__ import annotations

import math


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt_number(value, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (no exponent below 10^7), or ``—`` when missing."""
    if not _finite(value):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def fmt_bytes(value) -> str:
    """Bytes as MiB or GiB, or ``—``."""
    if not _finite(value):
        return "—"
    if value >= 1 << 30:
        return f"{value / (1 << 30):.2f} GiB"
    return f"{value / (1 << 20):.0f} MiB"


def fmt_seconds(value) -> str:
    """A duration in s, min or h, or ``—``."""
    if not _finite(value):
        return "—"
    if value >= 3600:
        return f"{value / 3600:.2f} h"
    if value >= 120:
        return f"{value / 60:.1f} min"
    return f"{value:.3g} s"


def fmt_energy(value) -> str:
    """Joules as J or kJ, or ``—``."""
    if not _finite(value):
        return "—"
    return f"{value / 1000:.3g} kJ" if value >= 1000 else f"{value:.3g} J"


NOISY = "~noisy"
CONTENDED = "~contended"
MARKS = {
    NOISY: "the timed steps scatter: interquartile range over 10% of the median",
    CONTENDED: "other processes or a moved calibration probe disturbed the timed steps (the reason is listed below)",
}


def mark_text(noisy: bool, contended: bool) -> str:
    """The marks of one figure, with a leading space, or ``''``."""
    return (f" {NOISY}" if noisy else "") + (f" {CONTENDED}" if contended else "")


def legend(used: set[str] | None = None) -> str:
    """One line explaining each mark (only those in ``used`` when given)."""
    items = [f"{mark}: {meaning}" for mark, meaning in MARKS.items() if used is None or mark in used]
    return "marks: " + "; ".join(items) if items else ""
