"""Headless Debian Chromium on the demo, signed in as its users, for tools/screenshots.py:
the page's size held at 1920×1080, scripted clicks (no mouse left hovering in a picture),
waits that say what they waited for, and the checks a picture must pass (no scrolling)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from bench.latency import wait_for
from layouts import ids

SIZE: Final = (1920, 1080)
FLAGS: Final = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", f"--window-size={SIZE[0]},{SIZE[1]}", "--force-device-scale-factor=1",
    "--autoplay-policy=no-user-gesture-required",
)
# The demo's users (dashboard/access/demo.py) by the role each picture is taken as.
USERS: Final = {"commander": "zhihui", "leader": "lingdao", "duty_officer": "zhiban"}
WAIT_S: Final = 30  # what a page must show, it shows within this


class ShotError(RuntimeError):
    """A page did not show what its picture needs."""


class Browser:
    """One headless Chromium on the demo; `js` runs a script, `wait` polls a check."""

    def __init__(self, base: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options

        options = Options()
        options.binary_location = "/usr/bin/chromium"
        for flag in FLAGS:
            options.add_argument(flag)
        self.base = base
        self.driver = webdriver.Chrome(options=options)
        self.driver.set_script_timeout(60)
        # the page's own size, whatever the window around it takes (the tests' way)
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": SIZE[0], "height": SIZE[1], "deviceScaleFactor": 1, "mobile": False})
        self.user = ""

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
        try:
            return wait_for(check, timeout, what)
        except TimeoutError:
            raise ShotError(f"{what}: not within {timeout:.0f} s") from None

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def sign_in(self, role: str, password: str) -> None:
        """Through the sign-in page, as a person would; a no-op if already this user."""
        name = USERS[role]
        if self.user == name:
            return
        self.driver.delete_all_cookies()
        self.open("/login?next=/api/me")
        self.wait(lambda: self.driver.find_element("id", "cc-login-user"), "the sign-in form")
        self.driver.find_element("id", "cc-login-user").send_keys(name)
        self.driver.find_element("id", "cc-login-password").send_keys(password)
        self.driver.find_element("id", "cc-login-submit").click()
        self.wait(lambda: urlsplit(self.driver.current_url).path == "/api/me",
                  f"signing in as {name}")
        self.user = name

    def live(self) -> None:
        """Until the page's socket is live and its first snapshot is in."""
        self.wait(lambda: self.js(f"var c = document.getElementById('{ids.CONN}');"
                                  "return c && c.dataset.state === 'connected' && window.ccwall &&"
                                  " ccwall.store && ccwall.store.lastSeq() > 0"),
                  "the live connection")

    def click(self, selector: str) -> None:
        """A click by script: no mouse left hovering over the picture."""
        self.js("document.querySelector(arguments[0]).click()", selector)

    def scrollbars(self) -> list[str]:
        """Elements showing a scrollbar (the pages are made to have none)."""
        return self.js("""
            const out = [];
            const d = document.documentElement;
            if (d.scrollHeight > d.clientHeight + 1 || d.scrollWidth > d.clientWidth + 1)
              out.push('page');
            for (const el of document.querySelectorAll('body *')) {
              const s = getComputedStyle(el);
              if (!el.checkVisibility()) continue;
              const y = /(auto|scroll)/.test(s.overflowY) && el.scrollHeight > el.clientHeight + 1;
              const x = /(auto|scroll)/.test(s.overflowX) && el.scrollWidth > el.clientWidth + 1;
              const bar = el.offsetWidth - el.clientWidth + el.offsetHeight - el.clientHeight;
              if ((x || y) && bar > 4)
                out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                         (el.className && typeof el.className === 'string' ?
                          '.' + el.className.trim().split(/\\s+/).join('.') : ''));
            }
            return out;""")

    def save(self, path: Path) -> list[str]:
        """The picture; a page that scrolls fails it. Returns warnings: lists inside the
        page that show a scrollbar (a long list may, on a desk page), errors the page's
        console logged."""
        bars = self.scrollbars()
        if "page" in bars:
            raise ShotError("the page scrolls (every page fits its screen)")
        self.driver.save_screenshot(str(path))
        notes = [f"scrollbar on {', '.join(sorted(set(bars))[:4])}"] if bars else []
        logged = [e.get("message", "") for e in self.driver.get_log("browser")
                  if e.get("level") == "SEVERE"]
        return notes + [f"console: {m[:160]}" for m in logged[:3]]

    def quit(self) -> None:
        self.driver.quit()
