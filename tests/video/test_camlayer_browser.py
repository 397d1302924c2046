"""The map's camera layer and camera selection (assets/js/cc-12-cameras.js, cc-13-camsel.js)
in headless chromium over the real stack (ingest + relay + test Valkey).

Feature codes: cam101 a drawn circle selects exactly the cameras inside it, cam102 a drawn
polygon likewise, cam103 clusters when zoomed out and the offline colour when zoomed in,
cam104 picking single cameras and the popup, cam105 the tool bar for a display kiosk.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.mouse_button import MouseButton

from dashboard.geo import haversine_m
from feeds.redis_server import free_port
from layouts import ids
from layouts.theme import CAMERA_COLOURS

from ..auth_util import browser_sign_in

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).parents[1] / "screenshots"
CITY = json.loads((ROOT / "data" / "pingdu" / "city.json").read_text(encoding="utf-8"))
CENTRE = tuple(CITY["towns"][0]["centroid"])


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def offset(metres_east: float, metres_north: float,
           origin: tuple[float, float] = CENTRE) -> tuple[float, float]:
    lon, lat = origin
    dlat = metres_north / 111_320.0
    dlon = metres_east / (111_320.0 * math.cos(math.radians(lat)))
    return round(lon + dlon, 6), round(lat + dlat, 6)


def point_in_polygon(x: float, y: float, pts: list[list[float]]) -> bool:
    """Even-odd ray casting on lon/lat (the rule the page documents)."""
    inside = False
    j = len(pts) - 1
    for i in range(len(pts)):
        xi, yi, xj, yj = pts[i][0], pts[i][1], pts[j][0], pts[j][1]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


class Page:
    def __init__(self, dash_duo: Any, stack: Any) -> None:
        self.duo = dash_duo
        self.stack = stack
        self.driver = dash_duo.driver
        self.cams: dict[str, tuple[float, float]] = {}

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def open(self, query: str = "") -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False})
        self.driver.get(self.duo.server_url.rstrip("/") + "/" + query)
        wait_for(lambda: self.js("return !!(window.ccwall && ccwall.connected"
                                 " && ccwall.mapview.map())"), 10, "the wall")

    def publish(self, cid: str, at: tuple[float, float], **extra: Any) -> None:
        self.cams[cid] = at
        msg = {"id": cid, "lon": at[0], "lat": at[1], "name": f"测试摄像机 {cid}",
               "stream_type": "mjpeg", "stream_url": f"http://127.0.0.1:9/{cid}.mjpg",
               "ts": now_ms(), **extra}
        self.stack.publish("camera", msg)

    def wait_cameras(self, n: int) -> None:
        wait_for(lambda: self.js("return ccwall.cameras.count()") >= n, 10, f"{n} cameras")

    def view(self, at: tuple[float, float], zoom: float) -> None:
        """Centre the map on a WGS-84 point (no animation) and wait for the redraw."""
        before = self.js("return ccwall.cameras.stats().draws")
        self.js("var m = ccwall.mapview.map(), ll = ccwall.latLng(arguments[0], arguments[1]);"
                "m.setView(ll, arguments[2], {animate: false});", at[0], at[1], zoom)
        wait_for(lambda: self.js("return ccwall.cameras.stats().draws") > before, 5, "a redraw")

    def screen(self, at: tuple[float, float]) -> tuple[float, float]:
        """Viewport pixel of a WGS-84 point."""
        p = self.js("""
            var m = ccwall.mapview.map(), ll = ccwall.latLng(arguments[0], arguments[1]);
            var c = m.latLngToContainerPoint(ll), r = m.getContainer().getBoundingClientRect();
            return [r.left + c.x, r.top + c.y];""", at[0], at[1])
        return p[0], p[1]

    def press_drag_release(self, a: tuple[float, float], b: tuple[float, float]) -> None:
        act = ActionBuilder(self.driver)
        mouse = act.pointer_action
        mouse.move_to_location(round(a[0]), round(a[1]))
        mouse.pointer_down(MouseButton.LEFT)
        steps = 8
        for i in range(1, steps + 1):
            mouse.move_to_location(round(a[0] + (b[0] - a[0]) * i / steps),
                                   round(a[1] + (b[1] - a[1]) * i / steps))
        mouse.pointer_up(MouseButton.LEFT)
        act.perform()

    def click_at(self, p: tuple[float, float], double: bool = False) -> None:
        act = ActionBuilder(self.driver)
        act.pointer_action.move_to_location(round(p[0]), round(p[1]))
        act.pointer_action.click()
        if double:
            act.pointer_action.double_click()
        act.perform()

    def tool(self, name: str) -> None:
        self.driver.find_element("css selector",
                                 f"#{ids.CAM_TOOLS} button[data-tool='{name}']").click()

    def selection(self) -> list[str]:
        return self.js("return ccwall.camsel.selection()")

    def shape(self) -> dict[str, Any] | None:
        return self.js("return ccwall.camsel.shape()")

    def pixel(self, cid: str) -> list[int]:
        """RGBA of the camera canvas at a camera's position."""
        return self.js("""
            var c = ccwall.cameras.canvas(), p = ccwall.cameras.containerPoint(arguments[0]);
            var m = ccwall.mapview.map().getContainer().getBoundingClientRect();
            var r = c.getBoundingClientRect(), k = c.width / r.width;
            var x = Math.round((m.left + p.x - r.left) * k);
            var y = Math.round((m.top + p.y - r.top) * k);
            return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);""", cid)


