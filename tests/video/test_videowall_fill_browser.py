"""A video wall that is never blank (issue 17, item 3), in headless Chromium over the real
stack and the real demo video server: the tiles nobody pinned show the followed event's
cameras, else a tour of online cameras by area; a pinned tile stays until it is cleared.

Feature codes: vw110 a fresh wall with open level-II events shows the followed one's cameras
at once (the event panel's order), captions say why, screenshots at 1920×1080 and 3840×2160;
vw111 with no event the tour starts at once, by area, skipping offline and stream-less
cameras, moves on every interval and tears the old players down; vw112 a pinned tile stays
through a new urgent event and the tour's steps, "pin" keeps a toured camera, × gives the
tile back; vw113 the grid buttons and layout counts read right in zh and en.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feeds.redis_server import free_port
from feeds.sim.video import VideoServer, VideoService
from layouts import ids

from ..app.test_wall_browser import make_event, now_ms
from ..auth_util import browser_sign_in, make_user
from ..conftest import Stack, running_stack
from .test_videowall_browser import VideoPage, offset

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).parents[1] / "screenshots"
TOUR_S = 4


@pytest.fixture
def stack(redis_url: str) -> Iterator[Stack]:
    """The stack with a short tour, so a test sees it move."""
    with running_stack(redis_url, video_tour_s=TOUR_S) as live:
        yield live


@pytest.fixture
def video(stack: Stack) -> Iterator[VideoServer]:
    """The demo video server on three ports (an MJPEG tile holds one of six per port)."""
    settings = dataclasses.replace(stack.settings, sim_video_fps=4.0)
    server = VideoServer(VideoService(settings), "127.0.0.1",
                         [free_port(), free_port(), free_port()])
    with server:
        yield server


@pytest.fixture
def page(dash_duo: Any, stack: Stack) -> VideoPage:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    return VideoPage(dash_duo, stack)


def camera(video: VideoServer, cid: str, at: tuple[float, float], i: int,
           **extra: Any) -> dict[str, Any]:
    port = video.ports[i % len(video.ports)]
    return {"id": cid, "lon": at[0], "lat": at[1], "name": f"{cid} 路口", "online": True,
            "stream_type": "mjpeg", "stream_url": f"http://127.0.0.1:{port}/video/{cid}.mjpg",
            "ts": now_ms(), **extra}


def publish_scene(stack: Stack, video: VideoServer) -> list[str]:
    """A street of cameras 2 km east of the centre, a scene of three around the centre, and
    two the tour must skip (offline, no stream). Returns the scene's ranking."""
    cams = [camera(video, f"C-ST-{i}", offset(2000 + 40 * i, 0), i) for i in range(6)]
    cams += [
        camera(video, "C-F-COVER", offset(70, 0), 6, heading=270, fov=60, range_m=120),
        camera(video, "C-F-RING", offset(0, -110), 7, range_m=150),
        camera(video, "C-F-AWAY", offset(0, 25), 8, heading=0, fov=60, range_m=100),
        camera(video, "C-OFF", offset(2000, 60), 9, online=False),
        {**camera(video, "C-NONE", offset(2000, 90), 10), "stream_type": "none",
         "stream_url": None},
    ]
    for cam in cams:
        stack.publish("camera", cam)
    return ["C-F-COVER", "C-F-RING", "C-F-AWAY"]


class FillPage(VideoPage):
    def open_at(self, size: tuple[int, int], query: str = "") -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        self.driver.get(self.duo.server.url.rstrip("/") + "/video" + query)
        self.wait(lambda: self.js("return !!(window.ccwall && window.ccwall.connected)"), 10,
                  "the websocket to connect")

    def shown(self) -> list[dict[str, Any]]:
        return self.js("return window.ccwall.videowall.shown")

    def captions(self) -> list[str]:
        return self.js(f"""return Array.from(document.querySelectorAll(
            '#{ids.VW_GRID} .cc-vw-tile-src')).map(e => e.textContent)""")

    def shoot(self, name: str, size: tuple[int, int]) -> None:
        s = self.scroll_sizes()
        assert s["dw"] <= s["iw"] and s["dh"] <= s["ih"], (size, s)
        SHOTS.mkdir(exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / f"{name}-{size[0]}x{size[1]}.png"))

    def playing(self, n: int) -> None:
        self.wait(lambda: self.js("""return document.querySelectorAll(
            '.cc-vw-tile .cc-vplayer[data-state="playing"]').length""") >= n, 10,
            f"{n} tiles playing")


