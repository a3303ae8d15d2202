"""The one atomic JSON writer (benchbench.json_files)."""
import ast
import json
import os
import sys
from pathlib import Path

import pytest

from benchbench import json_files


def test_writes_strict_json_and_creates_folders(tmp_path):
    path = json_files.atomic_write_json(tmp_path / "a" / "b" / "r.json", {"v": [1, 2.5, None], "s": "é"})
    assert path == tmp_path / "a" / "b" / "r.json"
    assert json.loads(path.read_text(encoding="utf-8")) == {"v": [1, 2.5, None], "s": "é"}
    assert path.read_text(encoding="utf-8").endswith("\n")
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_keeps_old_file_when_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    json_files.atomic_write_json(path, {"v": 1})

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        json_files.atomic_write_json(path, {"v": 2, "big": "x" * 100_000})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_refuses_non_json_before_touching_the_file(tmp_path):
    path = tmp_path / "r.json"
    json_files.atomic_write_json(path, {"v": 1})
    for bad in ({"v": float("nan")}, {"v": float("inf")}, {"v": object()}):
        with pytest.raises((TypeError, ValueError)):
            json_files.atomic_write_json(path, bad)
    assert json.loads(path.read_text()) == {"v": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_default_hook_and_one_line_form(tmp_path):
    path = json_files.atomic_write_json(tmp_path / "r.json", {"p": Path("x/y")}, indent=None, default=str)
    assert path.read_text() == '{"p": "x/y"}\n'


def test_results_writes_through_it():
    from benchbench import results

    assert results.atomic_write_json is json_files.atomic_write_json


def test_standard_library_only():
    tree = ast.parse(Path(json_files.__file__).read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert names and all(n.split(".")[0] in sys.stdlib_module_names | {"__future__"} for n in names), names
