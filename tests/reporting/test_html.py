import re
import shutil
import subprocess

import pytest

from benchbench.reporting.html import html_report
from benchbench.reporting.runs import ReportError
from benchbench.reporting.verbs import report
from benchbench.reporting.render import html_table as table_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def evil_path(tmp_path_factory, build):
    cells = build.alpha_cells()[:2] + [build.cell(build.EVIL, "cpu", 0.01, seed=9, source="synthetic", note=build.EVIL),
                                     build.cell("cost$\\frac$", "cpu", 0.02, seed=10)]
    doc = build.run_doc("alpha-1a2b3c4d", cells)
    doc["machine"]["cpu"]["model"] = build.EVIL
    return build.write(tmp_path_factory.mktemp("evil") / "alpha-1a2b3c4d" / "20261123T105100Z-3f9c2a.json", doc)


@pytest.fixture(scope="module")
def comparison_html(tmp_path_factory, alpha_path, beta_path):
    out = tmp_path_factory.mktemp("html") / "compare.html"
    assert html_report([alpha_path, beta_path], output=out, prices={"beta-5e6f7a8b": 3000}) == out
    return out


def _assert_self_contained(text):
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|<link|@import|\b(?:src|href)=\"(?!data:)", text)
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text


def test_comparison_page(comparison_html, build):
    text = comparison_html.read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert "<h2>Comparison</h2>" in text and "within-run only: not significant" in text
    assert "<h2>Machine alpha-1a2b3c4d — run 20261123T105100Z-3f9c2a</h2>" in text
    assert "<h2>Machine beta-5e6f7a8b — run 20261124T090000Z-aaaaaa</h2>" in text
    assert text.count('<img alt="throughput') == 2
    assert text.count("data:image/png;base64,") == 5  # alpha: throughput, scaling, tta, phases; beta: throughput
    assert "software versions differ" in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text  # the failed cell's reason, escaped


def test_every_string_is_escaped(tmp_path, evil_path, build):
    out = html_report([evil_path], output=tmp_path / "evil.html", plots="throughput")
    text = out.read_text(encoding="utf-8")
    _assert_self_contained(text)
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    assert f"<h3>{escaped} (global batch" in text
    assert text.count(escaped) >= 4  # workload heading, CPU model, data note, figure alt text
    assert "<h3>cost$\\frac$ (global batch" in text  # and the figure drew it as text, not as (invalid) math


def test_default_output_and_report_html(tmp_path, beta_path):
    assert report([beta_path], fmt="html", results_dir=tmp_path) == \
        f"wrote {tmp_path / 'reports' / 'beta-5e6f7a8b_20261124T090000Z-aaaaaa.html'}"


def test_no_results(tmp_path):
    with pytest.raises(ReportError, match="no results in"):
        html_report(None, results_dir=tmp_path)


def test_table_html_escapes_headers_and_index():
    import pandas as pd

    text = table_html(pd.DataFrame({"<b>": ["<i>"]}, index=["<u>"]), index_name="<s>")
    assert "<b>" not in text and "<i>" not in text and "<u>" not in text and "<s>" not in text
    assert "&lt;b&gt;" in text and "&lt;u&gt;" in text


@pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium browser")
def test_page_renders_in_headless_chromium(tmp_path, comparison_html):
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1200,2000", comparison_html.resolve().as_uri()]
    subprocess.run(cmd, check=True, timeout=60, capture_output=True)
    image = imread(shot)
    assert image.shape[:2] == (2000, 1200)
    gray = image[..., :3].mean(axis=2)
    assert (gray < 0.5).mean() > 0.01  # text and tables are drawn, not a blank page
    assert gray.std() > 0.05
