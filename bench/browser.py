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


def chromium_cpu_ms() -> float:
    """CPU time (user + system, ms) of every Chromium process on this machine so far: the
    page's main thread, its compositor, the display compositor and raster threads — what a
    wall without a GPU spends, which frames a second alone do not show on a busy host."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if "chrom" not in f.read():
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime of all its threads
    return total * 1000 / tick
