"""`benchbench run` records the pre-flight check, the calibration probes and each cell's interference."""


def test_run_records_preflight_probes_and_interference(finished_run):
    _, proc, run = finished_run
    assert proc.returncode == 0, proc.stderr
    assert 0.0 <= run["preflight"]["other_share"] <= 1.0 and isinstance(run["preflight"]["busy"], bool)
    assert run["probes"]["start"]["sgemm_gflops"] > 0 and run["probes"]["end"]["membw_gbs"] > 0
    for cell in run["cells"]:
        inter = cell["interference"]
        assert (inter["verdict"] == "quiet") == (inter["reasons"] == []) and inter["probes"]["tolerance"] == 0.25
        assert inter["probes"]["before"]["sgemm_gflops"] > 0 and inter["probes"]["after"]["sgemm_gflops"] > 0
    if run["preflight"]["busy"]:
        assert "benchbench: warning: the machine is busy" in proc.stderr
