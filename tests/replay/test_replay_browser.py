"""Situation replay in headless chromium over the real stack (ingest, relay, the watch's
recorder, the HTTP routes, the wall's own drawing code): a fixed history (tests/replay_util)
played through it, the wall at three moments equal to what the history says (markers, the
list, the counts, the alert strip), live frames held back while replaying, back to live,
the exports; screenshots at 1920×1080 and 3840×2160, zh and en."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from dashboard.access.audit import Audit
from dashboard.store import Store
from feeds.redis_server import free_port

from .. import units_util as units
from ..auth_util import browser_sign_in
from ..replay_util import TOWN_A, Moment, Story, play
from ..video.test_camlayer_browser import Page, wait_for
from .test_history import start_ms

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[1] / "screenshots"


def probe(page: Page) -> dict[str, Any]:
    return page.js("return ccwall.replay.probe()")


def shown(page: Page) -> dict[str, Any]:
    """What the wall draws now: event markers and list rows (id → status text), the KPI
    tiles, W1's marker, the alert strip's rows, the header clock."""
    return page.js("""
        var c = ccwall, rows = {}, alerts = [];
        document.querySelectorAll('#' + c.cfg.ids.EVENT_LIST + ' li.cc-event-row')
          .forEach(function (li) {
            rows[li.getAttribute('data-id')] = li.querySelector('.cc-row-status')
              .getAttribute('data-status');
          });
        document.querySelectorAll('.cc-alert').forEach(function (li) {
          if (li.offsetParent) alerts.push(li.querySelector('.cc-alert-msg').textContent);
        });
        function kpi(id) { return document.getElementById(c.cfg.ids[id]).textContent; }
        return {rows: rows, markers: c.mapview.count('event'),
          w1: c.mapview.markerAt('worker', 'W1'), open: kpi('KPI_OPEN'),
          today: kpi('KPI_TODAY'), progress: kpi('KPI_IN_PROGRESS'),
          workers: kpi('KPI_WORKERS'), alerts: alerts,
          clock: document.getElementById(c.cfg.ids.CLOCK_TIME).textContent};""")


def check(page: Page, story: Story, moment: Moment) -> None:
    """The wall equals what the history says at `moment`."""
    def same() -> bool:
        got = shown(page)
        return got["rows"] == moment.events and got["open"] == str(moment.open_events)
    wait_for(same, 10, f"the wall at +{moment.offset // 1000} s")
    got = shown(page)
    assert got["markers"] == moment.open_events  # a closed event leaves the map, as live
    for eid, status in moment.events.items():
        drawn = page.js("return ccwall.mapview.markerAt('event', arguments[0])", eid)
        assert (drawn is not None) == (status != "closed"), eid
    assert got["today"] == str(moment.today) and got["progress"] == str(moment.in_progress)
    assert got["workers"] == "2"
    lon, lat = units.east(moment.worker_east_m["W1"])
    assert got["w1"] == pytest.approx([lat, lon], abs=1e-6)
    assert len(got["alerts"]) == len(moment.alerts)
    at = page.js("return ccwall.serverNow()")
    assert got["clock"] == page.js("var p = ccwall.timeParts(arguments[0]);"
                                   "return p.hour + ':' + p.minute + ':' + p.second", at)


def go(page: Page, at: int) -> None:
    """Type the moment and press Go, as a person would."""
    page.js("var i = document.querySelector('.cc-rpl-input');"
            "i.value = ccwall.replay.time.toLocal(arguments[0]);", at)
    page.driver.find_element("css selector", ".cc-rpl-go").click()


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.driver.save_screenshot(str(SHOTS / name))


def test_rpl101_the_wall_replays_a_fixed_history(dash_duo: Any, stack: Any) -> None:
    # minutes (not seconds) fit a datetime-local field: the story starts on a minute, and
    # the moments lie on whole seconds
    story, _ = play(Store(stack.client, stack.settings.prefix), stack.settings,
                    stack.settings.redis_url or "", start_ms())
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    browser_sign_in(dash_duo, stack.client, "commander", "rpl-commander")
    page = Page(dash_duo, stack)
    page.open()
    wait_for(lambda: page.js("return ccwall.store.size('event')") == 3, 10, "the live wall")
    assert page.js("return ccwall.store.get('event', 'E1').status") == "closed"

    page.driver.find_element("css selector", ".cc-rpl-opener").click()
    wait_for(lambda: "可回放" in probe(page)["message"], 5, "the span kept")
    first, second, third = story.moments
    # moment 1, typed in
    go(page, story.at(first))
    wait_for(lambda: probe(page)["at"] == story.at(first), 10, "the first picture")
    assert probe(page)["replaying"] is True
    assert probe(page)["lastPictureMs"] < 1000  # the first picture within a second
    check(page, story, first)
    banner = page.driver.find_element("css selector", ".cc-rpl-banner")
    assert banner.is_displayed() and "态势回放" in banner.text
    # the connection chip does not say "live" over the past (its socket still is)
    assert page.js("return document.getElementById('cc-conn').dataset.state") == "replay"
    assert page.driver.find_element("id", "cc-conn-text").text == "回放中"
    assert page.js("return getComputedStyle(document.body, '::after').borderTopColor") == \
        "rgb(255, 179, 0)"

    # live frames while replaying: they arrive, and are held back
    stack.publish("event", {"id": "LIVE1", "type": "fire", "severity": 1, "lon": units.LON0,
                            "lat": units.LAT0, "ts": int(time.time() * 1000), "title": "实时"})
    stack.publish("worker", {"id": "W1", "lon": units.east(5000)[0], "lat": units.LAT0,
                             "ts": int(time.time() * 1000), "status": "on_duty"})
    wait_for(lambda: any(f[-1] == "held back" and "LIVE1" in str(f[2])
                         for f in page.js("return ccwall.recentFrames")), 10, "a live frame")
    time.sleep(0.5)
    assert page.js("return ccwall.store.get('event', 'LIVE1')") is None
    check(page, story, first)

    # moment 2: the next alert (the level I event's, with the SOS)
    page.driver.find_element("css selector", "button[data-act='next-alert']").click()
    wait_for(lambda: probe(page)["at"] == story.t0 + 300_000, 10, "the next alert")
    check(page, story, second)
    assert any("厂房冒烟" in a for a in shown(page)["alerts"])
    assert page.driver.find_elements("css selector", ".cc-alert .cc-btn[data-cmd='ack']") \
        and not any(b.is_displayed() for b in page.driver.find_elements(
            "css selector", ".cc-alert .cc-btn[data-cmd='ack']"))  # no acting on the past
    shoot(page, "rpl101-replay-1920-zh.png")

    # moment 3: played on at ×60 past the close of E1
    page.driver.find_element("css selector", ".cc-rpl-speed[data-speed='60']").click()
    page.driver.find_element("css selector", ".cc-rpl-play").click()
    wait_for(lambda: probe(page)["at"] >= story.at(third), 20, "playing at ×60")
    page.driver.find_element("css selector", ".cc-rpl-play").click()
    assert probe(page)["playing"] is False and probe(page)["speed"] == 60
    check(page, story, third)

    # ×60 through the level I event's arrival: it is drawn, but takes neither the event
    # panel nor the map (no urgent take-over, no arrival rings), and the still rings of a
    # fast replay go back to pulsing once paused; the paused picture is the moment's
    go(page, story.at(first))
    wait_for(lambda: probe(page)["at"] == story.at(first), 10, "back at moment 1")
    # paused from inside the page a frame after the event's arrival (t0 + 300 s): a poll
    # from here overshot the acknowledgement (t0 + 420 s) by seconds on a loaded host
    page.js("""var until = arguments[0];
        (function watch() {
          if (ccwall.replay.probe().at >= until) return ccwall.replay.pause();
          requestAnimationFrame(watch);
        })();""", story.t0 + 305_000)
    page.driver.find_element("css selector", ".cc-rpl-play").click()
    assert page.js("return document.body.classList.contains('cc-replay-fast')")
    wait_for(lambda: probe(page)["playing"] is False, 20, "past the level I event")
    assert probe(page)["at"] < story.t0 + 420_000  # before the alert's acknowledgement
    assert not page.js("return document.body.classList.contains('cc-replay-fast')")
    assert page.js("return ccwall.panels.selected()") is None
    assert page.js("return document.querySelectorAll('.cc-arrive').length") == 0
    assert page.js("return document.querySelectorAll('.cc-event-row.is-new').length") == 0
    check(page, story, second)

    # the selected event's next change: E1 from dispatched (moment 1) to in progress
    go(page, story.at(first))
    wait_for(lambda: probe(page)["at"] == story.at(first), 10, "back at moment 1")
    page.js("ccwall.select('E1', false)")
    page.driver.find_element("css selector", "button[data-act='next-change']").click()
    wait_for(lambda: probe(page)["at"] == story.t0 + 420_000, 10, "E1's next change")
    wait_for(lambda: shown(page)["rows"].get("E1") == "in_progress", 5, "E1 in progress")
    assert page.js("return ccwall.panels.selected()") == "E1"

    # exports: the picture (audited) and the actions' CSV
    png = page.js("return ccwall.replay.png().then(function (u) { return u; })")
    assert png and png.startswith("data:image/png;base64,") and len(png) > 50_000
    audit = Audit(stack.client, stack.settings.prefix)
    assert audit.entries(limit=10, action="replay.png")[0]["user"] == "rpl-commander"
    views = audit.entries(limit=50, action="replay.view")
    assert len(views) >= 4 and all(v["user"] == "rpl-commander" for v in views)
    got = page.driver.execute_async_script("""var done = arguments[arguments.length - 1];
        fetch('/api/replay/actions.csv?from=' + arguments[0] + '&to=' + arguments[1])
          .then(function (r) { return r.text(); }).then(done);""", story.t0, story.end)
    assert "派单" in got and "zhihui" in got and "确认告警" in got

    # back to live: one click, the present again (with what arrived meanwhile)
    page.driver.find_element("css selector", ".cc-rpl-live").click()
    wait_for(lambda: page.js("return !!ccwall.store.get('event', 'LIVE1')"), 10, "live again")
    assert probe(page)["replaying"] is False
    assert not page.driver.find_element("css selector", ".cc-rpl-banner").is_displayed()
    wait_for(lambda: page.driver.find_element("id", "cc-conn-text").text == "实时连接", 10,
             "the chip says live again")
    assert page.js("return ccwall.store.get('event', 'E1').status") == "closed"
    wait_for(lambda: page.js("return ccwall.mapview.markerAt('worker', 'W1')")[1] ==
             pytest.approx(units.east(5000)[0], abs=1e-6), 5, "W1 where it is now")
    assert abs(page.js("return ccwall.serverNow()") - time.time() * 1000) < 5000
    assert dash_duo.get_logs() == []


@pytest.mark.parametrize("lang,size", [("en", (3840, 2160)), ("zh", (3840, 2160)),
                                       ("en", (1920, 1080))])
def test_rpl102_a_town_leader_replays_their_town_at_any_size(dash_duo: Any, stack: Any,
                                                             lang: str,
                                                             size: tuple[int, int]) -> None:
    story, _ = play(Store(stack.client, stack.settings.prefix), stack.settings,
                    stack.settings.redis_url or "", start_ms())
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    browser_sign_in(dash_duo, stack.client, "leader", "rpl-leader", scope=TOWN_A)
    page = Page(dash_duo, stack)
    page.open("?lang=en" if lang == "en" else "")
    page.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
    page.driver.find_element("css selector", ".cc-rpl-opener").click()
    wait_for(lambda: probe(page)["message"], 5, "the span kept")
    second = story.moments[1]
    go(page, story.at(second))
    wait_for(lambda: probe(page)["at"] == story.at(second), 10, "the picture")
    # only the town's: E1 and E3, W1; never E2 or W2 of the other town
    wait_for(lambda: set(shown(page)["rows"]) == {"E1", "E3"}, 5, "the town's events")
    assert page.js("return ccwall.store.get('worker', 'W2')") is None
    assert page.js("return ccwall.store.get('event', 'E2')") is None
    assert shown(page)["open"] == "2"
    text = page.driver.find_element("css selector", ".cc-rpl-banner").text
    assert ("REPLAY" in text) == (lang == "en")
    # no scroll bars at any size
    assert page.js("return document.documentElement.scrollWidth <= window.innerWidth && "
                   "document.documentElement.scrollHeight <= window.innerHeight")
    shoot(page, f"rpl102-replay-{size[0]}-{lang}.png")
    assert dash_duo.get_logs() == []
