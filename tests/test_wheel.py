"""A built wheel works like the checkout: installed outside the source tree, it lists and runs every
built-in workload."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = {"mlp_mnist", "cnn_mnist", "lenet5_cifar10", "lstm_sine", "resnet_cifar10"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this tree, unpacked into a folder of its own (dependencies from this venv)."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"),
                            str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = (tmp / "dist").glob("benchbench-*.whl")
    target = tmp / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-2000:]
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    return target, cwd, env


def _py(installed, *args, timeout=300):
    target, cwd, env = installed
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_wheel_is_what_runs(installed):
    proc = _py(installed, "-c", "import benchbench; print(benchbench.__file__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(installed[0])), proc.stdout


def test_the_wheel_lists_every_builtin_workload(installed):
    proc = _py(installed, "-m", "benchbench", "list")
    assert proc.returncode == 0, proc.stderr
    assert all(name in proc.stdout for name in BUILTIN), proc.stdout
    assert "warning" not in proc.stderr.lower(), proc.stderr


def test_the_wheel_runs_a_quick_cell(installed):
    _, cwd, _ = installed
    (cwd / "plan.yaml").write_text(textwrap.dedent('''
        workloads: [lstm_sine]
        devices: cpu
        data: synthetic
        profiles:
          quick: {warmup_steps: 1, steps: 3, val_batches: 1, min_time_s: 0}
    '''))
    proc = _py(installed, "-m", "benchbench", "run", "--config", "plan.yaml", "--output", "results")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lstm_sine" in proc.stdout and "ok" in proc.stdout


def test_the_wheel_carries_the_results_schema(installed):
    proc = _py(installed, "-c", "from benchbench import results; s = results.schema(); "
                                "print(s['$schema'], results.__file__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("https://json-schema.org/draft/2020-12/schema"), proc.stdout
    assert (installed[0] / "benchbench" / "results.schema.json").is_file()
