"""Headless Debian chromium for the real-browser tests (listening app, HTML report).

`make test` installs chromium and chromium-driver when it can (scripts/install_browser.sh); without them the
tests marked ``needs_browser`` skip with the reason.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="real-browser tests need Debian's chromium and chromium-driver (make test installs them as root with "
           f"apt-get; found chromium={CHROMIUM} chromedriver={CHROMEDRIVER})")
BASE_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run")


def start_chromium(extra_args: tuple[str, ...] = (), logs: tuple[str, ...] = ("browser",), page_load_s: float = 30):
    """A Selenium Chrome driver on the system chromium, with the given log types captured."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in (*BASE_ARGS, *extra_args):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {kind: "ALL" for kind in logs})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(page_load_s)
    return driver