@pytest.fixture
def page(dash_duo: Any, stack: Any) -> Page:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    browser_sign_in(dash_duo, stack.client, "commander", "cam-commander")
    p = Page(dash_duo, stack)
    p.open()
    return p


def ring(page: Page, prefix: str) -> None:
    """Cameras inside (≤ 170 m), just outside (225–260 m) and far (3 km) of a 200 m circle
    round CENTRE, on every side."""
    for k, bearing in enumerate(range(0, 360, 30)):
        b = math.radians(bearing)
        for tag, d in (("in", 60 + 9 * k), ("edge", 225 + 3 * k)):
            page.publish(f"{prefix}-{tag}-{bearing}", offset(d * math.sin(b), d * math.cos(b)))
    for k in range(4):
        page.publish(f"{prefix}-far-{k}", offset(3000 * (k - 1.5), 2500))


def test_cam101_drawn_circle_selects_exactly_the_cameras_inside(page: Page) -> None:
    ring(page, "C1")
    page.wait_cameras(len(page.cams))
    page.view(CENTRE, 16)
    page.tool("circle")
    assert page.js(f"return document.getElementById('{ids.CAM_TOOLS}').dataset.tool") == "circle"
    a = page.screen(CENTRE)
    b = page.screen(offset(200, 0))
    page.press_drag_release(a, b)
    shape = wait_for(page.shape, 3, "the drawn circle")
    assert shape["type"] == "circle"
    # the radius the drag drew (~200 m) and the centre where the press was (within a pixel)
    assert 185 <= shape["radius_m"] <= 215, shape
    assert haversine_m(shape["lon"], shape["lat"], *CENTRE) < 5
    expected = {cid for cid, (lon, lat) in page.cams.items()
                if haversine_m(shape["lon"], shape["lat"], lon, lat) <= shape["radius_m"]}
    assert {c for c in expected if "-in-" in c} == {c for c in page.cams if "-in-" in c}
    assert not any("-edge-" in c or "-far-" in c for c in expected)
    selected = page.selection()
    assert set(selected) == expected and len(selected) == len(expected)
    # nearest first, highlighted on the canvas, listed on the card
    dists = [haversine_m(shape["lon"], shape["lat"], *page.cams[c]) for c in selected]
    assert dists == sorted(dists)
    assert page.js("return ccwall.cameras.stats().selectedIcons") == len(expected)
    card = page.driver.find_element("css selector", f"#{ids.CAM_TOOLS} .cc-cam-count")
    assert str(len(expected)) in card.text
    SHOTS.mkdir(exist_ok=True)
    page.driver.save_screenshot(str(SHOTS / "cam-circle.png"))
    # a commander is offered the video wall; the tool bar is back to panning
    assert page.driver.find_element("css selector", "button[data-act='wall']").is_displayed()
    assert page.js("return ccwall.camsel.tool()") is None
    assert page.js("return ccwall.mapview.map().dragging.enabled()")
    page.driver.find_element("css selector", "button[data-act='clear']").click()
    assert page.selection() == []
    assert page.duo.get_logs() == []


