"""Class 3: no input makes benchbench hang or exhaust memory; each is exit 2 in seconds."""
import gzip
import json
import os
import time

import pytest

from benchbench import bounded_io, results
from benchbench.data import DataError, cache
from benchbench.errors import UserError

from .conftest import assert_user_error, cli, results_doc, run_args

pytestmark = pytest.mark.timeout(90)

BILLION_LAUGHS = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(9)]
    + ["workloads: *j"]) + "\n"


def _quick(proc_fn):
    t0 = time.monotonic()
    proc = proc_fn()
    return proc, time.monotonic() - t0


def test_yaml_alias_expansion_is_refused(project):
    (project / "plan.yaml").write_text(BILLION_LAUGHS)
    proc = cli(project, *run_args(project))
    assert_user_error(proc, "plan.yaml:2:", "alias")
    assert not (project / "results").exists()


def test_yaml_with_too_many_values_is_refused(project):
    (project / "plan.yaml").write_text("workloads: [" + ", ".join(["tiny"] * 12_000) + "]\n")
    assert_user_error(cli(project, *run_args(project)), "plan.yaml:1:", "more than")


def test_deeply_nested_yaml_is_refused(project):
    (project / "plan.yaml").write_text("workloads: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert_user_error(cli(project, *run_args(project)), "plan.yaml", "nested")


@pytest.mark.parametrize("kind", ["device", "fifo", "sparse", "folder"])
def test_plan_that_is_not_a_small_regular_file_is_refused(project, kind):
    target = _hostile_file(project, kind, "plan.yaml")
    proc = cli(project, "run", "--config", target, "--output", project / "results", timeout=60)
    assert_user_error(proc, str(target))
    assert not (project / "results").exists()


def _hostile_file(project, kind, name):
    if kind == "device":
        return "/dev/zero"
    path = project / f"hostile-{name}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "sparse":
        with open(path, "wb") as f:
            f.truncate(64 << 30)  # 64 GiB of nothing
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["device", "fifo", "sparse"])
def test_results_file_that_is_not_a_small_regular_file_is_refused(project, kind):
    target = _hostile_file(project, kind, "r.json")
    assert_user_error(cli(project, "report", target, timeout=60), str(target))


def test_deeply_nested_results_file_is_refused(project):
    path = project / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    assert_user_error(cli(project, "report", path), "deep.json", "nested")


def test_results_file_nested_below_the_recursion_limit_is_refused(tmp_path):
    doc = results_doc()
    deep = {}
    node = deep
    for _ in range(500):
        node["x"] = {}
        node = node["x"]
    doc["plan"]["config"] = deep
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(results.ResultsError, match="nested more than"):
        results.load(path)


def test_integer_of_thousands_of_digits_is_refused(project):
    text = json.dumps(results_doc()).replace('"n": 3', '"n": ' + "9" * 4000)
    (project / "huge.json").write_text(text)
    assert_user_error(cli(project, "report", project / "huge.json"), "huge.json", "cells[0].stats.step_s.n",
                      "out of range")


def test_integer_beyond_the_parser_limit_is_refused(project):
    text = json.dumps(results_doc()).replace('"n": 3', '"n": ' + "9" * 100_000)
    (project / "huge.json").write_text(text)
    assert_user_error(cli(project, "report", project / "huge.json"), "huge.json", "not valid JSON")


def _bomb(path, header, megabytes):
    member = gzip.compress(b"\0" * (1 << 20))  # a gzip stream may be many members, read as one
    with open(path, "wb") as f:
        f.write(gzip.compress(header))
        for _ in range(megabytes):
            f.write(member)
    return path


def test_gzip_bomb_without_a_header_stops_at_the_limit(tmp_path):
    bomb = _bomb(tmp_path / "x.gz", b"", 24)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(DataError, match="decompresses to more than 16 MiB"):
        cache.read_file(bomb, "mnist", limit=16 << 20)


def test_gzip_bomb_in_the_data_folder_is_refused_in_bounded_memory(project):
    data = project / "data" / "mnist"
    data.mkdir(parents=True)
    # A valid header for the 60,000 training images, then far more than they need.
    _bomb(data / "train-images-idx3-ubyte.gz", _idx_header(60000, 28, 28), cache.MAX_FILE_BYTES >> 20)
    for other in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (data / other).write_bytes(b"")
    elsewhere = project / "elsewhere"  # no ./suites here: the shipped workloads
    elsewhere.mkdir()
    proc = cli(elsewhere, "run", "--config", project / "plan.yaml", "--output", project / "results", "--workload",
               "mlp_mnist", "--data", "real", "--data-dir", project / "data", timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "decompresses to more than the 47040016 bytes its header promises" in proc.stderr
    assert not (project / "results").exists()


def test_data_file_that_is_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "train-images-idx3-ubyte"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        cache.read_file(fifo, "mnist")


def test_read_limited_reads_no_more_than_its_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert bounded_io.read_limited(path, 100, "file") == b"x" * 100
    with pytest.raises(UserError, match="more than"):
        bounded_io.read_limited(path, 99, "file")
    with pytest.raises(ValueError, match="limit"):
        bounded_io.read_limited(path, 0, "file")


def _idx_header(*dims):
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def test_gzip_stream_longer_than_its_idx_header_promises_is_refused(tmp_path):
    from benchbench.data import mnist

    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(_idx_header(10, 28, 28) + b"\0" * (10 * 28 * 28) + b"\0" * (8 << 20))
    with pytest.raises(DataError, match=f"more than the {16 + 10 * 28 * 28} bytes its header promises"):
        cache.read_file(path, "mnist", size_from_header=mnist.idx_size)
    exact = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(exact, "wb") as f:
        f.write(_idx_header(10, 28, 28) + b"\1" * (10 * 28 * 28))
    assert len(cache.read_file(exact, "mnist", size_from_header=mnist.idx_size)) == 16 + 10 * 28 * 28


def test_idx_header_promising_more_than_any_dataset_is_refused_before_reading(tmp_path):
    from benchbench.data import mnist

    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(_idx_header(4_000_000_000, 28, 28))
    with pytest.raises(DataError, match="header promises"):
        cache.read_file(path, "mnist", size_from_header=mnist.idx_size)
