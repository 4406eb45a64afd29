"""report.html in a real browser: Debian's headless Chromium driven through chromium-driver (Selenium).

Used by the browser test (``tests/browser/test_report_in_chromium.py``) to check that the summary,
the diagrams and the evidence links render with no console errors, and by people to take the
screenshot of the first screen:

    python -m harness.browser results/latest/report.html docs/report-first-screen.png

``ci/setup`` installs ``chromium`` and ``chromium-driver`` from Debian; ``available()`` says why
not when they are missing.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

#: Where Debian's packages put the browser and its driver.
CHROMIUM = ("/usr/bin/chromium", "chromium")
DRIVER = ("/usr/bin/chromedriver", "chromedriver")
#: The first screen of a laptop.
FIRST_SCREEN = (1366, 768)


def _which(candidates: tuple[str, ...]) -> str | None:
    return next((found for c in candidates if (found := shutil.which(c))), None)


def available() -> str | None:
    """None when Chromium and its driver are installed, else what is missing and the fix."""
    missing = [name for name, c in (("chromium", CHROMIUM), ("chromium-driver", DRIVER)) if not _which(c)]
    if missing:
        return f"{' and '.join(missing)} not installed; fix: bash ci/setup (apt-get install chromium chromium-driver)"
    return None


@contextmanager
def chromium(size: tuple[int, int] = FIRST_SCREEN) -> Iterator[webdriver.Chrome]:
    """A headless Chromium that keeps the page's console messages (``console(driver)``)."""
    options = webdriver.ChromeOptions()
    options.binary_location = _which(CHROMIUM) or CHROMIUM[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={size[0]},{size[1]}", "--hide-scrollbars", "--allow-file-access-from-files"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_which(DRIVER) or DRIVER[0]))
    try:
        yield driver
    finally:
        driver.quit()


def console(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The page's console entries since the last call (level, message)."""
    return list(driver.get_log("browser"))


def screenshot(report: Path, out: Path, size: tuple[int, int] = FIRST_SCREEN,
               at: str | None = None) -> list[dict[str, Any]]:
    """A PNG of the first screen of ``report`` at ``size`` (``at``: of the screen that starts with
    the first element matching this CSS selector, e.g. a cell's timeline); returns the console entries."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with chromium(size) as driver:
        driver.get(report.resolve().as_uri())
        if at:
            driver.execute_script("arguments[0].scrollIntoView()", driver.find_element("css selector", at))
        driver.save_screenshot(str(out))
        return console(driver)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.browser",
                                     description="screenshot report.html's first screen")
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", default="1366x768", help="WIDTHxHEIGHT (default: a laptop's first screen)")
    parser.add_argument("--at", help="CSS selector to scroll to first, e.g. 'section.cell .figs'")
    args = parser.parse_args(argv)
    if why := available():
        parser.error(why)
    width, _, height = args.size.partition("x")
    entries = screenshot(args.report, args.out, (int(width), int(height)), at=args.at)
    for entry in entries:
        print(f"console {entry.get('level')}: {entry.get('message')}")
    print(f"screenshot: {args.out}")
    return 1 if any(e.get("level") == "SEVERE" for e in entries) else 0


if __name__ == "__main__":
    raise SystemExit(main())
