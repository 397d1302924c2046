"""The video wall page /video in headless Chromium over the real stack (ingest, relay, the
Dash app with sign-in).

Feature codes: vw101 layouts 1→4→9→16, assigning by click, a saved layout recalled by name,
no scrollbars at 1920×1080 and 3840×2160; vw102 following: an open level-I event shows its
cameras as the page opens, a newer one near published cameras switches the tiles to them
(covering first), and so does a focus another screen sends; vw103 a display session sees the
wall change but no save/assign controls; vw104 a commander opening an event on the wall
points the video wall at it.

Cameras here have no stream (`stream_type: none`): these tests are about the tiles, not the
player, and must not open connections to a demo server that is not running.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException

from feeds.redis_server import free_port
from layouts import ids

from ..app.test_wall_browser import CENTRE, Wall, make_event, now_ms, wait_for
from ..auth_util import browser_sign_in, make_user
from ..conftest import Stack

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).parents[1] / "screenshots"


def offset(metres_east: float, metres_north: float) -> tuple[float, float]:
    lat = CENTRE[1] + metres_north / 111_320
    lon = CENTRE[0] + metres_east / (111_320 * math.cos(math.radians(CENTRE[1])))
    return round(lon, 6), round(lat, 6)


def publish_cameras(stack: Stack) -> list[str]:
    """Eight cameras along a street 2 km east of CENTRE (far from the follow scene), then the
    follow scene's cameras around CENTRE; returns the follow scene's expected order."""
    now = now_ms()
    for i in range(8):
        lon, lat = offset(2000 + 40 * i, 0)
        stack.publish("camera", {"id": f"C-ST-{i}", "lon": lon, "lat": lat, "ts": now,
                                 "name": f"人民路{i}号路口", "online": True,
                                 "stream_type": "none"})
    scene = {  # id: (east m, north m, fields)
        "C-F-AWAY": (0, 25, {"heading": 0, "fov": 60, "range_m": 100}),  # looks away
        "C-F-COVER": (70, 0, {"heading": 270, "fov": 60, "range_m": 120}),  # looks at it
        "C-F-RING": (0, -110, {"range_m": 150}),  # all round
    }
    for cid, (east, north, fields) in scene.items():
        lon, lat = offset(east, north)
        stack.publish("camera", {"id": cid, "lon": lon, "lat": lat, "ts": now,
                                 "name": f"{cid} 现场", "online": True, "stream_type": "none",
                                 **fields})
    return ["C-F-COVER", "C-F-RING", "C-F-AWAY"]


class VideoPage(Wall):
    """The video wall page, with the probes the tests need."""

    def open_video(self, size: tuple[int, int] = (1920, 1080)) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        self.driver.get(self.duo.server.url.rstrip("/") + "/video")
        self.wait(lambda: self.js("return !!(window.ccwall && window.ccwall.connected)"), 10,
                  "the websocket to connect")
        self.wait(lambda: self.tiles(), 5, "the tiles")

    def tiles(self) -> list[str]:
        return self.js(f"""return Array.from(document.querySelectorAll(
            '#{ids.VW_GRID} > .cc-vw-tile')).map(t => t.dataset.camera || '')""")

    def click_css(self, css: str) -> None:
        # The layout list is redrawn when the server's wall frame lands: find it again then.
        for attempt in range(3):
            try:
                self.driver.find_element("css selector", css).click()
                return
            except StaleElementReferenceException:
                if attempt == 2:
                    raise
                time.sleep(0.1)

    def cameras_in_store(self, n: int) -> None:
        self.wait(lambda: self.js("return window.ccwall.state.cameras") >= n, 5,
                  f"{n} cameras in the store")

    def server_wall(self) -> dict[str, Any]:
        return self.js("""return fetch('/api/video/wall', {credentials: 'same-origin'})
            .then(r => r.json())""")


@pytest.fixture
def page(dash_duo: Any, stack: Stack) -> VideoPage:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    return VideoPage(dash_duo, stack)


def test_vw101_layouts_assign_save_and_recall(page: VideoPage, stack: Stack) -> None:
    browser_sign_in(page.duo, stack.client, "commander")
    publish_cameras(stack)
    page.open_video()
    page.cameras_in_store(11)
    assert len(page.tiles()) == 4
    for n in (1, 4, 9, 16):
        page.click_css(f'#{ids.VW_GRIDS} [data-grid="{n}"]')
        page.wait(lambda n=n: len(page.tiles()) == n, 3, f"{n} tiles")
        page.wait(lambda n=n: page.server_wall()["grid"] == n, 3, f"the server's grid {n}")
    page.click_css(f'#{ids.VW_GRIDS} [data-grid="4"]')
    page.wait(lambda: len(page.tiles()) == 4, 3, "4 tiles again")

    # pick tile 2, search a camera by name, click it: it goes on tile 2
    page.click_css('.cc-vw-tile[data-slot="1"]')
    search = page.driver.find_element("id", ids.VW_SEARCH)
    search.send_keys("人民路3")
    page.wait(lambda: page.js(f"""return Array.from(document.querySelectorAll(
        '#{ids.VW_CAMS} .cc-vw-cam')).map(li => li.dataset.id).join()""") == "C-ST-3", 3,
        "the search to list C-ST-3 only")
    page.click_css('.cc-vw-cam[data-id="C-ST-3"]')
    page.wait(lambda: page.tiles() == ["", "C-ST-3", "", ""], 3, "C-ST-3 on tile 2")
    # search by id; with no tile picked a click fills the first empty one
    search.clear()
    search.send_keys("c-st-5")
    page.wait(lambda: page.js("return !!document.querySelector('.cc-vw-cam[data-id=\"C-ST-5\"]')"
                              " && document.querySelectorAll('.cc-vw-cam').length === 1"), 3,
              "the search by id")
    # (after an assignment the next empty tile is picked: click it again to unpick it)
    page.click_css(".cc-vw-tile.is-picked")
    page.click_css('.cc-vw-cam[data-id="C-ST-5"]')
    placed = ["C-ST-5", "C-ST-3", "", ""]
    page.wait(lambda: page.tiles() == placed, 3, "C-ST-5 on the first tile")
    page.wait(lambda: page.server_wall()["tiles"] == ["C-ST-5", "C-ST-3"], 3,
              "the server's tiles")

    # save it as a name, change the wall, recall it by name
    name = page.driver.find_element("id", ids.VW_LAYOUT_NAME)
    name.send_keys("早班 路口")
    page.click_css(f"#{ids.VW_LAYOUT_SAVE}")
    page.wait(lambda: page.js("return !!document.querySelector("
                              "'.cc-vw-layout[data-name=\"早班 路口\"]')"), 3, "the saved layout")
    page.click_css(f'#{ids.VW_GRIDS} [data-grid="9"]')
    page.click_css(f"#{ids.VW_CLEAR_ALL}")
    page.wait(lambda: page.tiles() == [""] * 9, 3, "nine empty tiles")
    page.click_css('.cc-vw-layout[data-name="早班 路口"] [data-vw="recall"]')
    page.wait(lambda: page.tiles() == placed, 3, "the recalled layout")
    page.wait(lambda: page.server_wall()["grid"] == 4, 3, "the server's recalled grid")

    for size in ((1920, 1080), (3840, 2160)):
        page.open_video(size)
        page.wait(lambda: page.tiles() == placed, 3, f"the wall at {size}")
        page.wait(lambda: page.js("return document.querySelectorAll('.cc-vw-cam').length")
                  == 11, 3, "the camera list")
        s = page.scroll_sizes()
        assert s["dw"] <= s["iw"] and s["dh"] <= s["ih"], (size, s)
        SHOTS.mkdir(exist_ok=True)
        page.driver.save_screenshot(str(SHOTS / f"videowall-{size[0]}x{size[1]}.png"))
    assert page.duo.get_logs() == []


def test_vw102_follow_a_new_level_one_event_and_a_focus(page: VideoPage, stack: Stack) -> None:
    browser_sign_in(page.duo, stack.client, "duty_officer")
    expected = publish_cameras(stack)
    # an open level-I event already there when the page loads is followed at once
    stack.publish("event", make_event("EV-OLD", 1, at=offset(2000, 0)))
    stack.wait_seq(12)  # in the snapshot, not live
    page.open_video()
    page.cameras_in_store(11)
    page.wait(lambda: page.tiles() == ["C-ST-0", "C-ST-1", "C-ST-2", "C-ST-3"], 5,
              "the open event's cameras")

    stack.publish("event", make_event("EV-FIRE", 1, title="仓库起火"))
    page.wait(lambda: page.tiles() == [*expected, ""], 5, "the tiles on the fire's cameras")
    event_text = page.js(f"return document.getElementById('{ids.VW_EVENT}').textContent")
    assert "仓库起火" in event_text

    # a focus sent by another screen (the wall's panel): the tiles follow it at once
    client = stack.app.server.test_client()
    user, password = make_user(stack.client, "commander", "t-other-screen")
    client.post("/api/login", json={"username": user, "password": password})
    stack.publish("event", make_event("EV-STREET", 3, at=offset(2045, 0)))
    page.wait(lambda: page.js("return window.ccwall.state.events") == 3, 5, "the street event")
    assert client.post("/api/video/focus", json={"event_id": "EV-STREET"}).status_code == 200
    page.wait(lambda: page.tiles() == ["C-ST-1", "C-ST-2", "C-ST-0", "C-ST-3"], 5,
              "the tiles on the street's cameras")
    # follow off: nothing is followed, and a new level-I event changes nothing (the tour
    # would fill the tiles, but these cameras have no stream to tour)
    page.click_css(f"#{ids.VW_FOLLOW}")
    page.wait(lambda: page.server_wall()["follow"] is False, 3, "follow off")
    page.wait(lambda: page.tiles() == ["", "", "", ""], 3, "no event followed")
    stack.publish("event", make_event("EV-FIRE-2", 1, at=offset(10, 10)))
    page.wait(lambda: page.js("return window.ccwall.state.events") == 4, 5, "the second fire")
    time.sleep(0.5)
    assert page.tiles() == ["", "", "", ""]
    assert page.duo.get_logs() == []


def test_vw103_display_sees_no_controls_but_follows_the_wall(page: VideoPage,
                                                             stack: Stack) -> None:
    browser_sign_in(page.duo, stack.client, "display", "wall")
    publish_cameras(stack)
    page.open_video()
    page.cameras_in_store(11)
    controls = page.js(f"""return ['{ids.VW_GRIDS}', '{ids.VW_SIDE}', '{ids.VW_LAYOUT_SAVE}',
        '{ids.VW_CLEAR_ALL}', '{ids.VW_SEARCH}', '{ids.VW_CAMS}']
        .filter(id => document.getElementById(id))""")
    assert controls == []
    assert page.js("return document.querySelectorAll('.cc-vw-tile-clear, "
                   ".cc-vw-tile[draggable=\"true\"], [data-vw]').length") == 0
    # a commander elsewhere sets the wall: the display shows it at once
    client = stack.app.server.test_client()
    user, password = make_user(stack.client, "commander", "t-desk")
    client.post("/api/login", json={"username": user, "password": password})
    res = client.put("/api/video/wall", json={"grid": 9, "tiles": ["C-ST-0", None, "C-ST-7"]})
    assert res.status_code == 200
    page.wait(lambda: page.tiles() == ["C-ST-0", "", "C-ST-7"] + [""] * 6, 5,
              "the commander's wall on the display")
    # clicking a tile on the display changes nothing
    page.click_css('.cc-vw-tile[data-slot="1"]')
    time.sleep(0.3)
    assert page.js("return document.querySelectorAll('.cc-vw-tile.is-picked').length") == 0
    assert page.duo.get_logs() == []


def test_vw104_opening_an_event_on_the_wall_focuses_the_video_wall(page: VideoPage,
                                                                   stack: Stack) -> None:
    browser_sign_in(page.duo, stack.client, "commander")
    expected = publish_cameras(stack)
    page.open()
    stack.publish("event", make_event("EV-PANEL", 3, title="占道经营"))
    page.wait(lambda: page.row("EV-PANEL"), 5, "the event's row")
    page.driver.find_element("css selector", '.cc-event-row[data-id="EV-PANEL"]').click()
    wall = page.wait(lambda: (w := page.server_wall())["event_id"] == "EV-PANEL" and w, 5,
                     "the video wall pointed at the event")
    # nobody's pinned tiles are touched; every video wall shows the event's cameras
    assert wall["tiles"] == [] and wall["by"] == "t-commander" and wall["focus_ts"] > 0
    cams = page.js("return window.ccwall.api('GET', '/video/cameras?event_id=EV-PANEL')")
    assert [c["id"] for c in cams["cameras"]] == expected
    assert page.duo.get_logs() == []


def test_vw105_kiosk_url_opens_the_video_wall(dash_duo: Any, stack: Stack) -> None:
    """A kiosk on /video?display=TOKEN is signed in and stays on /video."""
    from dashboard.access.auth import Auth

    token = Auth(stack.client, stack.settings.prefix, stack.settings).add_display("kiosk-vw")
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + f"/video?display={token}")
    wait_for(lambda: dash_duo.driver.execute_script(
        f"return document.querySelectorAll('#{ids.VW_GRID} > .cc-vw-tile').length") == 4, 10,
        "the video wall's tiles")
    assert dash_duo.driver.current_url.endswith("/video")
    assert dash_duo.get_logs() == []


DRAG_JS = """
const [src, dst] = arguments;
const dt = new DataTransfer();
const fire = (el, type) => el.dispatchEvent(new DragEvent(type, {bubbles: true,
  cancelable: true, dataTransfer: dt}));