def test_cam102_drawn_polygon_selects_exactly_the_cameras_inside(page: Page) -> None:
    ring(page, "P1")
    page.wait_cameras(len(page.cams))
    page.view(CENTRE, 16)
    page.tool("polygon")
    # a lopsided pentagon: some ring cameras inside, some outside, edges between them
    corners = [offset(-240, -150), offset(230, -210), offset(260, 120), offset(20, 250),
               offset(-180, 90)]
    for c in corners:
        page.click_at(page.screen(c))
        time.sleep(0.35)  # separate clicks, not a double click
    page.click_at(page.screen(corners[0]))  # the first vertex closes it
    shape = wait_for(page.shape, 3, "the drawn polygon")
    assert shape["type"] == "polygon" and len(shape["points"]) == 5
    expected = {cid for cid, (lon, lat) in page.cams.items()
                if point_in_polygon(lon, lat, shape["points"])}
    assert 6 <= len(expected) < len(page.cams)
    assert set(page.selection()) == expected and len(page.selection()) == len(expected)
    # double-click closes a polygon too; Esc cancels one half drawn
    page.tool("polygon")
    for c in corners[:2]:
        page.click_at(page.screen(c))
        time.sleep(0.35)
    page.click_at(page.screen(offset(0, 200)), double=True)
    shape2 = wait_for(lambda: (s := page.shape()) and len(s["points"]) == 3 and s, 3,
                      "the double-clicked triangle")
    tri = {cid for cid, (lon, lat) in page.cams.items()
           if point_in_polygon(lon, lat, shape2["points"])}
    assert set(page.selection()) == tri
    page.tool("polygon")
    page.click_at(page.screen(corners[0]))
    ActionChains(page.driver).send_keys("\ue00c").perform()  # Escape
    assert page.js("return ccwall.camsel.tool()") is None
    assert set(page.selection()) == tri
    assert page.duo.get_logs() == []


def test_cam103_clusters_zoomed_out_offline_colour_zoomed_in(page: Page) -> None:
    n = 0
    for i in range(20):
        for j in range(20):
            page.publish(f"K{i:02d}{j:02d}", offset(i * 40 - 400, j * 40 - 400),
                         online=(i + j) % 7 != 0, heading=(i * 37) % 360, fov=90)
            n += 1
    page.publish("K-OFF", offset(1500, 1500), online=False, heading=45, fov=60)
    page.publish("K-PTZ", offset(1560, 1500), ptz=True)
    page.wait_cameras(n + 2)
    legend = page.driver.find_element("id", ids.legend_count("camera"))
    wait_for(lambda: legend.text.replace(",", "") == str(n + 2), 3, "the legend count")
    page.view(CENTRE, 12)
    st = page.js("return ccwall.cameras.stats()")
    assert st["mode"] == "clusters" and st["visible"]
    assert 1 <= st["clusters"] < 20, st
    assert st["clustered"] + st["icons"] == n + 2
    assert st["clustered"] >= n - 10
    page.driver.save_screenshot(str(SHOTS / "cam-clusters.png"))
    # zoomed in: one icon each, the offline one in the offline colour with its sector
    page.view(offset(1530, 1500), 17)
    st = page.js("return ccwall.cameras.stats()")
    assert st["mode"] == "icons" and st["icons"] == 2 and st["offlineIcons"] == 1
    assert st["sectors"] == 1 and st["rings"] == 1
    page.driver.save_screenshot(str(SHOTS / "cam-icons.png"))
    off = CAMERA_COLOURS["offline"]
    on = CAMERA_COLOURS["online"]
    rgb = [int(off[k:k + 2], 16) for k in (1, 3, 5)]
    assert page.pixel("K-OFF")[:3] == rgb
    assert page.pixel("K-PTZ")[:3] == [int(on[k:k + 2], 16) for k in (1, 3, 5)]
    # the camera comes back online: redrawn within the one-second pacing
    draws = st["draws"]
    page.publish("K-OFF", page.cams["K-OFF"], online=True, heading=45, fov=60)
    wait_for(lambda: page.pixel("K-OFF")[:3] == [int(on[k:k + 2], 16) for k in (1, 3, 5)], 4,
             "the online colour")
    assert page.js("return ccwall.cameras.stats().draws") > draws
    # the legend toggle hides the layer and brings it back
    box = page.driver.find_element(
        "css selector", f"#{ids.LAYER_TOGGLES} input[value='camera']")
    box.click()
    wait_for(lambda: not page.js("return ccwall.cameras.stats().visible"), 3, "layer off")
    box.click()
    wait_for(lambda: page.js("return ccwall.cameras.stats().visible"), 3, "layer on")
    assert page.duo.get_logs() == []