@pytest.fixture
def fill(page: VideoPage) -> FillPage:
    page.__class__ = FillPage
    return page  # type: ignore[return-value]


def test_vw110_a_fresh_wall_follows_an_open_level_two_event_at_once(
        fill: FillPage, stack: Stack, video: VideoServer) -> None:
    browser_sign_in(fill.duo, stack.client, "duty_officer")
    ranking = publish_scene(stack, video)
    # open before the page: an older level II on the street, a newer one at the scene, a
    # level III, and a closed level I — the newest open level II is followed
    stack.publish("event", make_event("EV-OLD-II", 2, at=offset(2000, 0), title="路口积水",
                                      ts=now_ms() - 60_000))
    stack.publish("event", make_event("EV-III", 3, at=offset(2100, 0)))
    stack.publish("event", make_event("EV-DONE", 1, status="closed"))
    stack.publish("event", make_event("EV-FIRE", 2, title="仓库起火"))
    for size in ((1920, 1080), (3840, 2160)):
        fill.open_video(size)
        # the first tiles the page shows are the event's cameras (no empty wall, no tour first)
        fill.wait(lambda: fill.tiles() != ["", "", "", ""], 5, "the first tiles")
        first = fill.tiles()
        assert first[:3] == ranking, first
        assert fill.js("return window.ccwall.videowall.followed") == "EV-FIRE"
        # the fourth tile: the tour (the scene has only three cameras)
        shown = fill.shown()
        assert [s["src"] for s in shown] == ["follow", "follow", "follow", "tour"]
        assert shown[3]["id"].startswith("C-ST-")
        captions = fill.captions()
        assert all(c.startswith("跟随事件：仓库起火") for c in captions[:3]), captions
        assert captions[3].startswith("轮巡："), captions
        event = fill.js(f"return document.getElementById('{ids.VW_EVENT}').textContent")
        assert "仓库起火" in event
        fill.playing(4)
        assert fill.js("return window.ccwall.videowall.players") == 4
        fill.shoot("videowall-follow", size)
    assert fill.duo.get_logs() == []


def test_vw111_with_no_event_the_tour_starts_and_moves_on(
        fill: FillPage, stack: Stack, video: VideoServer) -> None:
    browser_sign_in(fill.duo, stack.client, "commander")
    publish_scene(stack, video)
    stack.publish("event", make_event("EV-III", 3, at=offset(2100, 0)))  # not urgent
    fill.open_at((1920, 1080), "?lang=en")
    fill.wait(lambda: all(fill.tiles()), 5, "four toured tiles")
    shown = fill.shown()
    assert [s["src"] for s in shown] == ["tour"] * 4
    ids_now = [s["id"] for s in shown]
    assert len(set(ids_now)) == 4 and not {"C-OFF", "C-NONE"} & set(ids_now)
    assert all(c.startswith("Tour: ") for c in fill.captions()), fill.captions()
    event = fill.js(f"return document.getElementById('{ids.VW_EVENT}').textContent")
    assert event == f"Touring by area · every {TOUR_S} s"
    fill.playing(4)
    fill.shoot("videowall-tour-en", (1920, 1080))
    # the next step shows other cameras; the old players are gone with their connections
    seen = set(ids_now)
    for _ in range(3):
        before = fill.tiles()
        fill.wait(lambda before=before: fill.tiles() != before, TOUR_S + 3, "the next step")
        now = fill.tiles()
        assert len(set(now)) == 4 and not {"C-OFF", "C-NONE"} & set(now)
        seen |= set(now)
        assert fill.js("return window.ccwall.videowall.players") == 4
        assert fill.js("return window.ccwall.video.liveCount()") <= 4
    # only playable cameras came round, more of them than one screen holds
    playable = {f"C-ST-{i}" for i in range(6)} | {"C-F-COVER", "C-F-RING", "C-F-AWAY"}
    assert seen <= playable and len(seen) > 4
    assert fill.js("return document.querySelectorAll('.cc-vw-screen').length") == 4
    fill.open_at((3840, 2160), "?lang=en")
    fill.wait(lambda: all(fill.tiles()), 5, "four toured tiles at 4K")
    fill.playing(4)
    fill.shoot("videowall-tour-en", (3840, 2160))
    assert fill.duo.get_logs() == []


