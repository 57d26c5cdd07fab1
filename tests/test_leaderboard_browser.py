"""The generated ``index.html`` in a real headless browser (run with ``pytest -m browser``).

Needs Debian's ``chromium`` and the ``playwright`` Python package, driving the system browser
(no ``playwright install``). The page must load without console errors, sort when a header is
clicked, filter by text and by suite (the all-task summary by text only), and a screenshot is
taken: into ``leaderboards/screenshot.png`` when ``LEADERBOARD_SCREENSHOT=1``, else into a
temp dir.
"""

import os
import shutil
from pathlib import Path

import pytest
from test_leaderboard_render import boards_of, entry
from test_leaderboard_summary import PICK, PUSH, boards_from, main_board, verified

from residual_bench.leaderboard.render import render_html

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

REPO_LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


@pytest.fixture
def page_path(tmp_path) -> Path:
    boards = boards_of(
        entry("scripted", 12),
        entry("scripted + sac", 17, status="verified"),
        entry("bc", 5),
        entry("scripted", 8, suite="poke"),
        entry("scripted + sac", 14, suite="poke", status="verified"),
    )
    path = tmp_path / "index.html"
    path.write_text(render_html(boards))
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

            nominal = "#table-ResidualPickPlace-v1-nominal-heldout"

            def names(table: str = "table.leaderboard") -> list[str]:
                cells = page.locator(f"{table} tbody tr:not([hidden]) td:nth-child(2)")
                return cells.all_inner_texts()

            assert names() == ["scripted + sac", "scripted", "bc", "scripted + sac", "scripted"]
            assert page.locator(f"{nominal} tbody td:nth-child(1)").all_inner_texts() == [
                "1",
                "1",
                "2",
            ]  # fmt: skip  (17/20 and 12/20 overlap; 5/20 lies below 17/20's interval)
            header = page.locator(f"{nominal} th", has_text="Success")
            header.click()  # ascending
            assert names(nominal) == ["bc", "scripted", "scripted + sac"]
            header.click()  # descending
            assert names(nominal)[0] == "scripted + sac" and names(nominal)[-1] == "bc"
            page.locator(f"{nominal} th", has_text="Method").click()
            assert names(nominal) == sorted(names(nominal))

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


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
@pytest.mark.skipif(sync_playwright is None, reason="needs playwright (pip install playwright)")
def test_the_all_task_summary_sorts_and_follows_the_text_filter_but_not_the_suite(tmp_path):
    boards = boards_from(
        (main_board(PICK), verified("scripted + sac", 15)),
        (main_board(PUSH), verified("scripted + sac", 9)),
        (main_board(PICK), verified("bc", 6)),
    )
    path = tmp_path / "index.html"
    path.write_text(render_html(boards))
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())

            def names() -> list[str]:
                cells = page.locator("#table-summary tbody tr:not([hidden]) td:nth-child(2)")
                return cells.all_inner_texts()

            assert names() == ["scripted + sac", "bc"]
            page.locator("#table-summary th", has_text="Tasks covered").click()  # ascending
            assert names() == ["bc", "scripted + sac"]
            page.select_option("#suite-filter", "push-mixed")
            assert sorted(names()) == ["bc", "scripted + sac"]
            page.fill("#filter", "bc")
            assert names() == ["bc"]
        finally:
            browser.close()
    assert errors == []
