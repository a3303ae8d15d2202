"""The buyer's summary, the caveat sections in every medium, and compare's gate."""
import copy
import math
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from benchbench.cli import main
from benchbench.reporting.buyer import geomean, summary_tables
from benchbench.reporting.compare_gate import metadata_diff, pairing_warnings, parse_percent
from benchbench.reporting.runs import ReportError, load_run
from benchbench.reporting.sections import SECTION_TITLES, render_terminal, report_sections
from benchbench.reporting.summary import summarize_run
from benchbench.reporting.verbs import compare, report


def _probes(doc, sgemm=50.0, membw=20.0):
    doc["probes"] = {"start": {"sgemm_gflops": sgemm, "membw_gbs": membw}, "end": {}}
    return doc


@pytest.fixture(scope="module")
def flagged(tmp_path_factory, build):
    """A simulated run with a contended cell, synthetic data and probes."""
    cells = build.alpha_cells()
    cells[1]["interference"] = {"verdict": "contended", "reasons": ["a busy neighbour"],
                                "probes": {"before": {"gpu_gemm_gflops": 2000.0}, "after": {"gpu_gemm_gflops": 1000.0}}}
    cells[1]["energy"] = {**cells[1]["energy"], "samples_per_joule": 5.0, "window": "timed steps"}
    doc = _probes(build.run_doc("alpha-1a2b3c4d", cells))
    doc["machine"]["simulated_gpus"] = True
    return build.write(tmp_path_factory.mktemp("flagged") / "a" / "r.json", doc)


def test_summary_table_geomean_baseline_and_peak(flagged):
    run = load_run(flagged)
    s = summarize_run(run)
    thr, share, notes = summary_tables([run], [s])
    assert list(thr.columns[:3]) == ["cpu", "gpu:0", "gpu:1"]
    assert thr.index[-1] == "samples/s per W (geomean)" and "geometric mean" in thr.index
    mlp_cpu = s[(s.workload == "mlp_mnist") & (s.device == "cpu")].iloc[0]
    # the CPU's peak: one-thread sgemm 50 GFLOP/s × 8 BLAS threads
    assert share.loc["mlp_mnist", "cpu"] == f"{mlp_cpu.gflops / 400:.1%}"
    gpu0 = s[(s.workload == "mlp_mnist") & (s.device == "gpu:0")].iloc[0]
    assert share.loc["mlp_mnist", "gpu:0"] == f"{gpu0.gflops / 2000:.1%}"  # the better GEMM probe
    assert "~contended" in thr.loc["mlp_mnist", "gpu:0"]
    # only mlp_mnist ran on every column: the geometric mean of gpu:0 is its mlp_mnist figure
    assert any("over the 1 workload(s) every column measured (mlp_mnist)" in n for n in notes)
    assert any(n.startswith("no per-watt figure for cpu: ") for n in notes)
    assert thr.loc["samples/s per W (geomean)", "gpu:0"] == "5"
    norm, _, notes = summary_tables([run], [s], baseline="cpu")
    assert norm.loc["geometric mean", "cpu"] == "1×"
    assert norm.loc["mlp_mnist", "gpu:0"].startswith(f"{gpu0.samples_per_s / mlp_cpu.samples_per_s:.3g}×")
    with pytest.raises(ReportError, match="--baseline tpu:0"):
        summary_tables([run], [s], baseline="tpu:0")
    assert math.isclose(geomean([2.0, 8.0, float("nan")]), 4.0)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h2, self.banner, self.where = [], "", []

    def handle_starttag(self, tag, attrs):
        self.where.append((tag, dict(attrs).get("class", "")))

    def handle_endtag(self, tag):
        if self.where:
            self.where.pop()

    def handle_data(self, data):
        tags = [t for t, _ in self.where]
        if tags and tags[-1] == "h2":
            self.h2.append(data)
        if any(c == "banner" for _, c in self.where):
            self.banner += data


def test_every_medium_carries_the_banner_and_every_section(tmp_path, flagged):
    terminal = report([flagged])
    markdown = report([flagged], fmt="markdown")
    report([flagged], fmt="html", output=tmp_path / "r.html")
    page = _Page()
    page.feed((tmp_path / "r.html").read_text(encoding="utf-8"))
    for title in SECTION_TITLES:
        assert f"== {title} ==" in terminal and f"## {title}" in markdown and title in page.h2
    for word in ("SIMULATED", "CONTENDED", "SYNTHETIC"):
        assert word in terminal.split("== Summary")[0] and word in page.banner and f"> **{word}" in markdown
    assert "a busy neighbour" in terminal and "a busy neighbour" in markdown
    assert "marks: ~noisy" in terminal or "marks: ~contended" in terminal
    assert "\x1b[" not in terminal  # colour only on a terminal
    banner, sections = report_sections([load_run(flagged)], [summarize_run(load_run(flagged))])
    coloured = render_terminal("t", banner, sections, colour=True)
    assert "! \x1b[1;31mSIMULATED GPUs:" in coloured and "\x1b[1;33mCONTENDED:" in coloured


