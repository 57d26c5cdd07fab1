"""The generated ``index.html`` in a real headless browser (run with ``pytest -m browser``).

Needs Debian's ``chromium`` and the ``playwright`` Python package, driving the system browser
(no ``playwright install``). The page must load without console errors, sort when a header is
clicked, filter by text and by suite, and a screenshot is taken: into
``leaderboards/screenshot.png`` when ``LEADERBOARD_SCREENSHOT=1``, else into a temp dir.
"""

import os
import shutil
from pathlib import Path

import pytest

from residual_bench.leaderboard.render import rank, render_html

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

REPO_LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


def row(name: str, k: int, suite: str, status: str = "self-reported") -> dict:
    return {
        "track": "heldout",
        "suite": suite,
        "name": name,
        "base": "scripted",
        "residual": "sac" if "+" in name else None,
        "success": {
            "rate": k / 20,
            "k": k,
            "n": 20,
            "ci": [max(0, k - 4) / 20, min(20, k + 3) / 20],
        },
        "recovery": {"rate": k / 25, "k": k, "n": 25, "ci": [0.1, 0.9]},
        "completion": 6.0 + k / 10,
        "status": status,
        "id": f"{k:02d}{suite}".encode().hex()[:16],
        "submitter": "tests",
    }


@pytest.fixture
def page_path(tmp_path) -> Path:
    rows = [
        row("scripted", 12, "nominal"),
        row("scripted + sac", 17, "nominal", "verified"),
        row("bc", 5, "nominal"),
        row("scripted", 8, "poke"),
        row("scripted + sac", 14, "poke", "verified"),
    ]
    path = tmp_path / "index.html"
    path.write_text(render_html(rank(rows)))
    return path


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
@pytest.mark.skipif(sync_playwright is None, reason="needs playwright (pip install playwright)")
def test_the_page_loads_sorts_filters_and_is_photographed(page_path, tmp_path):
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())

            def names() -> list[str]:
                cells = page.locator("#table-heldout tbody tr:not([hidden]) td:nth-child(3)")
                return cells.all_inner_texts()

            assert names() == ["scripted + sac", "scripted", "bc", "scripted + sac", "scripted"]
            header = page.locator("#table-heldout th", has_text="Success")
            header.click()  # ascending
            assert names() == ["bc", "scripted", "scripted", "scripted + sac", "scripted + sac"]
            header.click()  # descending
            assert names()[0] == "scripted + sac" and names()[-1] == "bc"
            page.locator("#table-heldout th", has_text="Method").click()
            assert names() == sorted(names())

            page.fill("#filter", "verified")
            assert names() == ["scripted + sac", "scripted + sac"]
            page.fill("#filter", "")
            page.select_option("#suite-filter", "poke")
            assert sorted(names()) == ["scripted", "scripted + sac"]
            page.select_option("#suite-filter", "")
            assert len(names()) == 5

            keep = os.environ.get("LEADERBOARD_SCREENSHOT") == "1"
            shot = REPO_LEADERBOARDS / "screenshot.png" if keep else tmp_path / "screenshot.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 1000
        finally:
            browser.close()
    assert errors == []