def test_cam104_pick_single_cameras_and_popup(page: Page) -> None:
    page.publish("S-A", offset(0, 0), online=True, heading=90, fov=70)
    page.publish("S-B", offset(80, 30), online=False)
    page.wait_cameras(2)
    page.view(offset(40, 15), 17)
    # no tool: a click opens the camera's popup (text only)
    page.click_at(page.screen(page.cams["S-B"]))
    pop = wait_for(lambda: page.driver.find_elements("css selector", ".cc-cam-pop"), 3,
                   "the popup")[0]
    assert pop.get_attribute("data-camera") == "S-B"
    assert "测试摄像机 S-B" in pop.text and "离线" in pop.text
    # the pick tool toggles cameras in and out
    page.tool("click")
    page.click_at(page.screen(page.cams["S-A"]))
    wait_for(lambda: page.selection() == ["S-A"], 3, "S-A picked")
    time.sleep(0.4)
    page.click_at(page.screen(page.cams["S-B"]))
    wait_for(lambda: page.selection() == ["S-A", "S-B"], 3, "S-B picked")
    time.sleep(0.4)
    page.click_at(page.screen(page.cams["S-A"]))
    wait_for(lambda: page.selection() == ["S-B"], 3, "S-A dropped")
    assert page.js("return ccwall.camsel.gridFor(1)") == 1
    assert [page.js(f"return ccwall.camsel.gridFor({k})") for k in (2, 5, 10, 17)] == \
        [4, 9, 16, 16]
    assert page.duo.get_logs() == []


def test_cam105_display_kiosk_is_not_offered_the_video_wall(dash_duo: Any, stack: Any) -> None:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    browser_sign_in(dash_duo, stack.client, "display", "cam-kiosk")
    page = Page(dash_duo, stack)
    page.open()
    page.publish("D-A", offset(0, 0))
    page.wait_cameras(1)
    page.view(CENTRE, 16)
    wait_for(lambda: page.js("return ccwall.command.role") == "display", 5, "the role")
    page.tool("circle")
    page.press_drag_release(page.screen(CENTRE), page.screen(offset(100, 0)))
    wait_for(lambda: page.selection() == ["D-A"], 3, "the selection")
    time.sleep(0.2)
    wall_btn = page.driver.find_element("css selector", "button[data-act='wall']")
    assert not wall_btn.is_displayed()
    assert page.js("return ccwall.camsel.toWall()") is None  # and the API call refuses too
    assert page.duo.get_logs() == []


def test_cam107_selection_to_event_panel_and_to_video_wall(page: Page) -> None:
    # offline cameras: the tiles show their state and open no stream (no console noise)
    for k in range(6):
        page.publish(f"W-{k}", offset(30 * k - 75, 20), online=False)
    page.publish("W-FAR", offset(900, 900), online=False)
    page.wait_cameras(7)
    page.stack.publish("event", {"id": "EV-CAM", "type": "fire", "severity": 3,
                                 "lon": CENTRE[0], "lat": CENTRE[1], "ts": now_ms(),
                                 "title": "测试事件", "source": "hotline"})
    page.view(CENTRE, 16)
    page.tool("circle")
    page.press_drag_release(page.screen(CENTRE), page.screen(offset(150, 0)))
    selected = wait_for(lambda: len(page.selection()) == 6 and page.selection(), 3,
                        "six cameras selected")
    # to the panel: nowhere to put them until an event is open
    page.driver.find_element("css selector", "button[data-act='panel']").click()
    msg = page.driver.find_element("css selector", f"#{ids.CAM_TOOLS} .cc-cam-msg")
    assert msg.get_attribute("data-level") == "warn"
    wait_for(lambda: page.driver.find_elements(
        "css selector", '.cc-event-row[data-id="EV-CAM"]'), 5, "the event row")
    page.driver.find_element("css selector", '.cc-event-row[data-id="EV-CAM"]').click()
    wait_for(lambda: page.js("return ccwall.command.selected()") == "EV-CAM", 5, "the panel")
    page.driver.find_element("css selector", "button[data-act='panel']").click()
    wait_for(lambda: page.js("return ccwall.video.panelSource()") == "map", 5, "map tiles")
    states = page.js("return ccwall.video.panelStates()")
    assert 1 <= len(states) <= 6 and set(states) == {"offline"}, states
    assert msg.get_attribute("data-level") == "ok"
    # opening the event focused the (following) video wall on it: let that land first, or
    # under load it could arrive after the selection and replace it
    wait_for(lambda: (raw := page.stack.client.get("cc:video:wall"))
             and json.loads(raw).get("event_id") == "EV-CAM", 10, "the wall's focus")
    # to the video wall: the smallest grid that holds six, the ids in selection order
    page.driver.find_element("css selector", "button[data-act='wall']").click()
    wall = wait_for(lambda: (raw := page.stack.client.get("cc:video:wall"))
                    and (w := json.loads(raw))["tiles"][:6] == selected
                    and w["grid"] == 9 and w, 5,
                    "the video wall")
    assert wall["grid"] == 9 and wall["by"] == "cam-commander"
    assert [t for t in wall["tiles"] if t] == selected
    assert page.duo.get_logs() == []