def _slower(build, tmp_path, factor, name):
    cells = [build.cell("mlp_mnist", "cpu", 0.05 * factor, seed=s, repeat=r) for r, s in enumerate((1, 2, 3))]
    return build.write(tmp_path / name / "r.json", _probes(build.run_doc(name + "-00000000", cells, gpus=0)))


def test_fail_if_slower_gates_on_the_ci(tmp_path, build, capsys):
    a = _slower(build, tmp_path, 1.0, "a")
    b = _slower(build, tmp_path, 1.2, "b")   # made 20% slower on purpose
    same = _slower(build, tmp_path, 1.0, "c")
    assert main(["compare", str(a), str(b), "--fail-if-slower", "5%"]) == 1
    assert "mlp_mnist on cpu: b-00000000 runs at" in capsys.readouterr().err
    assert main(["compare", str(a), str(same), "--fail-if-slower", "5%"]) == 0
    assert main(["compare", str(a), str(b), "--fail-if-slower", "150"]) == 2
    assert "benchbench: error: --fail-if-slower" in capsys.readouterr().err
    assert parse_percent("5%") == 5.0


def test_compare_names_differences_and_warns(tmp_path, build, alpha_path):
    alpha = load_run(alpha_path)
    doc = copy.deepcopy(alpha.data)
    doc["plan"]["profile"] = "full"
    doc["machine"]["id"] = "other-00000000"
    doc["machine"]["cpu"]["model"] = "Other CPU 1"
    doc["machine"]["cpu_frequency"] = {"governor": "powersave", "turbo": True}
    for c in doc["cells"]:
        c["data"]["source"] = "synthetic"
    other = load_run(build.write(tmp_path / "o" / "r.json", doc))
    diff = metadata_diff([alpha, other]).set_index("differs")
    assert diff.loc["profile"].tolist() == ["quick", "full"] and "Other CPU 1" in diff.loc["CPU"].iloc[1]
    assert diff.loc["CPU governor"].tolist() == ["—", "powersave"] and diff.loc["CPU turbo"].iloc[1] == "True"
    warnings = " ".join(pairing_warnings([alpha, other]))
    assert "different profiles" in warnings and "real data meets synthetic data on mlp_mnist" in warnings
    text = compare([alpha_path, other.path], prices={"alpha-1a2b3c4d": 12000, "other-00000000": 6000},
                   baseline="other-00000000")
    assert "what differs between the machines and runs" in text and "different profiles" in text
    assert "normalised to other-00000000 cpu, other-00000000 gpu:0" in text  # each device against the same on the run
    assert "samples/s per 1k price (geomean)" in text


def test_compare_names_simulated_runs_in_every_format(tmp_path, flagged):
    for fmt in ("terminal", "markdown"):
        text = compare([flagged, flagged], fmt=fmt)
        assert "SIMULATED GPUs:" in text.split("Summary")[0] and "alpha-1a2b3c4d (run 20261123T105100Z-3f9c2a)" in text
    csv = compare([flagged, flagged], fmt="csv")
    assert csv.splitlines()[0].split(",")[4] == "simulated" and ",True," in csv.splitlines()[1]
    # HTML: the same banner as ``report`` (test_every_medium_carries_the_banner_and_every_section)


def test_report_folder_reports_every_run_and_names_the_skipped(tmp_path, build):
    folder = tmp_path / "m-00000000"
    for run_id in ("20261123T105100Z-3f9c2a", "20261124T105100Z-3f9c2b"):
        build.write(folder / f"{run_id}.json", build.run_doc("m-00000000", [build.cell("mlp_mnist", "cpu", 0.05)],
                                                            gpus=0, run_id=run_id))
    (folder / "20261125T105100Z-000000.json").write_text("{broken")
    text = report([folder])
    assert "run 20261123T105100Z-3f9c2a" in text and "run 20261124T105100Z-3f9c2b" in text
    assert text.startswith("skipped ") and "20261125T105100Z-000000.json" in text.splitlines()[0]
    out = report([folder], fmt="html", output=tmp_path / "all.html")
    assert out.splitlines()[0].startswith("skipped ") and out.endswith("all.html")
    assert (tmp_path / "all.html").read_text().count("<h2>Machine m-00000000 — run ") == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium browser")
def test_banner_and_sections_in_headless_chromium(tmp_path, flagged):
    from matplotlib.image import imread

    page = tmp_path / "r.html"
    report([flagged], fmt="html", output=page)
    shot = tmp_path / "shot.png"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(base + ["--dump-dom", page.resolve().as_uri()], check=True, timeout=60, capture_output=True,
                         text=True).stdout
    parsed = _Page()
    parsed.feed(dom)
    assert "SIMULATED GPUs:" in parsed.banner and "CONTENDED:" in parsed.banner and "SYNTHETIC DATA:" in parsed.banner
    assert all(title in parsed.h2 for title in SECTION_TITLES)
    subprocess.run(base + [f"--screenshot={shot}", "--window-size=1200,800", page.resolve().as_uri()], check=True,
                   timeout=60, capture_output=True)
    top = imread(shot)[:250, :, :3]
    red = (top[..., 0] > 0.55) & (top[..., 1] < 0.3) & (top[..., 2] < 0.3)
    assert red.mean() > 0.002  # the banner's red frame and text are drawn at the top of the page
