"""The run report: written by the job, rendered by `giellm-batch report`, checked in a real browser."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from giellm_batch.monitoring.report import gather, render

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_job_writes_the_report_of_each_run_and_latest(spark, clean_run):
    _, _, warehouse = clean_run
    reports = warehouse / "_reports"
    (run_page,) = [p for p in reports.glob("*.html") if p.name != "latest.html"]
    latest = (reports / "latest.html").read_text(encoding="utf-8")
    assert latest == run_page.read_text(encoding="utf-8")
    run_id = run_page.stem
    assert f"giellm-batch run {run_id}" in latest
    for section in ("Funnel", "Quarantine", "Text labels per task", "Top entities", "By publication day",
                    "Engines", "Trend over the last runs"):
        assert f"<h2>{section}" in latest, section
    assert "<script" not in latest and "http://" not in latest and "https://" not in latest  # offline
    data = gather(spark, str(warehouse), run_id)
    assert data["run"]["run_id"] == run_id and data["labels"] and data["top_entities"]
    assert sum(r["count"] for r in data["labels"]) == data["run"]["prompts"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: `make browser` installs it (make test does)")
def test_report_renders_its_plots_in_chromium(spark, clean_run, tmp_path):
    from playwright.sync_api import sync_playwright

    _, _, warehouse = clean_run
    page_file = tmp_path / "report.html"
    page_file.write_text(render(gather(spark, str(warehouse))), encoding="utf-8")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(page_file.as_uri(), wait_until="load")
        charts = page.evaluate("Array.from(document.querySelectorAll('svg.chart')).map(c => {"
                               "const r = c.getBoundingClientRect(); return [r.width, r.height,"
                               " c.querySelectorAll('rect, polyline').length]; })")
        shot = Path(os.environ.get("GIELLM_REPORT_SCREENSHOT") or tmp_path / "report.png")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert not errors, errors
    # every chart laid out at a readable size with its bars or lines drawn
    assert len(charts) >= 4 and all(w > 300 and h > 50 and marks >= 1 for w, h, marks in charts), charts
    assert shot.stat().st_size > 50_000  # a page of plots, not a blank one
