"""The track replay on the wall (assets/js/cc-86-tracks.js) in headless chromium over the real
stack (ingest + relay + test Valkey): trk101 from a worker's popup, the line, the slider, play,
close, the situation replay's opener out of the panel's way meanwhile; trk102 the finder, the
spans and an unknown unit."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dashboard.archive.tracks import Fix, Tracks
from feeds.redis_server import free_port

from ..auth_util import browser_sign_in
from ..video.test_camlayer_browser import CENTRE, Page, offset, wait_for

pytestmark = pytest.mark.browser

STEP_MS = 60_000
N = 30


def now_ms() -> int:
    return int(time.time() * 1000)


def stored_track(stack: Any, unit_id: str, kind: str = "worker") -> list[Fix]:
    """A unit walking 50 m east a minute for the last half hour, written straight to the
    store (the watch's part is tested in test_tracks)."""
    start = now_ms() - (N + 5) * STEP_MS
    fixes = []
    for i in range(N):
        lon, lat = offset(50.0 * i, 10.0 * i)
        fixes.append(Fix(start + i * STEP_MS, lat, lon))
    Tracks(stack.client, stack.settings.prefix, stack.settings.timezone).write(kind, unit_id,
                                                                               fixes)
    return fixes


def probe(page: Page) -> dict[str, Any]:
    return page.js("return ccwall.tracks.probe()")


def paths(page: Page, cls: str) -> list[Any]:
    return page.driver.find_elements("css selector", f"path.{cls}")


def test_trk101_replay_from_a_worker_popup(dash_duo: Any, stack: Any) -> None:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    browser_sign_in(dash_duo, stack.client, "commander", "trk-commander")
    page = Page(dash_duo, stack)
    page.open()
    fixes = stored_track(stack, "TW1")
    last = fixes[-1]
    stack.publish("worker", {"id": "TW1", "name": "轨迹测试员", "lon": last.lon, "lat": last.lat,
                             "ts": now_ms(), "status": "on_duty"})
    wait_for(lambda: page.js("return !!ccwall.store.get('worker', 'TW1')"), 10, "the worker")
    page.js("var m = ccwall.mapview.map(), ll = ccwall.latLng(arguments[0], arguments[1]);"
            "m.setView(ll, 16, {animate: false});", last.lon, last.lat)
    time.sleep(0.3)
    on_map = "var n = 0; ccwall.mapview.map().eachLayer(function () { n++; }); return n;"
    layers_before = page.js(on_map)
    page.click_at(page.screen((last.lon, last.lat)))
    button = wait_for(lambda: page.driver.find_elements("css selector", ".cc-trk-pop"), 5,
                      "the popup's replay button")[0]
    assert "轨迹测试员" in page.driver.find_element("css selector", ".leaflet-popup").text
    button.click()
    wait_for(lambda: probe(page).get("points") == N, 10, "the track loaded")
    got = probe(page)
    assert got["kind"] == "worker" and got["id"] == "TW1"
    assert got["to"] - got["from"] == 2 * 3_600_000  # the default span: two hours
    # the whole track is drawn, the marker waits at its first fix
    line = wait_for(lambda: paths(page, "cc-track-line"), 3, "the polyline")[0]
    drawn = line.get_attribute("d")  # a straight walk: Leaflet simplifies it to one segment
    assert drawn.startswith("M") and "L" in drawn
    assert got["marker"] == pytest.approx([fixes[0].lat, fixes[0].lon], abs=1e-7)
    root = page.driver.find_element("id", "cc-track-root")
    assert root.get_attribute("data-state") == "ready"
    # the situation replay's opener shares the corner the panel spans: hidden meanwhile
    replay_opener = page.driver.find_element("css selector", ".cc-rpl-opener")
    assert not replay_opener.is_displayed()
    assert "30" in root.find_element("css selector", ".cc-trk-msg").text
    # the slider to 20 s after fix 10: the marker a third of the way to fix 11
    target = fixes[10].ts + 20_000
    value = round((target - got["from"]) / 1000)
    page.js("var s = document.querySelector('.cc-trk-slider'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('input', {bubbles: true}));", str(value))
    at = got["from"] + value * 1000
    f = (at - fixes[10].ts) / STEP_MS
    want = [fixes[10].lat + (fixes[11].lat - fixes[10].lat) * f,
            fixes[10].lon + (fixes[11].lon - fixes[10].lon) * f]
    now = probe(page)
    assert now["t"] == at and now["reported"] is True
    assert now["marker"] == pytest.approx(want, abs=1e-7)
    shown = page.driver.find_element("css selector", ".cc-trk-time").text
    assert shown == page.js("return ccwall.fmtTime(arguments[0])", at)
    assert paths(page, "cc-track-done")  # the part travelled
    # play at ×60: replayed time runs a minute a second
    page.driver.find_element("css selector", "button[data-speed='60']").click()
    page.driver.find_element("css selector", ".cc-trk-play").click()
    wait_for(lambda: probe(page)["t"] > at + 30_000, 5, "the replay moving")
    assert probe(page)["playing"] is True and probe(page)["speed"] == 60
    page.driver.find_element("css selector", ".cc-trk-play").click()
    assert probe(page)["playing"] is False
    # closing removes every layer it drew
    page.driver.find_element("css selector", ".cc-trk-close").click()
    assert probe(page) == {"open": False}
    assert page.js("return ccwall.mapview.map().getPane('ccTrack').querySelectorAll('path')"
                   ".length") == 0
    assert not paths(page, "cc-track-line") and not paths(page, "cc-track-marker")
    assert page.js(on_map) == layers_before  # no renderer or group left behind
    assert root.get_attribute("data-state") == "closed"
    assert replay_opener.is_displayed()
    assert page.duo.get_logs() == []


def test_trk102_finder_spans_and_an_unknown_unit(dash_duo: Any, stack: Any) -> None:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    browser_sign_in(dash_duo, stack.client, "leader", "trk-leader")
    page = Page(dash_duo, stack)
    page.open()
    fixes = stored_track(stack, "TR9", kind="resource")
    stack.publish("resource", {"id": "TR9", "name": "急救车九号", "kind": "ambulance",
                               "lon": CENTRE[0], "lat": CENTRE[1], "ts": now_ms()})
    wait_for(lambda: page.js("return !!ccwall.store.get('resource', 'TR9')"), 10, "the vehicle")
    page.driver.find_element("css selector", ".cc-trk-opener").click()
    box = page.driver.find_element("css selector", ".cc-trk-input")
    box.send_keys("急救车")
    hit = wait_for(lambda: page.driver.find_elements("css selector", ".cc-trk-hit"), 3,
                   "a match")
    assert len(hit) == 1 and "救护车" in hit[0].text
    hit[0].click()
    wait_for(lambda: probe(page).get("points") == N, 10, "the track loaded")
    # the last hour holds the last 25 fixes (a minute apart, ending 6 minutes ago)
    page.driver.find_element("css selector", "button[data-span='1h']").click()
    wait_for(lambda: probe(page).get("points") == sum(
        f.ts >= probe(page)["from"] for f in fixes), 10, "the last hour")
    assert probe(page)["to"] - probe(page)["from"] == 3_600_000
    page.driver.find_element("css selector", ".cc-trk-close").click()
    assert probe(page) == {"open": False}
    assert page.duo.get_logs() == []
    # an unknown unit: the answer is said, nothing is drawn (the 404 is the only log line)
    page.js("ccwall.tracks.open('resource', 'nobody-here')")
    wait_for(lambda: page.driver.find_element("id", "cc-track-root").get_attribute(
        "data-state") == "failed", 10, "the refusal")
    assert "未找到" in page.driver.find_element("css selector", ".cc-trk-msg").text
    assert not paths(page, "cc-track-line")
    page.driver.find_element("css selector", ".cc-trk-close").click()
    logs = page.duo.get_logs()
    assert len(logs) <= 1 and all("404" in entry["message"] for entry in logs)
