"""Headless Debian Chromium for the benchmarks (the flags this closed network needs)."""

from __future__ import annotations

from typing import Any

FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--window-size=1920,1080", "--enable-precise-memory-info",
)


def kiosk_url(url: str, redis_url: str, prefix: str = "cc:", name: str = "bench-wall") -> str:
    """`url` signed in as a read-only wall: a fresh display token (`?display=`), as a
    kiosk's configured URL would carry."""
    import redis

    from dashboard.access.auth import Auth
    from dashboard.config import Settings

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        token = Auth(client, prefix, Settings()).add_display(name)
    finally:
        client.close()
    return f"{url}{'&' if '?' in url else '?'}display={token}"


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



def chromium_procs(driver: Any) -> list[Any]:
    """The Chromium processes `driver` started (the browser, its renderers, GPU, utility)."""
    import psutil

    return psutil.Process(driver.service.process.pid).children(recursive=True)


def cpu_seconds(procs: list[Any]) -> float:
    """User + system CPU seconds `procs` have spent so far."""
    import psutil

    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass  # a process that ended (a renderer swapped out) just stops counting
    return total


def page_metrics(driver: Any) -> dict[str, float]:
    """The page's counters (CDP `Performance.getMetrics`: `TaskDuration` in seconds,
    `LayoutCount` …); `Performance.enable` first for the durations to count."""
    got = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    return {m["name"]: m["value"] for m in got}
