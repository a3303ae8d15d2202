"""Class 3 of the second pass: every option of every verb, given a hostile value, exits 2 or runs
cleanly; never an internal error (3), never a hang.

The options are read from the argument parser itself, so an option added later is swept too.
Everything runs in this process through ``benchbench.cli.main`` (fast); the parts that would
start workers or an MPI sweep are replaced by stand-ins that return at once, and so are the
seconds-long machine checks, which take no option.
"""
import argparse
import contextlib
import io
import json
import signal

import pytest

from benchbench import cli, cli_args

from .conftest import PLAN, fake_sweep, results_doc

pytestmark = pytest.mark.timeout(300)

HOSTILE = ["0", "-1", "99999999999999999999", "inf", "nan", "1e400", "", "garbage", "a" * 300,
           "/".join(["b" * 200] * 25), "=cmd|' /C calc'!A0"]
CASE_LIMIT_S = 30


class Hang(BaseException):
    """A case that did not end within CASE_LIMIT_S."""


def _verbs(parser, path=()):
    """(verb path, verb parser) for every verb, nested verbs (``data fetch``) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _verbs(sub, (*path, name))
    if path:
        yield path, parser


def _options():
    cases = []
    for path, parser in _verbs(cli_args.build_parser()):
        for action in parser._actions:
            if action.nargs == 0 or isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            cases.append((path, action.option_strings[0] if action.option_strings else action.dest))
    return cases


OPTIONS = _options()


class _NoWorker:
    """A worker that exits at once with status 1 and writes nothing (the cell is recorded failed)."""
    pid, returncode = -1, 1

    def __init__(self):
        self.stdout = io.BytesIO(b"")

    def wait(self, timeout=None):
        return self.returncode

    def poll(self):
        return self.returncode


@contextlib.contextmanager
def _no_process(cmd, **kwargs):
    yield _NoWorker()


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A project folder, results files, and stand-ins for what starts processes."""
    import matplotlib.figure

    from benchbench.executor import bandwidth, interference, probes, profile
    from benchbench.executor.launch import processes

    (tmp_path / "plan.yaml").write_text(PLAN.replace("[tiny]", "['mlp_mnist:small']"))  # no ./suites: no probe
    for i, machine in enumerate(("m-1", "m-2")):
        doc = results_doc(run_id=f"20261123T10510{i}Z-3f9c2a", status="complete")
        doc["machine"]["id"] = machine
        folder = tmp_path / "results" / machine
        folder.mkdir(parents=True)
        (folder / f"{doc['run_id']}.json").write_text(json.dumps(doc))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCHBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(processes, "group", _no_process)  # the launcher runs; no worker starts
    monkeypatch.setattr(processes, "kill_group", lambda proc: None)
    quiet = {"other_share": 0.0, "cores": 1, "busy": False, "top": [], "load_avg": None}
    monkeypatch.setattr(interference, "preflight", lambda *a, **k: dict(quiet))
    for name in ("run_start", "run_end", "before_cell", "after_cell"):  # calibration probes take seconds
        monkeypatch.setattr(probes.RunCalibration, name, lambda self, *a: None)
    fake = fake_sweep()
    monkeypatch.setattr(bandwidth, "run_sweep", lambda *a, **k: dict(fake))
    real_profile = profile.profile_workload
    monkeypatch.setattr(profile, "profile_workload", lambda *a, **k: _PROFILE or _PROFILE.update(real_profile(*a, **k))
                        or _PROFILE)

    def savefig(self, fname, *a, **k):  # the rendering is not what is swept; the file is still made
        with open(fname, "wb") as f:
            f.write(b"figure")
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    return tmp_path


_PROFILE = {}  # one real profile, computed once


def _base(path, root):
    """Positionals and options a verb needs to get past its required arguments."""
    files = sorted(str(p) for p in (root / "results").rglob("*.json"))
    return {
        ("run",): ([], {"--config": "plan.yaml", "--output": str(root / "out"), "--workload": "mlp_mnist:small"}),
        ("list",): ([], {}),
        ("info",): ([], {}),
        ("data", "fetch"): (["sine"], {"--data-dir": str(root / "data")}),
        ("data", "path"): ([], {}),
        ("profile",): (["mlp_mnist:small"], {"--steps": "1", "--warmup": "0"}),
        ("bandwidth",): ([], {"--device": "cpu:dp2"}),
        ("report",): (files[:1], {}),
        ("plot",): (files[:1], {"--output": str(root / "plots"), "--kind": "throughput"}),
        ("compare",): (files, {}),
    }[path]


def _argv(path, option, value, root):
    positionals, options = _base(path, root)
    options = dict(options)
    if option.startswith("-"):
        options[option] = value
    else:
        positionals = [value]
    return [*path, *(f"{k}={v}" for k, v in options.items()), *(["--", *positionals] if positionals else [])]


def _main_bounded(argv):
    def alarm(signum, frame):
        raise Hang(argv)

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_LIMIT_S)
    try:
        return cli.main(argv)
    except SystemExit as e:  # argparse refusing the value
        return e.code
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_sweep_covers_every_verb_and_option():
    verbs = {path for path, _ in OPTIONS}
    assert {("run",), ("profile",), ("bandwidth",), ("report",), ("plot",), ("compare",), ("list",),
            ("data", "fetch"), ("data", "path")} <= verbs
    assert (("run",), "--timeout") in OPTIONS and (("bandwidth",), "--sizes") in OPTIONS
    assert len(OPTIONS) >= 40


@pytest.mark.parametrize("path, option", OPTIONS, ids=[" ".join(p) + " " + o for p, o in OPTIONS])
def test_a_hostile_value_is_a_usage_error_or_runs_cleanly(sandbox, path, option, capsys):
    failures = []
    for value in HOSTILE:
        argv = _argv(path, option, value, sandbox)
        try:
            code = _main_bounded(argv)
        except Hang:
            failures.append(f"{value[:40]!r}: no answer within {CASE_LIMIT_S} s")
            continue
        out, err = capsys.readouterr()
        if code not in (0, 1, 2):
            failures.append(f"{value[:40]!r}: exit {code}: {err.strip()[:300]}")
        elif code == 2 and not err.strip().splitlines()[-1].startswith("benchbench: error: "):
            failures.append(f"{value[:40]!r}: exit 2 without one error line: {err.strip()[-300:]}")
    assert not failures, "\n".join(failures)


def test_every_verb_runs_cleanly_with_its_base_arguments(sandbox, capsys):
    """The sweep's stand-ins leave the verbs working: a refusal in the sweep is the value's doing."""
    for path in sorted({path for path, _ in OPTIONS}):
        positionals, options = _base(path, sandbox)
        argv = [*path, *(f"{k}={v}" for k, v in options.items()), *(["--", *positionals] if positionals else [])]
        code = _main_bounded(argv)
        assert code == (1 if path == ("run",) else 0), (argv, capsys.readouterr().err[-500:])  # run: cells failed