def test_vw112_a_pinned_tile_stays_until_it_is_cleared(
        fill: FillPage, stack: Stack, video: VideoServer) -> None:
    browser_sign_in(fill.duo, stack.client, "commander")
    ranking = publish_scene(stack, video)
    fill.open_video()
    fill.wait(lambda: all(fill.tiles()), 5, "the tour")
    # "pin" on the second tile keeps what the tour shows there (read after the click: the
    # tour may have stepped meanwhile)
    fill.click_css('.cc-vw-tile[data-slot="1"] .cc-vw-tile-pin')
    stored = fill.wait(lambda: (t := fill.server_wall()["tiles"])[:1] == [None] and t, 3,
                       "the pin stored")
    toured = stored[1]
    assert len(stored) == 2 and toured.startswith("C-")
    fill.wait(lambda: fill.tiles()[1] == toured, 3, "the pinned camera on its tile")
    # a person's tile elsewhere (another screen): pinned too — another camera than the
    # toured one (the tour's pick depends on the clock; a wall never shows one camera twice)
    other = next(c for c in ("C-ST-5", "C-ST-4") if c != toured)
    client = stack.app.server.test_client()
    user, password = make_user(stack.client, "commander", "t-desk")
    client.post("/api/login", json={"username": user, "password": password})
    assert client.put("/api/video/wall", json={"tiles": [None, toured, None, other]}
                      ).status_code == 200
    fill.wait(lambda: fill.tiles()[3] == other, 3, "the other screen's pin")
    # a new level-I event: the unpinned tiles follow it, the pinned ones stay
    stack.publish("event", make_event("EV-FIRE", 1, title="仓库起火"))
    # (the toured camera pinned may be one of the event's: it is not shown twice)
    follow = [c for c in ranking if c != toured]
    expect = [follow[0], toured, follow[1], other]
    # (the tour may show those very cameras there already: wait for why, not only what)
    fill.wait(lambda: [(s["id"], s["src"]) for s in fill.shown()] == list(zip(
        expect, ["follow", "pin", "follow", "pin"], strict=True)), 5,
        "the event around the pinned tiles")
    assert fill.tiles() == expect
    assert fill.captions()[1].startswith("手动固定")
    # the tour's steps pass: still there
    time.sleep(TOUR_S + 1)
    assert fill.tiles() == expect
    # × gives the tile back: the event's next camera takes it
    fill.click_css('.cc-vw-tile[data-slot="1"] .cc-vw-tile-clear')
    fill.wait(lambda: fill.tiles()[:3] == ranking, 3, "the event's cameras in the tile")
    fill.wait(lambda: fill.server_wall()["tiles"] == [None, None, None, other], 3,
              "the unpin stored")
    assert fill.js("return window.ccwall.videowall.players") == 4
    fill.shoot("videowall-pinned", (1920, 1080))
    assert fill.duo.get_logs() == []


def test_vw113_counts_read_right_in_both_languages(fill: FillPage, stack: Stack) -> None:
    browser_sign_in(fill.duo, stack.client, "commander")
    base = fill.duo.server.url.rstrip("/")
    client = stack.app.server.test_client()
    user, password = make_user(stack.client, "commander", "t-saver")
    client.post("/api/login", json={"username": user, "password": password})
    for n in (1, 4):
        assert client.put(f"/api/video/layouts/L{n}", json={"grid": n, "tiles": []}
                          ).status_code == 200
    want = {"": (["单画面", "4画面", "9画面", "16画面"], ["单画面 · t-saver", "4画面 · t-saver"]),
            "?lang=en": (["1 tile", "4 tiles", "9 tiles", "16 tiles"],
                         ["1 tile · t-saver", "4 tiles · t-saver"])}
    for query, (buttons, metas) in want.items():
        fill.driver.get(base + "/video" + query)
        fill.wait(lambda: fill.js(
            "return document.querySelectorAll('.cc-vw-layout-meta').length") == 2, 5,
            "the saved layouts")
        assert fill.js(f"""return Array.from(document.querySelectorAll(
            '#{ids.VW_GRIDS} button')).map(b => b.textContent)""") == buttons
        assert fill.js("""return Array.from(document.querySelectorAll('.cc-vw-layout-meta'))
            .map(e => e.textContent)""") == metas
    assert fill.duo.get_logs() == []
