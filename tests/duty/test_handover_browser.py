"""The shift handover page /duty/handover and the header's roster line in headless Chromium
over the real stack.

Feature codes: hand101 a duty officer drafts this shift's handover, writes a remark and
signs; signed out and in as another duty officer, the report waits for acceptance and is
accepted; the roster line shows who is on duty as the API says; no console errors and no
scrollbars at 1920×1080; hand102 a leader gets the page's refusal.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard.command.alerts import Alerts
from dashboard.store import Store
from feeds.redis_server import free_port
from layouts import ids

from ..app.test_wall_browser import Wall
from ..auth_util import browser_sign_in, browser_sign_out, sign_in
from ..conftest import Stack
from ..units_util import event

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).parents[1] / "screenshots"


class Page(Wall):
    def open_page(self, size: tuple[int, int] = (1920, 1080)) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        self.driver.get(self.duo.server.url.rstrip("/") + "/duty/handover")

    def attr(self, name: str) -> str | None:
        return self.js(f"var e = document.getElementById('{ids.HANDOVER_ROOT}');"
                       f" return e && e.getAttribute('{name}')")

    def click(self, css: str) -> None:
        self.wait(lambda: self.driver.find_elements("css selector", css), 10, css)
        self.driver.find_element("css selector", css).click()

    def section_ids(self, name: str) -> list[str]:
        return self.js(f"""return Array.from(document.querySelectorAll(
            '[data-section="{name}"] .cc-ho-item')).map(e => e.getAttribute('data-id'))""")

    def no_scrollbars(self) -> bool:
        return self.js("""var d = document.documentElement;
            return d.scrollHeight <= innerHeight && d.scrollWidth <= innerWidth""")


@pytest.fixture
def page(dash_duo: Any, stack: Stack, r: redis.Redis) -> Page:
    store = Store(r)
    now = int(time.time() * 1000)
    event(store, "HB1", 0.0, ts=now - 5 * 60_000, title="<b>仓库起火</b>", severity=2)
    event(store, "HB2", 500.0, ts=now - 60_000, type="garbage", title="垃圾堆积", severity=4)
    Alerts(store).raise_once("sos", "W9", None, "网格员W9发出SOS求助", 2)
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    return Page(dash_duo, stack)


def test_hand101_drafted_signed_and_accepted_by_another_officer(page: Page,
                                                                stack: Stack) -> None:
    browser_sign_in(page.duo, stack.client, "duty_officer", name="zhiban")
    page.open_page()
    page.click(".cc-ho-draft")
    page.wait(lambda: page.attr("data-state") == "draft", 10, "the draft")
    hid = page.attr("data-report")
    page.wait(lambda: not page.driver.find_elements("css selector", ".cc-ho-draft"), 10,
              "the draft button to go (this shift has its report)")
    opened = page.section_ids("opened")
    assert {"HB1", "HB2"} <= set(opened)
    titles = page.js("return Array.from(document.querySelectorAll("
                     "'[data-section=\"opened\"] .cc-ho-c-title')).map(e => e.textContent)")
    assert "<b>仓库起火</b>" in titles  # shown as text, never as markup
    assert page.driver.find_elements("css selector", '[data-section="alarms"] .cc-ho-item')
    # the header's roster line says what the API says
    client = stack.app.server.test_client()
    sign_in(client, stack.client, "leader", name="hand-api")
    now = client.get("/api/roster").get_json()["now"]
    page.wait(lambda: now["officers"][0]["name"] in (page.js(
        f"return document.getElementById('{ids.ROSTER_TEXT}').textContent") or ""), 10,
        "the roster line")
    assert page.no_scrollbars()
    page.driver.save_screenshot(str(SHOTS / "handover-1920x1080.png"))
    # a roster change shows on the next read (the line reads every minute)
    boss = stack.app.server.test_client()
    sign_in(boss, stack.client, "commander", name="hand-cmd")
    doc = boss.get("/api/roster").get_json()["roster"]
    on_now = {o["user"] for o in now["officers"]}
    other = next(u for u in ("zhiban2", "zhouyang", "wufang") if u not in on_now)
    doc["overrides"] = {now["date"]: {now["shift"]: {"leader": "zhihui", "officers": [other]}}}
    assert boss.put("/api/roster", json=doc).status_code == 200
    page.js("return window.ccwall.roster.load()")
    name = doc["people"][other]["name"]
    page.wait(lambda: name in (page.js(
        f"return document.getElementById('{ids.ROSTER_TEXT}').textContent") or ""), 10,
        "the changed roster")
    area = page.driver.find_element("css selector", ".cc-ho-f-remarks textarea")
    area.send_keys("东门积水待复查")
    page.click(".cc-ho-sign")
    page.wait(lambda: page.attr("data-state") == "signed", 10, "the signature")
    assert not page.driver.find_elements("css selector", ".cc-ho-accept")  # not their own
    assert page.duo.get_logs() == []

    # the incoming officer
    browser_sign_out(page.duo)
    browser_sign_in(page.duo, stack.client, "duty_officer", name="zhiban2")
    page.open_page()
    page.wait(lambda: page.attr("data-report") == hid, 10, "the signed report")
    assert page.js("return document.querySelector('.cc-ho-f-remarks textarea').value") == \
        "东门积水待复查"
    page.click(".cc-ho-accept")
    page.wait(lambda: page.attr("data-state") == "accepted", 10, "the acceptance")
    report = client.get(f"/api/handover/{hid}").get_json()["handover"]
    assert report["signed"]["by"] == "zhiban" and report["accepted"]["by"] == "zhiban2"
    assert report["remarks"] == "东门积水待复查" and report["intact"] is True
    printed = page.driver.find_element("css selector", ".cc-ho-print").get_attribute("href")
    assert printed.endswith(f"/duty/handover/{hid}/print")
    assert page.no_scrollbars()
    page.open_page((3840, 2160))
    page.wait(lambda: page.attr("data-state") == "accepted", 10, "the report at 4K")
    assert page.no_scrollbars()
    assert page.duo.get_logs() == []


def test_hand102_a_leader_is_refused(page: Page, stack: Stack) -> None:
    browser_sign_in(page.duo, stack.client, "leader")
    page.open_page()
    page.wait(lambda: page.driver.find_elements("css selector", ".cc-ho-forbidden"), 10,
              "the refusal")
    assert not page.driver.find_elements("css selector", ".cc-ho-draft")
    assert page.duo.get_logs() == []
