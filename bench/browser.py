"""Headless Debian Chromium for the benchmarks (the flags this closed network needs)."""

from __future__ import annotations

from typing import Any

FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--window-size=1920,1080", "--enable-precise-memory-info",
)


def browser(url: str) -> Any:
    """A Chromium at 1920x1080 showing `url`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    driver.set_script_timeout(60)
    driver.get(url)
    return driver
