"""The epochs a cell finished before it ended early (killed, timed out, crashed, interrupted).

A full-profile worker writes its epoch log file as it trains: a header line (the cell's data and how
its quality is judged), then one line per finished epoch. When the worker dies without a result, the
launcher rebuilds from that file what the epochs showed: the quality at the last finished epoch, the
best quality and its epoch, the number of epochs, and whether (and when) the target was reached,
marked ``partial``. The tables then show that quality with its data source, not a dash.

Example:
    >>> head = {"quality": {"metric": "accuracy", "target": 0.5, "higher_is_better": True}}
    >>> q = partial_quality(head, [{"epoch": 1, "validation/main/accuracy": 0.4, "elapsed_time": 2.0},
    ...                            {"epoch": 2, "validation/main/accuracy": 0.6, "elapsed_time": 4.0}])
    >>> q["partial"], q["epochs"], q["best_value"], q["epochs_to_target"], q["time_to_target_s"]
    (True, 2, 0.6, 2, 4.0)
"""
from __future__ import annotations

import json
import math


def json_rows(path) -> list[dict]:
    """The JSON objects of an epoch log file, one a line; a torn line (the worker died while writing
    it) is skipped, and a missing or unreadable file has none."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    rows.append(row)
    except OSError:
        return []
    return rows


def read_header(path) -> dict | None:
    """The header line of an epoch log file (``{"data": ..., "quality": ...}``), or None."""
    for row in json_rows(path):
        if "epoch" not in row and isinstance(row.get("quality"), dict):
            return row
    return None


def _number(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def partial_quality(header: dict | None, rows: list) -> dict | None:
    """The quality record of a cell that ended after the epochs ``rows`` (None without a header or rows)."""
    spec = (header or {}).get("quality")
    if not isinstance(spec, dict) or not rows:
        return None
    metric = str(spec.get("metric") or "accuracy")
    higher = bool(spec.get("higher_is_better", True))
    target = _number(spec.get("target"))
    key = "validation/main/accuracy" if metric == "accuracy" else f"validation/main/{metric}"
    q = {"metric": metric, "value": None, "target": target, "target_source": spec.get("target_source"),
         "reached": False, "time_to_target_s": None, "epochs_to_target": None, "higher_is_better": higher,
         "best_value": None, "best_epoch": None, "validation_loss": None, "until": spec.get("until"),
         "epochs": len(rows), "partial": True}
    for row in rows:
        value = _number(row.get(key))
        if value is None and metric != "accuracy":
            value = _number(row.get("validation/main/loss"))
        q["value"], q["validation_loss"] = value, _number(row.get("validation/main/loss"))
        if value is None:
            continue
        best = q["best_value"]
        if best is None or (value > best if higher else value < best):
            q["best_value"], q["best_epoch"] = value, int(row["epoch"])
        if target is not None and q["epochs_to_target"] is None and (value >= target if higher else value <= target):
            q["reached"] = True
            q["epochs_to_target"], q["time_to_target_s"] = int(row["epoch"]), _number(row.get("elapsed_time"))
    return q


def keep(cell: dict, path, rows: list) -> dict:
    """``cell`` (a record of a cell that ended early) with its kept epochs' data and partial quality."""
    header = read_header(path)
    if header is not None and isinstance(header.get("data"), dict):
        data = cell.get("data") or {}
        if not data.get("source"):
            cell["data"] = {**data, **{k: header["data"].get(k) for k in ("dataset", "source", "note")}}
    quality = partial_quality(header, rows)
    if quality is not None and not cell.get("quality"):
        cell["quality"] = quality
    return cell