fire(src, 'dragstart'); fire(dst, 'dragover'); fire(dst, 'drop'); fire(src, 'dragend');
"""


def test_vw106_drag_a_camera_onto_a_tile_swap_tiles_and_clear(page: VideoPage,
                                                              stack: Stack) -> None:
    browser_sign_in(page.duo, stack.client, "commander")
    publish_cameras(stack)
    page.open_video()
    page.cameras_in_store(11)
    page.wait(lambda: page.js("return !!document.querySelector('.cc-vw-cam[data-id=\"C-ST-6\"]')"),
              3, "the camera list")

    def drag(src_css: str, dst_css: str) -> None:
        find = page.driver.find_element
        page.js(DRAG_JS, find("css selector", src_css), find("css selector", dst_css))

    drag('.cc-vw-cam[data-id="C-ST-6"]', '.cc-vw-tile[data-slot="2"]')
    page.wait(lambda: page.tiles() == ["", "", "C-ST-6", ""], 3, "C-ST-6 dropped on tile 3")
    drag('.cc-vw-cam[data-id="C-ST-7"]', '.cc-vw-tile[data-slot="0"]')
    page.wait(lambda: page.tiles() == ["C-ST-7", "", "C-ST-6", ""], 3, "C-ST-7 on tile 1")
    # a tile dragged onto another: the two swap
    drag('.cc-vw-tile[data-slot="2"]', '.cc-vw-tile[data-slot="0"]')
    page.wait(lambda: page.tiles() == ["C-ST-6", "", "C-ST-7", ""], 3, "the swap")
    # a camera already on a tile, dropped on another: it moves (a camera is on one tile)
    drag('.cc-vw-cam[data-id="C-ST-6"]', '.cc-vw-tile[data-slot="3"]')
    page.wait(lambda: page.tiles() == ["", "", "C-ST-7", "C-ST-6"], 3, "the move")
    page.click_css('.cc-vw-tile[data-slot="2"] .cc-vw-tile-clear')
    page.wait(lambda: page.tiles() == ["", "", "", "C-ST-6"], 3, "tile 3 cleared")
    page.wait(lambda: page.server_wall()["tiles"] == [None, None, None, "C-ST-6"], 3,
              "the server's tiles")
    # one player per camera on screen, none left behind
    assert page.js("return window.ccwall.videowall.players") == 1
    assert page.duo.get_logs() == []
