"""The page rotation /rotate in headless Chromium over the real stack (ingest, relay, Valkey).

Feature codes: rot101 a rotation moves through its pages at a short interval, one frame
(and one socket) per page, the indicator readable, pause and resume, zh; rot102 a spec
outside a town leader's scope is refused (the page and the chooser), English; rot103 an
urgent level I event holds a kiosk's rotation on the wall focused on it until someone
acknowledges it, then it resumes where it was, English; rot104 the chooser saves a
rotation and a kiosk opens it by name.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import redis

from dashboard.command.alerts import Alerts
from dashboard.store import Store
from feeds.redis_server import free_port
from layouts import ids

from ..app.test_wall_browser import make_event, wait_for
from ..auth_util import make_user, sign_in
from ..conftest import Stack

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).parents[1] / "screenshots"
TOWN_A, TOWN_B = "370283001", "370283002"


class Rotation:
    def __init__(self, dash_duo: Any, stack: Stack) -> None:
        self.duo = dash_duo
        self.stack = stack
        self.driver = dash_duo.driver
        self.base = dash_duo.server.url.rstrip("/")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def size(self, width: int, height: int) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def sign_in(self, role: str, name: str, scope: str | None = None) -> None:
        """Sign in through /login without opening the wall (tests/auth_util.py's does): a
        page navigated away from keeps its socket on the relay for a minute or more (the
        browser's back/forward cache keeps the page; bench/RESULTS.md), which would blur
        the count of the rotation's own."""
        user, password = make_user(self.stack.client, role, name, scope=scope)
        self.driver.get(f"{self.base}/login?next=/api/me")
        self.driver.find_element("id", "cc-login-user").send_keys(user)
        self.driver.find_element("id", "cc-login-password").send_keys(password)
        self.driver.find_element("id", "cc-login-submit").click()
        self.wait(lambda: urlsplit(self.driver.current_url).path == "/api/me", 10, "sign-in")

    def open(self, address: str) -> None:
        self.size(1920, 1080)
        self.driver.get(self.base + address)

    def state(self) -> dict[str, Any]:
        return self.js("return window.ccwall && window.ccwall.rotate ?"
                       " window.ccwall.rotate.state() : {}") or {}

    def wait(self, check: Any, timeout: float, what: str) -> Any:
        try:
            return wait_for(check, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; rotation {self.state()}; sockets "
                                 f"{getattr(self, 'last_sockets', None)}; console "
                                 f"{self.duo.get_logs()}") from None

    def text(self, name: str) -> str:
        return self.js(f"var e = document.getElementById('{getattr(ids, name)}');"
                       " return e ? e.textContent : ''")

    def shown(self, page: str, index: int | None = None, timeout: float = 20) -> dict[str, Any]:
        """Until the frame on top shows `page` (drawn: it said it was ready) and running."""
        def check() -> dict[str, Any] | None:
            s = self.state()
            ok = s.get("state") == "running" and s.get("page") == page and \
                not s.get("loading") and (index is None or s.get("index") == index)
            return s if ok else None
        return self.wait(check, timeout, f"the {page} shown")

    def inner(self, script: str) -> Any:
        """`script` run in the frame on top (same origin: its document is ours to read)."""
        return self.js("var f = document.querySelector('.cc-rot-frame:not(.is-next)');"
                       " if (!f) return null; var w = f.contentWindow, d = f.contentDocument;"
                       f" {script}")

    def sockets(self) -> int:
        """Websockets the relay holds open right now (every page of this browser)."""
        found = list(self.stack.relay.fan.clients)
        self.last_sockets = [sorted(c.kinds) if c.kinds is not None else "all" for c in found]
        return len(found)

    def bar_box(self) -> dict[str, float]:
        return self.js(
            "var r = document.getElementById(arguments[0]).getBoundingClientRect();"
            " var f = getComputedStyle(document.getElementById(arguments[1]));"
            " return {right: innerWidth - r.right, bottom: innerHeight - r.bottom,"
            " width: r.width, font: parseFloat(f.fontSize)}", ids.ROT_BAR, ids.ROT_WHAT)

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(SHOTS / name))


@pytest.fixture
def rotation(dash_duo: Any, stack: Stack) -> Rotation:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    return Rotation(dash_duo, stack)


def test_rot101_moves_through_pages_one_socket_each_pause_resume(
        rotation: Rotation, stack: Stack) -> None:
    stack.publish("event", make_event("R1", 3))
    rotation.sign_in("commander", "rot-commander")
    rotation.open("/rotate?p=wall:5,cockpit:5,video:5")
    rotation.shown("wall", 0)
    assert rotation.inner("return w.ccwall.page") == "wall"
    assert rotation.text("ROT_WHAT") == "轮播 1/3 · 指挥大屏"
    assert "秒后切换" in rotation.text("ROT_NEXT")
    box = rotation.bar_box()
    # in the bottom-right corner, large: 1.75rem = 28 px at 1920×1080
    assert box["right"] < 20 and box["bottom"] < 20 and box["font"] >= 28
    rotation.wait(lambda: rotation.inner("return !!d.querySelector('.cc-event-row')"), 10,
                  "the wall's event list")
    rotation.shot("rotate-wall-1920x1080.png")
    seen = []
    for page, index in (("cockpit", 1), ("video", 2), ("wall", 0), ("cockpit", 1)):
        state = rotation.shown(page, index)
        seen.append(state["url"])
        # the page before it left with its socket: this page's and the player's remain
        rotation.wait(lambda: rotation.sockets() <= 2 and rotation.state()["frames"] == 1, 10,
                      "the old page and its socket to go")
    assert seen[0].startswith("/cockpit?lang=zh-CN") and seen[1].startswith("/video?")
    assert rotation.inner("return w.ccwall.page") == "cockpit"
    rotation.shot("rotate-cockpit-1920x1080.png")

    # someone walking by pauses it: it stays put past its interval, then goes on
    rotation.driver.find_element("id", ids.ROT_PAUSE).click()
    rotation.wait(lambda: rotation.state().get("state") == "paused", 5, "paused")
    assert re.fullmatch(r"已暂停 · (10:00|9:[0-5]\d)后自动继续", rotation.text("ROT_NEXT"))
    assert rotation.text("ROT_PAUSE") == "继续"
    rotation.shot("rotate-paused-1920x1080.png")
    time.sleep(6)
    assert rotation.state()["index"] == 1 and rotation.state()["state"] == "paused"
    rotation.driver.find_element("id", ids.ROT_PAUSE).click()
    rotation.shown("video", 2)
    # the same indicator on a 4K wall: everything twice as large
    rotation.size(3840, 2160)
    rotation.wait(lambda: rotation.bar_box()["font"] >= 56, 5, "4K type")
    rotation.shot("rotate-3840x2160.png")
    assert rotation.duo.get_logs() == []


def test_rot102_a_spec_outside_the_scope_is_refused(rotation: Rotation, stack: Stack) -> None:
    rotation.sign_in("leader", "rot-town", scope=TOWN_A)
    rotation.open(f"/rotate?p=wall:5,cockpit@{TOWN_B}:5&lang=en")
    rotation.wait(lambda: rotation.js("return !!document.getElementById('cc-rot-error')"), 10,
                  "the refusal page")
    assert rotation.js("return document.getElementById('cc-rot-error').dataset.code") == \
        "out_of_scope"
    body = rotation.js("return document.body.textContent")
    assert "This area is outside your scope" in body and f"cockpit@{TOWN_B}:5" in body
    rotation.shot("rotate-refused-en-1920x1080.png")
    # the chooser says the same before starting anything
    rotation.open("/rotate?lang=en")
    spec = rotation.wait(lambda: rotation.driver.find_elements("css selector",
                                                               "input[data-rot='spec']"),
                         10, "the form")[0]
    spec.clear()
    spec.send_keys(f"cockpit@{TOWN_B}:10")
    rotation.driver.find_element("css selector", "button[data-rot='start']").click()
    rotation.wait(lambda: "outside your scope" in rotation.text("ROT_FORM_MSG"), 10,
                  "the chooser's refusal")
    assert rotation.js("return location.pathname") == "/rotate"
    assert not rotation.driver.find_elements("css selector", "input[data-rot='name']")
    rotation.shot("rotate-chooser-en-1920x1080.png")
    # their own town's cockpit rotates
    rotation.open(f"/rotate?p=cockpit@{TOWN_A}:5,wall:5&lang=en")
    state = rotation.shown("cockpit", 0)
    assert state["url"] == f"/cockpit?scope={TOWN_A}&lang=en"
    assert rotation.text("ROT_WHAT") == "Rotation 1/2 · Cockpit · 凤台街道"
    # the console has the two refusals (the page, the API) and nothing else
    logs = [e for e in rotation.duo.get_logs() if "403" not in e.get("message", "")]
    assert logs == []


def test_rot103_an_urgent_event_holds_the_wall_until_acknowledged(
        rotation: Rotation, stack: Stack, r: redis.Redis) -> None:
    rotation.sign_in("display", "rot-kiosk")
    rotation.open("/rotate?p=wall:5,video:5&lang=en")
    rotation.shown("video", 1)
    stack.publish("event", make_event("U1", 1, title="化工厂爆炸 <b>U1</b>"))
    stack.wait_seq(1)
    alerts = Alerts(Store(r))
    raised = alerts.raise_once("critical_event", "U1", "U1", "Level I: 化工厂爆炸 <b>U1</b>", 1)
    assert raised is not None
    held = rotation.wait(lambda: (s := rotation.state()).get("state") == "held" and
                         not s.get("loading") and s.get("url", "").startswith("/?event=U1") and s,
                         15, "the wall held on the event")
    assert held["heldOn"] == raised["id"]
    # the wall in the frame opened the event's panel by itself
    rotation.wait(lambda: rotation.inner(
        f"var e = d.getElementById('{ids.DETAIL}'); return e && !e.hidden &&"
        " e.textContent.indexOf('化工厂爆炸 <b>U1</b>') >= 0"), 15, "the event's panel")
    assert rotation.text("ROT_WHAT") == "Urgent · Level I: 化工厂爆炸 <b>U1</b>"
    assert rotation.text("ROT_NEXT") == "Urgent event: held until acknowledged"
    assert not rotation.driver.find_elements("css selector", f"#{ids.ROT_BAR} b")
    assert rotation.js(f"return document.getElementById('{ids.ROT_PAUSE}').disabled")
    rotation.shot("rotate-held-en-1920x1080.png")
    time.sleep(6)  # longer than any slide: still held
    assert rotation.state()["state"] == "held"
    # acknowledged by anyone, the way the wall and the desk do it
    desk = stack.app.server.test_client()
    sign_in(desk, stack.client, "duty_officer", name="rot-duty")
    res = desk.post(f"/api/alerts/{raised['id']}/ack", json={"note": ""})
    assert res.status_code == 200, res.get_data(as_text=True)
    state = rotation.shown("video", 1)  # back where it was
    assert state["heldOn"] is None and state["urgent"] == 0
    rotation.wait(lambda: rotation.sockets() <= 2 and rotation.state()["frames"] == 1, 10,
                  "the held wall and its socket to go")
    assert rotation.duo.get_logs() == []


def test_rot104_saved_in_the_chooser_opened_by_name(rotation: Rotation, stack: Stack) -> None:
    rotation.sign_in("commander", "rot-saver")
    rotation.open("/rotate")
    name = rotation.wait(lambda: rotation.driver.find_elements("css selector",
                                                               "input[data-rot='name']"),
                         10, "the save form")[0]
    spec = rotation.driver.find_element("css selector", "input[data-rot='spec']")
    spec.clear()
    spec.send_keys("wall:5,cockpit@towns:5")
    name.send_keys("全市轮播")
    rotation.driver.find_element("css selector", "button[data-rot='save']").click()
    rotation.wait(lambda: rotation.driver.find_elements(
        "css selector", f"#{ids.ROT_LIST} li[data-name='全市轮播']"), 10, "the saved row")
    assert rotation.text("ROT_FORM_MSG") == "已保存轮播“全市轮播”"
    assert "wall:5,cockpit@towns:5" in rotation.text("ROT_LIST")
    rotation.shot("rotate-chooser-1920x1080.png")
    link = rotation.driver.find_element("css selector", f"#{ids.ROT_LIST} li a")
    assert link.get_attribute("href").endswith("/rotate/" + quote("全市轮播"))
    link.click()
    rotation.shown("wall", 0)
    assert rotation.text("ROT_WHAT") == "轮播 1/18 · 指挥大屏"
    state = rotation.shown("cockpit", 1)
    assert state["url"] == f"/cockpit?scope={TOWN_A}&lang=zh-CN"
    # read while page 2 is still up: on a loaded host its 5 s may be over by the next read
    what = rotation.js("return [document.getElementById(arguments[0]).textContent,"
                       " ccwall.rotate.state().index]", ids.ROT_WHAT)
    assert what[0].startswith(f"轮播 {what[1] + 1}/18 · 驾驶舱 · "), what
    assert what[1] != 1 or what[0] == "轮播 2/18 · 驾驶舱 · 凤台街道", what
    assert rotation.duo.get_logs() == []
