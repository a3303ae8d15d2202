"""The README's promises that code can check: one set-up, one run and one test command, which CI
runs exactly, and every ``BENCHBENCH_*`` switch in its table."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def _commands(section: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip() and not line.startswith("#")]


def test_one_setup_one_run_and_one_test_command_which_ci_runs():
    setup, tests = _commands(_section("Set-up")), _commands(_section("Tests"))
    assert len(setup) == 2 and setup[1] == "benchbench run --device all", setup  # set-up, then the run
    assert tests == ["python -m tests"], tests
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith("#")]
    assert setup[0] in ci and tests[0] in ci
    runs = [line for line in ci if "pytest" in line or "python -m tests" in line]
    assert runs == tests, f".ci/run runs tests other than the README's one command: {runs}"


def test_every_switch_is_in_the_readme_table():
    table = set(re.findall(r"^\| `(BENCHBENCH_[A-Z0-9_]+)` \|", README, flags=re.M))
    sources = list((ROOT / "benchbench").rglob("*.py")) + list((ROOT / "tests" / "simgpu").rglob("*.py"))
    sources += [ROOT / "tests" / "__main__.py", ROOT / "tests" / "conftest.py"]
    used = {name for path in sources for name in re.findall(r"BENCHBENCH_[A-Z0-9_]*[A-Z0-9]", path.read_text())}
    missing = sorted(used - table)
    assert not missing, f"BENCHBENCH_* switches read but missing from the README's table: {missing}"
    stale = sorted(table - used)
    assert not stale, f"switches in the README's table that nothing reads: {stale}"
