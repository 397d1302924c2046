"""The command loop in headless Chromium with the simulator as the field: a commander
dispatches one of the simulator's events from the wall, the simulated units answer on
`cc:feedback` (accepted, arrived, handled) through the real ingest and watch service, and a
duty officer verifies and evaluates it until the event shows closed.

Feature code: loop001. The simulator runs in a thread at 50x with its autopilot off, so
every dispatch in this test is the browser's.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dashboard.city import load_city
from dashboard.i18n import t
from feeds.redis_server import free_port
from feeds.sim import engine, field
from feeds.sim.engine import Simulator
from feeds.sim.world import distance_m
from layouts import ids

from ..app.test_wall_browser import wait_for
from ..auth_util import browser_sign_in, browser_sign_out
from ..conftest import Stack, start_stack
from .test_command_browser import ENGAGED, Panel, dispatch_listener, open_as

pytestmark = pytest.mark.browser

CITY = load_city("pingdu")
NEAR_M = 300  # a free grid worker this close walks there in a few simulated minutes
# One event every 300 simulated seconds (6 s of wall time at 50x) instead of every 4: the
# wall's list does not scroll (a big screen) and shows about 11 rows, which the default rate
# turns over in one second; the duty officer, on a fresh page some 25 s after the dispatch,
# must still see the event's row to click it.
QUIET_GAP_S = 300.0
TOP_ROWS = 3  # pick among the newest rows, so the event is still on screen for the officer


@pytest.fixture
def loop_stack(redis_url: str) -> Iterator[Stack]:
    """Ingest, relay and the watch service (feedback → task stages) in threads."""
    live, stop, threads = start_stack(redis_url, watch=True)
    yield live
    stop.set()
    for thread in threads:
        thread.join(5)
    live.client.close()


@pytest.fixture
def sim(loop_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """The simulator at 50x on the test's Valkey, autopilot off; every task ends handled (no
    random rejection or call for support) and the city is quiet (see QUIET_GAP_S)."""
    monkeypatch.setattr(field, "REJECT_SHARE", 0.0)
    monkeypatch.setattr(field, "SUPPORT_SHARE", 0.0)
    monkeypatch.setattr(engine, "MEAN_EVENT_GAP_S", QUIET_GAP_S)
    settings = dataclasses.replace(loop_stack.settings, sim_autopilot_s=0.0)
    simulator = Simulator(CITY, seed=11, rate=50.0, workers=150, cameras=30, settings=settings)
    stop = threading.Event()
    runner = threading.Thread(target=simulator.run,
                              args=(loop_stack.settings.redis_url, stop, 300.0, 900.0),
                              daemon=True, name="sim")
    runner.start()
    yield simulator
    stop.set()
    runner.join(5)


def pick_event(panel: Panel, stack: Stack, sim: Simulator) -> tuple[str, str] | None:
    """A still-reported simulator event among the wall's newest rows with a free, on-duty
    simulated grid worker near it (free in the sim world and on the wall alike)."""
    rows = panel.js("return Array.from(document.querySelectorAll('.cc-event-row'))"
                    ".map(li => li.dataset.id)") or []
    now = sim.s
    for eid in rows[:TOP_ROWS]:
        inc = sim.desk.recent.get(eid)
        stored = json.loads(stack.client.hget(f"{stack.settings.prefix}state:event", eid)
                            or "{}")
        if inc is None or stored.get("status") != "reported":
            continue
        for w in list(sim.world.workers):
            seen = json.loads(stack.client.hget(f"{stack.settings.prefix}state:worker", w.id)
                              or "{}")
            if w.busy_with is None and w.task is None and w.status == "on_duty" and \
                    seen.get("status") == "on_duty" and \
                    distance_m(w.mover.at(now), inc.point) < NEAR_M:
                return eid, w.id
    return None


def select(panel: Panel, eid: str) -> bool:
    """Click the event's row; False when the list re-rendered under the click (a new event
    moved the rows) and another row, or none, was hit."""
    rows = panel.driver.find_elements("css selector", f'.cc-event-row[data-id="{eid}"]')
    if not rows:
        return False
    rows[0].click()
    try:
        wait_for(lambda: panel.js("return window.ccwall.command.selected()") == eid, 3,
                 f"the panel on {eid}")
    except AssertionError:
        return False
    panel.wait(lambda: panel.visible(ids.DETAIL), 3, "the event panel")
    return True


def test_loop001_simulator_field_closes_the_loop(dash_duo: Any, loop_stack: Stack,
                                                  sim: Simulator) -> None:
    stack = loop_stack
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    panel = Panel(dash_duo, stack)
    open_as(panel, "commander")
    panel.wait(lambda: panel.js("return document.querySelectorAll('.cc-label-town').length")
               >= 17, 5, "the town names")
    panel.wait(lambda: panel.js("return window.ccwall.state.workers") >= 100, 20,
               "the simulated workers")

    # one of the simulator's events with a free simulated worker near it, clicked on the wall
    eid = ""
    for _ in range(3):  # a row moved under the click by a new arrival: pick again
        eid, _worker = panel.wait(lambda: pick_event(panel, stack, sim), 60,
                                  "a simulated event with a free worker near it")
        if select(panel, eid):
            break
    assert panel.js("return window.ccwall.command.selected()") == eid
    inc = sim.desk.recent[eid]
    # Ten minutes on scene (12 s here), fixed rather than the type's random 8-20: the units
    # must stay engaged long enough for the wall to show them dispatched. With sim014's one
    # minute, a worker who reported the event from the spot was handled and free again
    # some 5 s after Confirm, and the check for the engaged units (shown within 0.1 s when
    # the machine is idle) now and then lost that race on the shared 2-core box.
    inc.handle_s = 600.0

    # the matched plans with steps, and the nearest units (simulated ones) with 1-3-5 verdicts
    panel.wait(lambda: panel.js(f"return document.querySelectorAll('#{ids.CMD_PLANS} "
                                "li[data-plan]').length") >= 1, 5, "the matched plans")
    assert panel.js(f"return document.querySelectorAll('#{ids.CMD_STEPS} li').length") >= 1
    nearby = panel.wait(lambda: panel.rows(ids.CMD_NEARBY), 5, "the nearby units")
    assert any(r["key"].startswith("worker:") for r in nearby)
    assert all(r["verdict"] in ("ok", "over", "none") for r in nearby)
    assert "米" in nearby[0]["text"]
    sim_units = {w.id for w in sim.world.workers} | {u.id for u in sim.world.resources}
    assert all(r["key"].split(":", 1)[1] in sim_units for r in nearby)

    # Dispatch, then Confirm the proposal as recommended: one cc:dispatch with the task
    got, (sub, poll) = dispatch_listener(stack)
    panel.click(ids.CMD_DISPATCH)
    panel.wait(lambda: panel.visible(ids.CMD_PROPOSAL), 5, "the proposal")
    picked = panel.js(f"""return Array.from(document.querySelectorAll(
        '#{ids.CMD_PROPOSAL_UNITS} li.cc-cmd-pick input:checked')).map(b => b.dataset.key)""")
    assert any(k.startswith("worker:") for k in picked)
    assert panel.js(f"return document.getElementById('{ids.CMD_CONFIRM}').disabled") is False
    panel.click(ids.CMD_CONFIRM)
    message = panel.wait(lambda: poll() and got[0], 5, "cc:dispatch")
    sub.close()
    assert message["event_id"] == eid
    task_id = message["task_id"]
    assert task_id and sorted(f"{a['kind']}:{a['id']}" for a in message["assignees"]) == \
        sorted(picked)

    # the units turn dispatched on the wall, and the panel shows the task
    def engaged() -> bool:
        rows = {r["key"]: r for r in panel.rows(ids.CMD_ASSIGNEES)}
        return sorted(rows) == sorted(picked) and \
            all(r["status"] in ENGAGED for r in rows.values())

    # This once failed about 1 run in 10 on a race in ingest (a change sent on a guessed
    # revision passed the compare-and-set after the desk's write); restate now jumps the
    # revision out of reach (tests/core/test_store_emit.py::test_emit005). On a failure, say
    # whether the wall or the store was behind.
    try:
        panel.wait(engaged, 10, "the assignees shown engaged")
    except AssertionError as exc:
        stored = {k: stack.client.hget(f"{stack.settings.prefix}state:{k.split(':')[0]}",
                                       k.split(":", 1)[1]) for k in picked}
        task = stack.client.hget(f"{stack.settings.prefix}state:task", task_id)
        raise AssertionError(f"{exc}; shown {panel.rows(ids.CMD_ASSIGNEES)}; stored {stored};"
                             f" task {task}") from None
    assert task_id in panel.text(ids.CMD_TASK)
    assert not panel.visible(ids.CMD_DISPATCH)

    # the simulator's field takes it from here: accepted, on the way, arrived, handled
    panel.wait(lambda: panel.stage() == "handled", 90, "the field's feedback to reach handled")
    task = json.loads(stack.client.hget(f"{stack.settings.prefix}state:task", task_id))
    units = {k.split(":", 1)[1] for k in picked}
    field_says = [(h["by"], h["stage"]) for h in task["history"] if h["by"] in units]
    assert {s for _, s in field_says} >= {"accepted", "arrived", "handled"}, task["history"]
    assert {by for by, s in field_says if s == "handled"} == units
    panel.wait(lambda: panel.visible(ids.CMD_VERIFY_BOX), 3, "verify for the commander")
    panel.shot("loop-handled")

    # a duty officer signs in, verifies (passed) and evaluates; the event shows closed
    browser_sign_out(dash_duo)
    browser_sign_in(dash_duo, stack.client, "duty_officer", "zhiban-wang")
    panel.open()
    panel.wait(lambda: panel.js("return window.ccwall.command.role") == "duty_officer", 5,
               "the duty officer's role from /api/me")
    panel.wait(lambda: panel.row(eid), 10, f"the row of {eid}")
    assert select(panel, eid), f"the duty officer's click on {eid}"
    panel.wait(lambda: panel.visible(ids.CMD_VERIFY_BOX), 5, "the verify buttons")
    assert not panel.visible(ids.CMD_DISPATCH)
    panel.driver.find_element("id", ids.CMD_VERIFY_NOTE).send_keys("电话回访，群众满意")
    panel.driver.find_element("css selector",
                              f'#{ids.CMD_VERIFY_BOX} [data-cmd="verify"][data-passed="1"]').click()
    panel.wait(lambda: panel.visible(ids.CMD_EVAL_BOX), 5, "the evaluate buttons")
    panel.driver.find_element("css selector",
                              f'#{ids.CMD_EVAL_BOX} [data-cmd="evaluate"][data-score="4"]').click()
    panel.wait(lambda: panel.stage() == "closed", 5, "the task closed")
    panel.wait(lambda: panel.text(ids.detail_field("status")) == t("evst.closed"), 5,
               "the event shown closed")
    assert panel.js("return window.ccwall.store.get('event', arguments[0]).status", eid) == \
        "closed"
    task = json.loads(stack.client.hget(f"{stack.settings.prefix}state:task", task_id))
    assert task["verify"]["passed"] is True and task["verify"]["by"] == "zhiban-wang"
    assert task["evaluation"]["score"] == 4
    assert dash_duo.get_logs() == []
