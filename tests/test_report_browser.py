"""report.html in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright without a browser
download of its own) opens the sample run's report; the charts must render (SVG nodes in every chart section),
with no console error and no network request; a screenshot is saved for people to look at.

Without Chromium the test fails with a clear message; developers may skip it with CORPUS_SKIP_BROWSER=1, never
in CI (CI=true), whose .ci/run installs Chromium."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
CHART_SECTIONS = ("funnel", "signals", "languages", "lengths", "dedup")


def chromium() -> str:
    path = os.environ.get("CORPUS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CORPUS_SKIP_BROWSER") == "1" and os.environ.get("CI", "").lower() != "true":
        pytest.skip("CORPUS_SKIP_BROWSER=1: no Chromium on this machine")
    pytest.fail("Chromium is not installed: apt-get install chromium (.ci/run does), or set CORPUS_CHROMIUM=PATH")


def test_report_renders_in_chromium(sample_output, tmp_path):
    executable = chromium()
    from playwright.sync_api import sync_playwright

    page_url = (sample_output / "report.html").resolve().as_uri()
    requests, errors = [], []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=executable, args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": 1200, "height": 900},
        )  # fmt: skip
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_url, wait_until="load")
        counts = {s: page.locator(f"section#{s} svg").count() for s in CHART_SECTIONS}
        drawn = page.evaluate("[...document.querySelectorAll('svg.chart')].map(s => s.getBBox().width)")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        shot = Path(os.environ.get("CORPUS_SCREENSHOTS", tmp_path)) / "report.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        context.close()
    assert all(n > 0 for n in counts.values()), counts
    assert counts["signals"] >= 20  # one histogram per filter signal
    assert drawn and min(drawn) > 0  # every chart has drawn content
    assert overflow <= 0, "the page is wider than a 1,200 px window"
    assert errors == []
    assert requests == [page_url]  # the page itself, and nothing fetched
    assert shot.stat().st_size > 50_000
