"""The command line's tests: one ``cli`` (the real command in a subprocess), one in-process ``main``
for the usage errors (no interpreter start, the same exit status and the same one line), and the
helpers they share."""
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

from benchbench import results

from ..fake_suite import suite_source


def cli(cwd, *args, timeout=300, env=None):
    """``benchbench ARGS`` in a subprocess in ``cwd`` (``env`` added to this environment)."""
    return subprocess.run([sys.executable, "-m", "benchbench", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=None if env is None else {**os.environ, **env})


@dataclass
class Outcome:
    """What an in-process call of the command line gave, named as a CompletedProcess names it."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def main(monkeypatch, capsys):
    """``main(cwd, *args, env=None)``: ``benchbench ARGS`` in this process, from ``cwd``.

    For usage errors and other checks that stop before any cell runs: the exit status and the
    output are those of the real command, without starting an interpreter.
    """
    from benchbench import cli as cli_module

    def call(cwd, *args, env=None):
        monkeypatch.chdir(cwd)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        rc = cli_module.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Outcome(rc, out, err)

    return call


def run_args(cwd, *extra):
    return ["run", "--config", str(cwd / "plan.yaml"), "--output", str(cwd / "results"), *extra]


def only_run(cwd):
    files = results.find_runs(cwd / "results")
    assert len(files) == 1, files
    return results.load(files[0])


def assert_one_line_error(proc, *needles):
    """Exit status 2, one line ``benchbench: error: ...`` holding every needle, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("benchbench: error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# Test-only workloads: tiny model and data, plus ones that crash, abort, hang, diverge or sleep.
SUITE = suite_source(target=2.0, epochs=2, extra='''

    @workload(name="crash", **COMMON)
    class Crash(Tiny):
        def forward(self, model, x, t, params):
            raise RuntimeError("boom in forward")


    @workload(name="abort", **COMMON)
    class Abort(Tiny):
        def forward(self, model, x, t, params):
            sys.stderr.write("about to abort\\n")
            sys.stderr.flush()
            os.abort()


    @workload(name="rankcrash", **COMMON)
    class RankCrash(Tiny):
        def forward(self, model, x, t, params):
            if os.environ.get("PMI_RANK") == "1":
                raise ValueError("rank one gives up")
            return super().forward(model, x, t, params)


    @workload(name="hang", **COMMON)
    class Hang(Tiny):
        def forward(self, model, x, t, params):
            time.sleep(600)


    @workload(name="nan", **COMMON)
    class NaN(Tiny):
        def forward(self, model, x, t, params):
            loss, acc = super().forward(model, x, t, params)
            return loss * float("nan"), acc


    @workload(name="sleepy", params={"ms": 20}, **COMMON)
    class Sleepy(Tiny):
        def forward(self, model, x, t, params):
            if Path("slow.flag").exists():
                time.sleep(params["ms"] / 1000)
            elif Path("sleep.flag").exists():
                time.sleep(0.02)
            return super().forward(model, x, t, params)
''')

PLAN = textwrap.dedent('''
    workloads: [tiny]
    devices: cpu
    repeat: 1
    seed: 0
    data: synthetic
    timeout_s: 120
    profiles:
      quick:
        warmup_steps: 1
        steps: 3
        val_batches: 1
        min_time_s: 0
        workloads:
          hang: {timeout_s: 3}
''')


@pytest.fixture
def project(tmp_path):
    """A working directory with the test suites and a plan."""
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "faults.py").write_text(SUITE)
    (tmp_path / "plan.yaml").write_text(PLAN)
    return tmp_path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One finished run that read-only tests share: ``tiny`` and ``sleepy`` (20 ms a forward) on the CPU.

    Returns ``(project, proc, run)``; the tests must not write into ``project``.
    """
    project = tmp_path_factory.mktemp("finished")
    (project / "suites").mkdir()
    (project / "suites" / "faults.py").write_text(SUITE)
    (project / "plan.yaml").write_text(PLAN)
    (project / "sleep.flag").write_text("")
    proc = cli(project, *run_args(project, "--workload", "tiny", "--workload", "sleepy"))
    return project, proc, only_run(project)
