"""The duty desk /duty in headless Chromium over the real stack.

Feature codes: duty101 the desk renders at 1920×1080 with no scrollbars and no console
errors, asks for a click before it may play sound, plays the alarm of a new level-I alarm
until it is acknowledged, and refuses to silence without a reason; duty102 a leader gets
the page's refusal.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard.access.audit import Audit
from dashboard.command.alerts import Alerts
from dashboard.store import Store
from feeds.redis_server import free_port
from layouts import ids

from ..app.test_wall_browser import Wall
from ..auth_util import browser_sign_in
from ..conftest import Stack

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).parents[1] / "screenshots"


class Desk(Wall):
    def open_desk(self, size: tuple[int, int] = (1920, 1080)) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        self.driver.get(self.duo.server.url.rstrip("/") + "/duty")

    def attr(self, name: str) -> str | None:
        return self.js(f"var e = document.getElementById('{ids.DUTY_ROOT}');"
                       f" return e && e.getAttribute('{name}')")

    def beeps(self) -> int:
        return int(self.attr("data-beeps") or 0)

    def state(self) -> dict[str, Any]:
        return self.js("return window.ccwall.duty ? window.ccwall.duty.state() : null") or {}

    def row(self, alert_id: str) -> Any:
        found = self.driver.find_elements(
            "css selector", f'#{ids.DUTY_QUEUE} li[data-id="{alert_id}"]')
        return found[0] if found else None

    def row_text(self, alert_id: str) -> str:
        """In one call: a row is replaced when its alert changes."""
        return self.js(f"var e = document.querySelector('#{ids.DUTY_QUEUE} li[data-id=\"'"
                       " + arguments[0] + '\"]'); return e ? e.textContent : ''", alert_id)

    def no_scrollbars(self) -> bool:
        return self.js("""var d = document.documentElement;
            return d.scrollHeight <= innerHeight && d.scrollWidth <= innerWidth""")


@pytest.fixture
def desk(dash_duo: Any, stack: Stack) -> Desk:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    return Desk(dash_duo, stack)


def test_duty101_alarm_plays_until_acknowledged_silence_needs_a_reason(
        desk: Desk, stack: Stack, r: redis.Redis) -> None:
    alerts = Alerts(Store(r))
    older = alerts.raise_once("sla_red", "E9", "E9", "【占道经营】派遣超时", 3, cause="dispatch")
    assert older is not None
    browser_sign_in(desk.duo, stack.client, "duty_officer", name="zhiban-t")
    desk.open_desk()
    desk.wait(lambda: desk.state().get("queue") == [older["id"]], 10, "the queue")
    desk.wait(lambda: desk.js("return window.ccwall.connected"), 10, "the websocket")
    # the browser holds audio back until a gesture: the banner asks for one
    assert desk.attr("data-audio") == "suspended"
    banner = desk.driver.find_element("id", ids.DUTY_SOUND)
    assert banner.is_displayed() and banner.text == "点击启用声音"
    banner.click()
    desk.wait(lambda: desk.attr("data-audio") == "running", 10, "sound enabled")
    assert not banner.is_displayed()
    desk.wait(lambda: desk.attr("data-sounding") == "1" and desk.beeps() >= 1, 10,
              "the red card's chime")
    assert desk.no_scrollbars()

    # a new level-I alarm arrives over the websocket: on top, and the siren plays
    fresh = alerts.raise_once("critical_event", "E1", "E1", "I级事件：<b>化工厂爆炸</b>", 1)
    assert fresh is not None
    desk.wait(lambda: desk.state().get("queue") == [fresh["id"], older["id"]], 10,
              "the new alarm on top")
    row = desk.row(fresh["id"])
    assert fresh["message"] in desk.row_text(fresh["id"])
    assert not row.find_elements("css selector", "b")  # feed text is text
    start = desk.beeps()
    desk.wait(lambda: desk.beeps() >= start + 2, 10, "the siren repeating")
    # a note on the older one, through the dialog
    desk.row(older["id"]).find_element("css selector", "button[data-cmd='note']").click()
    desk.driver.find_element("css selector", ".cc-duty-note-text").send_keys("已通知城管中队")
    desk.driver.find_element("css selector", ".cc-duty-note-save").click()
    desk.wait(lambda: "已通知城管中队" in desk.row_text(older["id"]), 10, "the note")
    assert [n["text"] for n in alerts.get(older["id"])["notes"]] == ["已通知城管中队"]  # type: ignore[index]
    desk.driver.save_screenshot(str(SHOTS / "duty-1920x1080.png"))

    # acknowledge both: the desk falls quiet and stays quiet
    for alert in (fresh, older):
        desk.row(alert["id"]).find_element("css selector", "button[data-cmd='ack']").click()
        desk.wait(lambda a=alert: desk.row(a["id"]) is None, 10, "the row to go")
    desk.wait(lambda: desk.attr("data-sounding") == "0", 10, "silence after the ack")
    quiet = desk.beeps()
    time.sleep(2.5)  # longer than the siren's period: no play may follow
    assert desk.beeps() == quiet
    assert alerts.get(fresh["id"])["acked_by"] == "zhiban-t"  # type: ignore[index]
    recent = desk.js(f"return Array.from(document.querySelectorAll('#{ids.DUTY_RECENT} li'))"
                     ".map(e => e.getAttribute('data-id'))")
    assert recent[:2] == [older["id"], fresh["id"]]

    # silencing needs a reason
    sos = alerts.raise_once("sos", "W1", None, "李强发出SOS求助", 1, cause="1")
    assert sos is not None
    desk.wait(lambda: desk.attr("data-sounding") == "1", 10, "the SOS sounding")
    desk.driver.find_element("css selector", ".cc-duty-silence-btn").click()
    desk.wait(lambda: desk.js(f"return document.getElementById('{ids.DUTY_MSG}').textContent")
              == "静音必须填写原因", 5, "the refusal")
    reason = desk.driver.find_element("css selector", ".cc-duty-reason")
    assert reason.get_attribute("aria-invalid") == "true"
    assert desk.attr("data-sounding") == "1" and r.get("cc:duty:silence") is None
    reason.send_keys("已电话联系本人，正在核实")
    desk.driver.find_element("css selector", ".cc-duty-silence-btn").click()
    desk.wait(lambda: desk.attr("data-sounding") == "0", 10, "silenced")
    state = desk.js(f"return document.getElementById('{ids.DUTY_STATE}').textContent")
    assert "已电话联系本人，正在核实" in state
    silenced = [e for e in Audit(r, "cc:").entries(50) if e["action"] == "duty.silence"]
    assert [(e["user"], e["outcome"]) for e in silenced] == [("zhiban-t", "success")]
    assert silenced[0]["detail"]["reason"] == "已电话联系本人，正在核实"
    # a new alarm sounds through the silence; handed to a commander, it stops
    crit = alerts.raise_once("critical_event", "E2", "E2", "II级事件：燃气泄漏", 2)
    assert crit is not None
    desk.wait(lambda: desk.state().get("sounding") == [crit["id"]], 10, "the new alarm")
    desk.row(crit["id"]).find_element("css selector", "button[data-cmd='handoff']").click()
    desk.wait(lambda: desk.attr("data-sounding") == "0", 10, "quiet after the hand-over")
    desk.wait(lambda: desk.js(
        f"return Array.from(document.querySelectorAll('#{ids.DUTY_HANDED} li'))"
        ".map(e => e.getAttribute('data-id'))") == [crit["id"]], 10, "the hand-over listed")
    stored = alerts.get(crit["id"]) or {}
    assert stored["handed_by"] == "zhiban-t" and stored["acked_by"] is None
    for size in ((1920, 1080), (3840, 2160)):
        desk.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        desk.wait(lambda w=size[0]: desk.js("return innerWidth") == w, 5, "the new size")
        assert desk.no_scrollbars()
    assert desk.duo.get_logs() == []


def test_duty102_a_leader_is_refused(desk: Desk, stack: Stack) -> None:
    browser_sign_in(desk.duo, stack.client, "leader")
    desk.open_desk()
    desk.wait(lambda: desk.driver.find_elements("css selector", ".cc-duty-forbidden"), 10,
              "the refusal")
    assert not desk.driver.find_elements("id", ids.DUTY_QUEUE)
    assert desk.duo.get_logs() == []


def test_duty103_a_commander_closes_a_handed_alarm(desk: Desk, stack: Stack,
                                                   r: redis.Redis) -> None:
    from dashboard.duty.desk import Duty

    alerts = Alerts(Store(r))
    alarm = alerts.raise_once("critical_event", "E1", "E1", "I级事件：化工厂爆炸", 1)
    assert alarm is not None
    Duty(alerts.store, alerts).handoff(alarm["id"], by="zhiban", to="zhihui-t")
    browser_sign_in(desk.duo, stack.client, "commander", name="zhihui-t")
    desk.open_desk()
    handed = f'#{ids.DUTY_HANDED} li[data-id="{alarm["id"]}"]'
    desk.wait(lambda: desk.driver.find_elements("css selector", handed), 10, "the handed row")
    assert desk.attr("data-sounding") == "0"  # handed over: not the desk's alarm any more
    assert "已转交zhihui-t" in desk.js(f"return document.querySelector('{handed}').textContent")
    desk.driver.find_element("css selector", f"{handed} button[data-cmd='ack']").click()
    desk.wait(lambda: not desk.driver.find_elements("css selector", handed), 10, "closed")
    assert (alerts.get(alarm["id"]) or {})["acked_by"] == "zhihui-t"
    assert desk.duo.get_logs() == []
