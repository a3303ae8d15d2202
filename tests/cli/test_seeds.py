"""`run --seeds` on the command line: one cell per seed, and the report's quality table over them."""
import textwrap

from benchbench import cli as cli_main
from benchbench import results

from ..executor.test_seeds import SUITE
from .conftest import cli

PLAN = textwrap.dedent('''
    workloads: [stair]
    devices: cpu
    data: synthetic
    timeout_s: 120
    profiles:
      full: {warmup_steps: 1}
''')


def test_seeds_give_a_cell_each_and_the_report_scores_them(tmp_path, monkeypatch, capsys):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "tiny.py").write_text(SUITE)
    (tmp_path / "bench.yaml").write_text(PLAN)
    monkeypatch.chdir(tmp_path)
    # stair reaches its target at epoch seed + 1; it trains 3 epochs, so seed 3 misses it.
    proc = cli(tmp_path, "run", "--profile", "full", "--until", "target", "--seeds", "0,1,3")
    assert proc.returncode == 0, proc.stderr
    [path] = results.find_runs(tmp_path / "results")
    run = results.load(path)
    assert [(c["id"], c["seed"], c["repeat"]) for c in run["cells"]] == [
        ("stair/cpu/s0/r0", 0, 0), ("stair/cpu/s1/r0", 1, 0), ("stair/cpu/s3/r0", 3, 0)]
    assert [c["quality"]["epochs_to_target"] for c in run["cells"]] == [1, 2, None]
    assert run["plan"]["seeds"] == [0, 1, 3]
    assert cli_main.main(["report", str(path)]) == 0  # in this process: the report is plain reading
    out = capsys.readouterr().out
    assert "2/3 (67%)" in out and "1.5 [1–2]" in out and "olympic mean" in out
    repeatability = out.split("== Repeatability ==")[1].split("\n== ")[0]
    assert "no cell was repeated" in repeatability  # different seeds are not repeats
    assert "distinct final weights over" not in out and "bit-identical over" not in out
    assert cli_main.main(["run", "--seed", "2", "--seeds", "1,2"]) == 2
    assert capsys.readouterr().err.startswith("benchbench: error: --seed with a list of --seeds")
