"""A screenshot of a report's HTML page, as a reader sees it in a browser.

    python benchmarks/report_screenshot.py results/scripted-sac/report/report.html \
        results/scripted-sac/report_screenshot.png

Drives Debian's ``chromium`` (``apt-get install chromium``) through the ``playwright`` Python
package without downloading a browser of its own; the page is self-contained, nothing is
fetched. Writes a full-page PNG 1200 px wide.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright


def screenshot(page_path: Path, out: Path, width: int = 1200) -> Path:
    """Render ``page_path`` in headless Chromium and save the whole page to ``out``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(page_path.resolve().as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="report.html")
    parser.add_argument("out", type=Path, help="PNG to write")
    args = parser.parse_args()
    print(f"wrote {screenshot(args.page, args.out)}")


if __name__ == "__main__":
    main()
