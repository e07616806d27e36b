"""A real browser for the UI tests: Debian's Chromium through Selenium, headless, a fresh profile.

Tests that need it call `chromium_or_skip()`: without Chromium they skip with one line that names
the packages to install. Screenshots go to $HRSS_HOME/reports/screens/.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL_HINT = "apt-get install -y chromium chromium-driver (or `make system-deps` as root)"
HEADLESS_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1600,1200", "--lang=zh-CN")
T = TypeVar("T")


def chromium_or_skip() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.skip(f"browser test skipped: {', '.join(missing)} not found; install with {INSTALL_HINT}")


@contextmanager
def browser(screens: Path) -> Iterator[Browser]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium_or_skip()
    profile = tempfile.mkdtemp(prefix="hrss-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*HEADLESS_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield Browser(driver, screens)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Browser:
    def __init__(self, driver, screens: Path) -> None:
        self.driver = driver
        self.screens = screens
        screens.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> Path:
        path = self.screens / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout_s: float = 120,
                 fail: bool = True) -> T | None:
        """Poll `probe` until it returns something truthy; after the timeout fail with a screenshot, or
        (``fail`` off) return None."""
        from selenium.common.exceptions import WebDriverException

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                found = probe()
            except WebDriverException:  # the page re-rendered under us: look again
                found = None
            if found:
                return found
            if time.monotonic() > deadline:
                if not fail:
                    return None
                path = self.shot(f"timeout-{what.replace(' ', '-')[:60]}")
                pytest.fail(f"waited {timeout_s:.0f} s for {what}; screenshot {path}")
            time.sleep(1)
