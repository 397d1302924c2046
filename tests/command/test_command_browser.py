"""The command loop on the wall in headless Chromium over the real stack: ingest, relay and
the watch service in threads on the test Valkey, the Dash app with sign-in, the plan library
and the dispatch desk.

Feature codes: cmd001 the whole loop (panel, plans, nearby, dispatch, `cc:dispatch`, field
feedback, verify, evaluate, closed; screenshots), cmd002 markup in feed text shows as text in
the panel, cmd003 a level-I event opening the panel, its alert card and acknowledging it,
cmd004 409s: a unit or the event taken by another desk, cmd005 bounded memory.

Field feedback is published on `cc:feedback` through the real ingest (the simulator's
feedback engine is not on this branch); the watch service turns it into task stages.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from selenium.common.exceptions import NoAlertPresentException

from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines
from dashboard.i18n import t
from dashboard.store import Store
from feeds.redis_server import free_port
from feeds.watch import Watch
from layouts import ids

from ..app.test_wall_browser import CENTRE, Wall, make_event, now_ms
from ..auth_util import browser_sign_in, browser_sign_out
from ..conftest import Stack

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).parents[1] / "screenshots"
ENGAGED = {"busy", "dispatched", "en_route", "on_scene"}


def offset(metres_east: float, metres_north: float) -> tuple[float, float]:
    """A point this far from CENTRE (good to a metre at these distances)."""
    lat = CENTRE[1] + metres_north / 111_320
    lon = CENTRE[0] + metres_east / (111_320 * math.cos(math.radians(CENTRE[1])))
    return round(lon, 6), round(lat, 6)


def publish_units(stack: Stack) -> None:
    """Free units around CENTRE: grid workers and the resource kinds a gas leak calls for."""
    now = now_ms()
    for i in range(6):
        lon, lat = offset(150 + 140 * i, 90 * (i % 3) - 90)
        stack.publish("worker", {"id": f"W-C{i}", "lon": lon, "lat": lat, "ts": now,
                                 "name": f"网格员{i}号", "status": "on_duty"})
    kinds = ["fire_engine", "fire_engine", "rescue_team", "rescue_team", "patrol_car",
             "patrol_car", "ambulance", "police_car"]
    for i, kind in enumerate(kinds):
        lon, lat = offset(-300 - 220 * i, 180 * (i % 4) - 270)
        stack.publish("resource", {"id": f"R-C{i}", "kind": kind, "lon": lon, "lat": lat,
                                   "ts": now, "name": f"{kind}-{i}", "status": "available"})


@pytest.fixture
def watch(stack: Stack) -> Iterator[Watch]:
    """The watch service (feedback → task lifecycle, alerts) as a thread, as in production
    it is `python -m feeds.watch`."""
    service = Watch(stack.settings, stack.settings.redis_url)
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True, name="watch")
    thread.start()
    yield service
    stop.set()
    thread.join(5)


class Panel(Wall):
    """The wall, plus probes of the event panel."""

    def sign_in(self, role: str) -> None:
        browser_sign_out(self.duo)
        browser_sign_in(self.duo, self.stack.client, role)

    def select(self, eid: str) -> None:
        # the city outline first: fitting the map to it would cut the pan to the event short
        self.wait(lambda: self.js("return document.querySelectorAll('.cc-label-town').length")
                  >= 17, 5, "the town names")
        self.wait(lambda: self.row(eid), 5, f"the row of {eid}")
        self.driver.find_element("css selector", f'.cc-event-row[data-id="{eid}"]').click()
        self.wait(lambda: self.js(f"return !document.getElementById('{ids.DETAIL}').hidden"),
                  3, "the event panel")

    def text(self, element_id: str) -> str:
        return self.js("const e = document.getElementById(arguments[0]);"
                       "return e ? e.textContent : null", element_id)

    def rows(self, list_id: str) -> list[dict[str, Any]]:
        return self.js("""
            return Array.from(document.querySelectorAll(`#${arguments[0]} > li[data-key]`))
              .map(li => ({key: li.dataset.key, status: li.dataset.status || '',
                           stage: li.dataset.stage || '', text: li.textContent,
                           verdict: (li.querySelector('.cc-r135') || {}).dataset?.verdict,
                           engaged: li.classList.contains('is-engaged')}));
        """, list_id)

    def visible(self, element_id: str) -> bool:
        return bool(self.js("const e = document.getElementById(arguments[0]);"
                            "return !!e && !e.hidden && e.offsetParent !== null", element_id))

    def click(self, element_id: str) -> None:
        self.driver.find_element("id", element_id).click()

    def stage(self) -> str | None:
        return self.js(f"return document.getElementById('{ids.CMD_STAGES}').dataset.stage "
                       "|| null")

    def shot(self, name: str) -> None:
        """A screenshot at the page's viewport, after the map's pan has settled."""
        time.sleep(1.0)
        s = self.scroll_sizes()
        size = (s["iw"], s["ih"])
        assert s["dw"] <= s["iw"] and s["dh"] <= s["ih"], s
        SHOTS.mkdir(exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / f"{name}-{size[0]}x{size[1]}.png"))


@pytest.fixture
def panel(dash_duo: Any, stack: Stack) -> Panel:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    return Panel(dash_duo, stack)


def open_as(panel: Panel, role: str, query: str = "") -> None:
    panel.sign_in(role)
    panel.open(query)
    panel.wait(lambda: panel.js("return window.ccwall.command.role") == role, 5,
               f"the role {role} from /api/me")


def dispatch_listener(stack: Stack) -> tuple[list[dict[str, Any]], Any]:
    """Subscribe to `cc:dispatch` before anything is sent; messages land in the list."""
    sub = redis.Redis.from_url(stack.settings.redis_url, decode_responses=True).pubsub()
    sub.subscribe(f"{stack.settings.prefix}dispatch")
    sub.get_message(timeout=2)  # the subscribe confirmation
    got: list[dict[str, Any]] = []

    def poll() -> bool:
        msg = sub.get_message(timeout=0.05)
        if msg and msg["type"] == "message":
            got.append(json.loads(msg["data"]))
        return bool(got)

    return got, (sub, poll)


def test_cmd001_click_dispatch_feedback_verify_evaluate(panel: Panel, stack: Stack,
                                                         watch: Watch) -> None:
    publish_units(stack)
    stack.publish("event", make_event("EV-GAS", 3, type="gas_leak", title="人民路燃气泄漏",
                                      at=offset(0, 0)))
    open_as(panel, "commander")
    panel.wait(lambda: panel.js("return window.ccwall.state.resources") >= 8, 5, "the units")
    panel.select("EV-GAS")

    # the plan with its reasons and steps, and the nearest units with distance, ETA, 1-3-5
    panel.wait(lambda: panel.js(f"return document.querySelectorAll('#{ids.CMD_PLANS} "
                                "li[data-plan]').length") >= 1, 5, "the matched plans")
    best = panel.js(f"return document.querySelector('#{ids.CMD_PLANS} li[data-plan]')"
                    ".dataset.plan")
    assert best.startswith("P-GAS")
    assert panel.js(f"return document.querySelectorAll('#{ids.CMD_STEPS} li').length") >= 2
    nearby = panel.rows(ids.CMD_NEARBY)
    assert len(nearby) >= 6
    assert {r["key"].split(":")[0] for r in nearby} == {"worker", "resource"}
    assert all(r["verdict"] in ("ok", "over", "none") for r in nearby)
    assert any(r["verdict"] == "ok" for r in nearby)  # grid workers a few hundred metres off
    assert "米" in nearby[0]["text"]
    # the ring and the lines on the map (drawn in the next animation frame)
    panel.wait(lambda: panel.js("return [document.querySelectorAll('path.cc-cmd-ring').length,"
                                " document.querySelectorAll('path.cc-cmd-link').length]")
               == [1, len(nearby)], 2, "the ring and a line to each unit listed")
    panel.shot("command-panel")
    for size in ((3840, 2160), (1920, 1080)):  # a 4K wall, then back for the rest
        panel.open(size=size)
        panel.select("EV-GAS")
        panel.wait(lambda: panel.rows(ids.CMD_NEARBY), 5, "the nearby units")
        if size[0] == 3840:
            rem = panel.js("return parseFloat(getComputedStyle(document.documentElement)"
                           ".fontSize)")
            assert rem == 32
            panel.shot("command-panel")

    # the proposal: the plan's calls filled with the recommended units
    got, (sub, poll) = dispatch_listener(stack)
    panel.click(ids.CMD_DISPATCH)
    panel.wait(lambda: panel.visible(ids.CMD_PROPOSAL), 5, "the proposal")
    picked = panel.js(f"""return Array.from(document.querySelectorAll(
        '#{ids.CMD_PROPOSAL_UNITS} li.cc-cmd-pick input:checked')).map(b => b.dataset.key)""")
    assert len(picked) >= 3
    key = panel.js("return window.ccwall.command.proposalKey")
    assert panel.js(f"return document.getElementById('{ids.CMD_CONFIRM}').disabled") is False
    panel.shot("command-proposal")

    # swap one recommended worker for another candidate: a reason becomes required
    alt = panel.js(f"""return Array.from(document.querySelectorAll(
        '#{ids.CMD_PROPOSAL_UNITS} li.cc-cmd-pick:not(.is-rec)'))
        .map(li => li.dataset.key).find(k => k.startsWith('worker:'))""")
    rec = next(k for k in picked if k.startswith("worker:"))
    for unit_key in (rec, alt):
        panel.driver.find_element("css selector",
                                  f'#{ids.CMD_PROPOSAL_UNITS} li[data-key="{unit_key}"]').click()
    assert panel.js(f"return document.getElementById('{ids.CMD_CONFIRM}').disabled") is True
    assert panel.text(ids.CMD_PROPOSAL_HINT)
    panel.driver.find_element("id", ids.CMD_OVERRIDE).send_keys("网格员熟悉该小区")
    assert panel.js(f"return document.getElementById('{ids.CMD_CONFIRM}').disabled") is False
    sent = sorted([k for k in picked if k != rec] + [alt])

    # confirm: a double click sends one request with the proposal's key
    panel.js(f"const b = document.getElementById('{ids.CMD_CONFIRM}'); b.click(); b.click();")
    message = panel.wait(lambda: poll() and got[0], 5, "cc:dispatch")
    sub.close()
    assert message["event_id"] == "EV-GAS"
    assert message["plan_id"] == best
    assert sorted(f"{a['kind']}:{a['id']}" for a in message["assignees"]) == sent
    assert all(isinstance(a["eta_s"], int) for a in message["assignees"])
    task_id = message["task_id"]
    stored = json.loads(stack.client.hget(f"{stack.settings.prefix}state:task", task_id))
    assert stored["override"]["reason"] == "网格员熟悉该小区"
    assert stack.client.get(f"{stack.settings.prefix}idem:{key}") == task_id
    time.sleep(0.3)
    assert len(got) == 1  # the second click sent nothing

    # the units turn dispatched on the wall from their frames, and the loop shows the task
    def engaged() -> bool:
        rows = {r["key"]: r for r in panel.rows(ids.CMD_ASSIGNEES)}
        return sorted(rows) == sent and all(r["status"] in ENGAGED for r in rows.values())

    panel.wait(engaged, 5, "the assignees shown engaged")
    for unit_key in sent:
        kind, uid = unit_key.split(":")
        status = panel.js("return window.ccwall.store.get(arguments[0], arguments[1]).status",
                          kind, uid)
        assert status == ("busy" if kind == "worker" else "dispatched")
    # the units sent head the nearby list, tagged with their live status (the free ones follow)
    def listed() -> bool:
        rows = panel.rows(ids.CMD_NEARBY)
        return sorted(r["key"] for r in rows[:len(sent)]) == sent and \
            all(r["engaged"] for r in rows[:len(sent)]) and \
            not any(r["engaged"] for r in rows[len(sent):])

    panel.wait(listed, 5, "the units sent listed as engaged")
    time.sleep(2)  # the panel re-reads the event after its status changed: still listed
    assert listed()
    assert panel.stage() == "dispatched"
    assert task_id in panel.text(ids.CMD_TASK)
    assert not panel.visible(ids.CMD_DISPATCH)  # one task per event
    panel.wait(lambda: panel.js("return window.ccwall.command.dispatchTimes().length") == 1,
               2, "the click-to-dispatched probe")

    # field feedback through ingest: accepted, arrived, handled by every unit
    for stage in ("accepted", "arrived", "handled"):
        for unit_key in sent:
            stack.publish("feedback", {"task_id": task_id, "event_id": "EV-GAS",
                                       "actor_id": unit_key.split(":")[1], "stage": stage,
                                       "ts": now_ms()})
        panel.wait(lambda stage=stage: panel.stage() == stage, 8, f"the stage {stage}")
    # a commander counts as a duty officer: the verify buttons show for them too
    panel.wait(lambda: panel.visible(ids.CMD_VERIFY_BOX), 3, "verify for the commander")
    panel.shot("command-handled")

    # a duty officer verifies and evaluates; the event shows closed
    open_as(panel, "duty_officer")
    panel.select("EV-GAS")
    panel.wait(lambda: panel.visible(ids.CMD_VERIFY_BOX), 5, "the verify buttons")
    assert not panel.visible(ids.CMD_DISPATCH)
    panel.driver.find_element("id", ids.CMD_VERIFY_NOTE).send_keys("现场已处置完毕")
    panel.driver.find_element("css selector",
                              f'#{ids.CMD_VERIFY_BOX} [data-cmd="verify"][data-passed="1"]').click()
    panel.wait(lambda: panel.visible(ids.CMD_EVAL_BOX), 5, "the evaluate buttons")
    assert not panel.visible(ids.CMD_VERIFY_BOX)
    panel.driver.find_element("css selector",
                              f'#{ids.CMD_EVAL_BOX} [data-cmd="evaluate"][data-score="5"]').click()
    panel.wait(lambda: panel.stage() == "closed", 5, "the task closed")
    closed = panel.js("return window.ccwall.store.get('event', 'EV-GAS').status")
    assert closed == "closed"
    panel.wait(lambda: panel.text(ids.detail_field("status")) == t("evst.closed"), 3,
               "the event shown closed")
    assert not panel.visible(ids.CMD_EVAL_BOX)
    task = json.loads(stack.client.hget(f"{stack.settings.prefix}state:task", task_id))
    assert task["verify"]["passed"] is True and task["verify"]["note"] == "现场已处置完毕"
    assert task["evaluation"]["score"] == 5
    assert panel.duo.get_logs() == []


def test_cmd002_markup_in_feed_text_is_shown_as_text(panel: Panel, stack: Stack) -> None:
    evil = "<img src=x onerror=alert(1)>"
    publish_units(stack)
    stack.publish("event", make_event("EV-XSS", 3, type="dispute", title=evil,
                                      reporter="<b>x</b>", address=evil + "<script>alert(2)"
                                      "</script>", at=offset(0, 0)))
    stack.publish("worker", {"id": "W-EVIL", "lon": offset(60, 0)[0], "lat": offset(60, 0)[1],
                             "ts": now_ms(), "name": evil, "status": "on_duty"})
    open_as(panel, "commander")
    panel.select("EV-XSS")
    assert panel.text(ids.detail_field("title")) == evil
    panel.wait(lambda: any(evil in r["text"] for r in panel.rows(ids.CMD_NEARBY)), 5,
               "the worker named with markup in the nearby list")
    panel.click(ids.CMD_DISPATCH)
    panel.wait(lambda: panel.visible(ids.CMD_PROPOSAL), 5, "the proposal")
    assert panel.js(f"return document.querySelectorAll('#{ids.DETAIL} :is(img, script, b)')"
                    ".length") == 0
    assert panel.js("return document.querySelectorAll('img').length") == 0
    with pytest.raises(NoAlertPresentException):
        panel.driver.switch_to.alert.text  # noqa: B018
    # lines to the proposed units while the proposal is open; all gone with the panel
    panel.wait(lambda: panel.js("return document.querySelectorAll('path.cc-cmd-link').length")
               >= 1, 2, "lines to the proposed units")
    panel.click(ids.CMD_CANCEL)
    assert not panel.visible(ids.CMD_PROPOSAL) and panel.visible(ids.CMD_DISPATCH)
    panel.click(ids.DETAIL_CLOSE)
    panel.wait(lambda: not panel.visible(ids.DETAIL), 3, "the panel to close")
    panel.wait(lambda: panel.js("return document.querySelectorAll('path.cc-cmd-ring, "
                                "path.cc-cmd-link').length") == 0, 2, "the overlay cleared")
    assert panel.duo.get_logs() == []


def test_cmd003_urgent_event_opens_the_panel_and_raises_an_alert(panel: Panel, stack: Stack,
                                                                  watch: Watch) -> None:
    publish_units(stack)
    stack.publish("event", make_event("EV-LOW", 4, type="garbage", at=offset(500, 500)))
    open_as(panel, "commander", "?lang=en")
    panel.wait(lambda: panel.js("return document.querySelectorAll('.cc-label-town').length")
               >= 17, 5, "the town names")
    panel.wait(lambda: panel.row("EV-LOW"), 5, "the first row")

    # nobody is using the panel: a level-I event opens it at once, with a flash
    stack.publish("event", make_event("EV-I1", 1, type="fire", title="Warehouse fire",
                                      at=offset(0, 0)))
    panel.wait(lambda: panel.js("return window.ccwall.command.selected()") == "EV-I1", 5,
               "the panel to open on the level-I event")
    assert panel.visible(ids.DETAIL)
    assert panel.js("return window.ccwall.command.flashes") >= 1
    assert panel.driver.find_element("id", ids.CMD_DISPATCH).text == "Dispatch"
    # the watch service raised a critical-event alert: a card in the strip
    card = f"#{ids.ALERTS} .cc-alert[data-event='EV-I1']"
    panel.wait(lambda: panel.js(f"return !!document.querySelector(\"{card}\")"), 8,
               "the alert card")
    assert panel.js(f"return document.querySelector(\"{card}\").dataset.kind") == \
        "critical_event"
    assert panel.js(f"return document.querySelector(\"{card} .cc-alert-kind\").textContent") \
        == "Critical event"

    # acknowledging it (POST /api/alerts/<id>/ack) takes the card off every wall
    alert_id = panel.js(f"return document.querySelector(\"{card}\").dataset.id")
    panel.driver.find_element("css selector", f"{card} [data-cmd='ack']").click()
    panel.wait(lambda: not panel.js(f"return !!document.querySelector(\"{card}\")"), 5,
               "the card to go")
    acked = json.loads(stack.client.hget(f"{stack.settings.prefix}state:alert", alert_id))
    assert acked["acked_by"] == "t-commander"

    # the commander turns to another event: a second level-I one waits instead of taking over
    panel.select("EV-LOW")
    stack.publish("event", make_event("EV-I2", 1, type="fire", at=offset(-400, 300)))
    panel.wait(lambda: panel.visible(ids.CMD_PENDING), 5, "the waiting-event chip")
    assert panel.js("return window.ccwall.command.selected()") == "EV-LOW"
    assert panel.js("return window.ccwall.command.pending") == ["EV-I2"]
    panel.click(ids.CMD_PENDING)
    panel.wait(lambda: panel.js("return window.ccwall.command.selected()") == "EV-I2", 3,
               "the waiting event opened from the chip")
    assert not panel.visible(ids.CMD_PENDING)
    assert panel.duo.get_logs() == []


def test_cmd004_units_and_events_taken_by_another_desk_are_said_plainly(panel: Panel,
                                                                        stack: Stack) -> None:
    publish_units(stack)
    stack.publish("event", make_event("EV-RACE", 3, type="gas_leak", at=offset(0, 0)))
    stack.publish("event", make_event("EV-NEXT", 4, type="dispute", at=offset(100, 100)))
    open_as(panel, "commander")
    panel.select("EV-RACE")
    panel.wait(lambda: panel.visible(ids.CMD_DISPATCH), 5, "the Dispatch button")
    panel.click(ids.CMD_DISPATCH)
    panel.wait(lambda: panel.visible(ids.CMD_PROPOSAL), 5, "the proposal")
    key = panel.js("return window.ccwall.command.proposalKey")
    picked = panel.js(f"""return Array.from(document.querySelectorAll(
        '#{ids.CMD_PROPOSAL_UNITS} li.cc-cmd-pick input:checked')).map(b => b.dataset.key)""")
    worker = next(k for k in picked if k.startswith("worker:")).split(":")[1]
    # another commander's desk sends one of these units to another event meanwhile
    desk = Desk(Store(stack.client, stack.settings.prefix), PlanLibrary.load(),
                Deadlines.load(), stack.settings)
    desk.dispatch("EV-NEXT", by="li-commander", key="other-desk-1",
                  assignees=[{"id": worker, "kind": "worker"}], plan_id=None,
                  override_reason="就近")
    panel.click(ids.CMD_CONFIRM)
    name = panel.js("return window.ccwall.store.get('worker', arguments[0]).name", worker)
    panel.wait(lambda: name in (panel.text(ids.CMD_MSG) or ""), 5, "the unit-engaged message")
    assert panel.text(ids.CMD_MSG) == t("cmd.err_unit_busy", unit=name)
    # the unit's own name is the feed's words, marked so (README, "Languages")
    assert panel.js(f"return Array.from(document.querySelectorAll('#{ids.CMD_MSG} [data-feed]'))"
                    ".map(e => e.textContent)") == [name]
    assert panel.visible(ids.CMD_PROPOSAL)  # swap the unit and try again
    assert panel.js("return window.ccwall.command.proposalKey") != key
    # and then that desk dispatches this very event too
    task, _ = desk.dispatch("EV-RACE", by="li-commander", key="other-desk-2",
                            assignees=None, plan_id=None)
    panel.click(ids.CMD_CONFIRM)
    panel.wait(lambda: task["id"] in (panel.text(ids.CMD_MSG) or ""), 5, "the 409 message")
    assert panel.text(ids.CMD_MSG) == t("cmd.err_has_task", by="li-commander", task=task["id"])
    assert panel.js(f"return document.getElementById('{ids.CMD_MSG}').dataset.level") == "error"
    assert not panel.visible(ids.CMD_PROPOSAL)
    # the other desk's task shows in the loop, from its frame
    panel.wait(lambda: task["id"] in (panel.text(ids.CMD_TASK) or ""), 5, "the task shown")
    logs = panel.duo.get_logs()
    assert len(logs) == 2 and all("/dispatch" in e["message"] and "409" in e["message"]
                                  for e in logs), logs  # only the two refused POSTs


def test_cmd005_memory_stays_bounded(panel: Panel, stack: Stack) -> None:
    """5,000 task frames and 1,000 alert frames: the browser's maps and cards are capped."""
    open_as(panel, "display")
    result = panel.js("""
        const cc = window.ccwall, now = Date.now();
        let seq = cc.lastSeq;
        for (let i = 0; i < 5000; i++) {
          cc.applyFrame({type: 'delta', seq: ++seq, kind: 'task', op: 'upsert', data: {
            id: 'T' + i, event_id: 'E' + i, stage: i % 2 ? 'closed' : 'dispatched', by: 'x',
            ts: now, assignees: [], history: []}});
        }
        for (let i = 0; i < 1000; i++) {
          cc.applyFrame({type: 'delta', seq: ++seq, kind: 'alert', op: 'upsert', data: {
            id: 'A' + i, kind: 'sla_yellow', subject_id: 'T' + i, event_id: 'E' + i,
            ts: now - i, message: 'm' + i, severity: 4, acked_by: null}});
        }
        return {tasks: cc.command.taskCount, alerts: cc.command.alertCount,
                limits: cc.cfg.command};
    """)
    assert result["tasks"] <= result["limits"]["tasksMax"]
    assert result["alerts"] <= result["limits"]["alertsMax"]
    panel.wait(lambda: panel.js(f"return document.querySelectorAll('#{ids.ALERTS} .cc-alert')"
                                ".length") == result["limits"]["alertRows"], 3, "the cards")
    assert panel.text(ids.ALERT_COUNT)
    # a read-only wall gets no acknowledge buttons
    ack = f"#{ids.ALERTS} [data-cmd=ack]:not([hidden])"
    assert not panel.js(f"return !!document.querySelector('{ack}')")
    assert panel.duo.get_logs() == []
