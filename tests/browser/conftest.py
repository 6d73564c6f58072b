"""A headless Chromium driven by selenium, for the playground's browser tests. Skips (saying why)
when selenium, Debian's `chromium` or `chromium-driver` is missing; `.ci/run` installs them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
               "--window-size=1280,900")


def _binary(*names: str) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (test extra)")
    chrome = _binary("chromium", "chromium-browser")
    driver_path = _binary("chromedriver")
    if chrome is None or driver_path is None:
        pytest.skip("chromium and chromium-driver are not installed "
                    "(apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chrome
    for arg in (*CHROME_ARGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any, *expected: str) -> list[str]:
    """The browser console's errors since the last call, but those containing an `expected` text."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(text in e["message"] for text in expected)]


SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "playground.png"
