"""``import benchbench`` sets OpenBLAS's thread timeout before numpy loads OpenBLAS, and keeps a value
the user set."""
import os
import subprocess
import sys

_PROBE = ("import sys, os, benchbench; "
          "print('numpy' in sys.modules, os.environ.get('OPENBLAS_THREAD_TIMEOUT'))")


def _probe(**env):
    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", _PROBE], env={**base, **env}, capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_import_sets_the_timeout_before_numpy_loads():
    assert _probe() == ["False", "4"]


def test_a_timeout_set_by_the_user_is_kept():
    assert _probe(OPENBLAS_THREAD_TIMEOUT="20") == ["False", "20"]
