"""The renderers (rich terminal, pandas Markdown and HTML) and the reporting package's import graph."""
import ast
from pathlib import Path

import pandas as pd
import pytest

import benchbench.reporting
from benchbench.reporting.render import html_table, markdown_table, terminal_table, write_output

FRAME = pd.DataFrame({"workload": ["mlp_mnist", "a|b"], "device": ["gpu:0", "cpu"],
                      "samples/s [95% CI]": ["1,234 [1,200, 1,300] ~noisy", "—"]})


def _reporting_imports() -> dict[str, set[str]]:
    """module -> the reporting modules it imports (at the top or inside a function)."""
    folder = Path(benchbench.reporting.__file__).parent
    graph = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "benchbench.reporting":
                    deps |= {a.name for a in node.names}
                elif node.module.startswith("benchbench.reporting."):
                    deps.add(node.module.rsplit(".", 1)[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.rsplit(".", 1)[1] for a in node.names if a.name.startswith("benchbench.reporting.")}
        graph[path.stem] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for dep in graph.get(node, ()):
                if dep == start:
                    return path + [dep]
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, path + [dep]))
    return None


def test_reporting_has_no_import_cycle():
    graph = _reporting_imports()
    assert {"tables", "html", "compare", "render", "verbs"} <= set(graph)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    assert "html" not in graph["tables"] | graph["compare"]  # the former cycle


def test_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_terminal_table_is_plain_text_with_whole_cells():
    text = terminal_table(FRAME)
    assert "\x1b[" not in text  # no colour codes when not a terminal
    lines = text.splitlines()
    assert lines[0].split() == ["workload", "device", "samples/s", "[95%", "CI]"]
    row = next(line for line in lines if line.startswith("mlp_mnist"))
    assert "1,234 [1,200, 1,300] ~noisy" in row  # never wrapped
    assert all(line == line.rstrip() for line in lines)
    with pytest.raises(TypeError, match="DataFrame"):
        terminal_table([["a"]])


def test_markdown_table_escapes_pipes():
    lines = markdown_table(FRAME).splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["workload", "device", "samples/s [95% CI]"]
    assert set(lines[1]) <= {"|", "-", ":"}
    assert lines[3].startswith("| a\\|b ")
    indexed = markdown_table(FRAME.set_index("workload"), index=True)
    assert "mlp_mnist" in indexed.splitlines()[2]


def test_html_table_escapes_everything():
    text = html_table(pd.DataFrame({"<b>": ["<i>'"]}, index=["<u>"]), index_name="<s>")
    assert "<b>" not in text and "<i>" not in text and "<u>" not in text and "<s>" not in text
    assert "&lt;i&gt;&#x27;" in text and "&lt;u&gt;" in text and "&lt;s&gt;" in text
    assert "&lt;u&gt;" not in html_table(pd.DataFrame({"a": [1]}, index=["<u>"]))


def test_write_output(tmp_path):
    assert write_output("x", None) == "x"
    out = tmp_path / "sub" / "r.md"
    assert write_output("hello", out) == f"wrote {out}" and out.read_text(encoding="utf-8") == "hello"
