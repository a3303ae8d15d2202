"""Importing cupy: a warning must not disable the GPU, and a failure must say what failed."""
import json
import os
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import json
    from benchbench.core import backend
    from benchbench.executor.planning import devices
    out = {"available": backend.cupy_available(), "error": backend.cupy_import_error(),
           "warnings": list(backend.cupy_import_warnings()), "missing": backend.cupy_missing_text(),
           "cuda": backend.cuda_available(), "why": backend.cuda_unavailable_reason(),
           "hint": devices.gpu_hint(nvml_count=1, cuda_count=0)}
    try:
        backend.Device("gpu:0")
    except RuntimeError as e:
        out["device_error"] = str(e)
    print(json.dumps(out))
""")


def _probe(tmp_path, init_source):
    pkg = tmp_path / "fake" / "cupy"
    (pkg / "cuda").mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(init_source))
    (pkg / "cuda" / "__init__.py").write_text("from . import runtime\n")
    (pkg / "cuda" / "runtime.py").write_text("def getDeviceCount():\n    return 1\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}
    # -W error: as under pytest, where every warning is an error
    proc = subprocess.run([sys.executable, "-W", "error", "-c", PROBE], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_warning_while_importing_cupy_keeps_the_gpu(tmp_path):
    got = _probe(tmp_path, """
        import warnings
        warnings.warn("CUDA path could not be detected", UserWarning)
        class ndarray:
            pass
    """)
    assert got["available"] and got["cuda"] and got["error"] is None and got["why"] is None
    assert got["warnings"] == ["UserWarning: CUDA path could not be detected"]


def test_a_failing_import_says_what_failed_not_that_cupy_is_missing(tmp_path):
    got = _probe(tmp_path, """
        raise ImportError("libcudart.so.13: cannot open shared object file: No such file or directory")
    """)
    assert not got["available"] and not got["cuda"]
    assert got["error"] == "ImportError: libcudart.so.13: cannot open shared object file: No such file or directory"
    assert got["missing"].startswith("cupy is installed but its import failed (ImportError: libcudart.so.13")
    for text in (got["why"], got["hint"], got["device_error"]):
        assert "cupy is installed but its import failed (ImportError: libcudart.so.13" in text, text
        assert "not installed" not in text


def test_missing_cupy_is_called_not_installed():
    from benchbench.core import backend

    error = ModuleNotFoundError("No module named 'cupy'", name="cupy")
    old = backend._cupy_import_error
    try:
        backend._cupy_import_error = error
        assert backend.cupy_missing_text() == "cupy is not installed"
        backend._cupy_import_error = ModuleNotFoundError("No module named 'fastrlock'", name="fastrlock")
        assert backend.cupy_missing_text() == ("cupy is installed but its import failed "
                                               "(ModuleNotFoundError: No module named 'fastrlock')")
    finally:
        backend._cupy_import_error = old
