"""Output that fits: tables wrap to the terminal's width, drop empty columns, and never cut a spec."""
import io

import pandas as pd
from rich.console import Console

from benchbench import registry
from benchbench.cli import main
from benchbench.reporting.render import drop_empty_columns, terminal_table


def test_list_never_cuts_a_spec(monkeypatch, capsys):
    buf = io.StringIO()
    monkeypatch.setattr("benchbench.executor.launch.progress.make_console",
                        lambda stderr=False: Console(file=buf, width=70, no_color=True))
    assert main(["list"]) == 0
    firsts = {line.split("│")[1].strip() for line in buf.getvalue().splitlines() if line.count("│") > 2}
    specs = {r["spec"] for r in registry.list_rows(registry.discover(None))}
    assert specs <= firsts  # each spec whole in its cell, never wrapped or ellipsised


def test_tables_fit_the_width_and_drop_empty_columns(monkeypatch):
    frame = pd.DataFrame({"device": ["cpu", "gpu:0"], "samples/s [95% CI]": ["1,234 [1,200, 1,260] ~noisy ~contended"] * 2,
                          "quality": ["accuracy 0.98 (quick: sanity value)"] * 2, "energy": ["—", "—"]})
    monkeypatch.delenv("COLUMNS", raising=False)
    wide = terminal_table(frame)
    assert max(len(line) for line in wide.splitlines()) > 60
    narrow = terminal_table(frame, width=60)
    assert max(len(line) for line in narrow.splitlines()) <= 60 and "~contended" in narrow
    monkeypatch.setenv("COLUMNS", "60")
    assert terminal_table(frame) == narrow
    assert list(drop_empty_columns(frame).columns) == ["device", "samples/s [95% CI]", "quality"]
