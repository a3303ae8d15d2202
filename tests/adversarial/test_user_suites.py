"""Class 5 of the second pass: a user's suite folder adds to the built-ins, and its code cannot hang
the command, fork past it, or take Ctrl-C away."""
import signal
import time
import uuid

import psutil
import pytest

from benchbench import cli, registry
from benchbench.registry import suite_probe

from ..fake_suite import suite_source

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def suites(tmp_path, monkeypatch):
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "mine.py").write_text(suite_source(""))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(suite_probe.TIMEOUT_ENV, "2")
    return folder


def test_a_suites_folder_adds_to_the_built_in_workloads(suites, capsys):
    reg = registry.discover(entry_points=False)
    assert {"tiny", "mlp_mnist", "cnn_mnist", "lenet5_cifar10", "lstm_sine", "resnet_cifar10"} <= set(reg.workloads)
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "mlp_mnist" in out


def test_a_name_clash_with_a_built_in_is_a_warning_naming_both_files(suites, capsys):
    (suites / "mine.py").write_text(suite_source("").replace('name="tiny"', 'name="mlp_mnist"'))
    reg = registry.discover(entry_points=False)
    [(where, message)] = reg.errors
    assert where == str(suites / "mine.py")
    assert str(suites / "mine.py") in message and str(registry.builtin_suites_dir() / "mlp_mnist.py") in message
    assert reg.workloads["mlp_mnist"].source.endswith("benchbench/suites/mlp_mnist.py")


def test_a_suite_that_hangs_at_import_is_named_and_the_others_load(suites):
    (suites / "endless.py").write_text("while True:\n    pass\n")
    t0 = time.monotonic()
    reg = registry.discover(suites, entry_points=False)
    assert time.monotonic() - t0 < 30
    assert "tiny" in reg.workloads
    [(where, message)] = reg.errors
    assert where == str(suites / "endless.py") and "took longer than 2 s" in message


def test_processes_a_suite_forks_at_import_end_with_the_probe(suites, tmp_path):
    pid_file = tmp_path / "forked.pid"
    (suites / "forks.py").write_text(f"import os, time\nif os.fork() == 0:\n"
                                     f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                                     "    time.sleep(600)\nwhile True:\n    time.sleep(0.1)\n")
    reg = registry.discover(suites, entry_points=False)
    assert [where for where, _ in reg.errors] == [str(suites / "forks.py")]
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie":
        time.sleep(0.05)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_a_suite_that_ends_the_interpreter_is_left_out_and_the_command_lives(suites):
    (suites / "quits.py").write_text("import os\nos._exit(7)\n")
    reg = registry.discover(suites, entry_points=False)
    [(where, message)] = reg.errors
    assert where == str(suites / "quits.py") and "ended the process (exit status 7)" in message
    assert "tiny" in reg.workloads


def test_a_suite_that_ignores_ctrl_c_at_import_does_not_keep_it(suites):
    (suites / "deaf.py").write_text(suite_source("").replace('name="tiny"', 'name="deaf"') +
                                    "\nimport signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n")
    before = signal.getsignal(signal.SIGINT)
    reg = registry.discover(suites, entry_points=False)
    assert "deaf" in reg.workloads
    assert signal.getsignal(signal.SIGINT) is before


def test_no_child_process_without_a_user_suite_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(suite_probe, "unsafe_files", lambda *a, **k: pytest.fail("a child was started"))
    assert "mlp_mnist" in registry.discover(entry_points=False).workloads


def test_a_bad_suite_time_out_setting_is_a_usage_error(suites, monkeypatch, capsys):
    monkeypatch.setenv(suite_probe.TIMEOUT_ENV, "forever")
    assert cli.main(["list"]) == 2
    assert suite_probe.TIMEOUT_ENV in capsys.readouterr().err


def test_a_file_that_imported_cleanly_is_not_tried_again_until_it_changes(suites, monkeypatch):
    registry.discover(suites, entry_points=False)
    tried = []
    monkeypatch.setattr(suite_probe, "_probe", lambda pending, limit: tried.append(pending) or {})
    registry.discover(suites, entry_points=False)
    assert tried == []
    (suites / "mine.py").write_text(suite_source("") + f"\n# changed: {uuid.uuid4()}\n")  # content never seen
    registry.discover(suites, entry_points=False)
    assert tried == [[str(suites / "mine.py")]]
