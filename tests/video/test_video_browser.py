"""The video player and the event panel's live tiles in headless Chromium over the real stack
(ingest and relay in threads on the test Valkey, the Dash app with sign-in) and the real demo
video server (`feeds.sim.video`, its ports in a thread).

Feature codes: vid110 a covering camera's demo MJPEG plays in the event panel with moving
frames, the panel fits a 1920×1080 and a 3840×2160 wall, and the streams stop when another
event is selected and when the panel closes; vid111 an unreachable stream shows no signal and
retries while the page keeps updating, a camera the feed calls offline opens no connection;
vid112 an HLS camera plays through hls.js served by the app; vid113 a frozen MJPEG stream is
reopened once quietly, then shows no signal and retries; tile grids keep nothing they drop.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboard.i18n import t
from feeds.redis_server import free_port
from feeds.sim.video import VideoServer, VideoService
from layouts import ids

from ..app.test_wall_browser import make_event, now_ms
from ..command.test_command_browser import Panel, offset, open_as, publish_units
from ..conftest import Stack

pytestmark = pytest.mark.browser


@pytest.fixture
def video(stack: Stack) -> Iterator[VideoServer]:
    """The demo video server on two ports (names from the test Valkey)."""
    settings = dataclasses.replace(stack.settings, sim_video_fps=6.0)
    server = VideoServer(VideoService(settings), "127.0.0.1", [free_port(), free_port()])
    with server:
        yield server


@pytest.fixture
def panel(dash_duo: Any, stack: Stack) -> Panel:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    return Panel(dash_duo, stack)


def base(video: VideoServer, i: int = 0) -> str:
    return f"http://127.0.0.1:{video.ports[i % len(video.ports)]}/video"


def camera(cid: str, at: tuple[float, float], url: str | None, kind: str = "mjpeg",
           **extra: Any) -> dict[str, Any]:
    return {"id": cid, "lon": at[0], "lat": at[1], "name": f"测试探头{cid[-2:]}",
            "stream_url": url, "stream_type": kind, "online": True, "ts": now_ms(), **extra}


def tiles(panel: Panel) -> list[dict[str, Any]]:
    """The panel's tiles in order: camera, state, type, badge and distance text."""
    return panel.js(f"""
        return Array.from(document.querySelectorAll('#{ids.VIDEO_TILES} > .cc-vt'))
          .map(t => {{ const p = t.querySelector('.cc-vplayer');
            return p ? {{camera: p.dataset.camera, state: p.dataset.state, type: p.dataset.type,
                        covers: !t.querySelector('.cc-vt-covers').hidden,
                        dist: t.querySelector('.cc-vt-dist').textContent,
                        text: p.textContent}} : {{empty: true}}; }});
    """)


def state_of(panel: Panel, cid: str) -> str | None:
    return panel.js("const p = document.querySelector("
                    "`.cc-vplayer[data-camera=\"${arguments[0]}\"]`);"
                    "return p ? p.dataset.state : null", cid)


def live_media(panel: Panel) -> list[str]:
    """Every <img>/<video> in the page that still has a stream source."""
    return panel.js("""
        return Array.from(document.querySelectorAll('img, video'))
          .map(m => m.currentSrc || m.getAttribute('src') || '')
          .filter(s => s && !s.startsWith('data:'));
    """)


def wait_streams(video: VideoServer, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while video.service.streams != n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{video.service.streams} MJPEG streams open, expected {n}")
        time.sleep(0.05)


def test_vid110_demo_mjpeg_plays_in_the_event_panel(panel: Panel, stack: Stack,
                                                     video: VideoServer) -> None:
    stack.publish("event", make_event("EV-CAM", 3, type="fire", title="仓库起火",
                                      at=offset(0, 0)))
    stack.publish("event", make_event("EV-FAR", 4, type="garbage", at=offset(3000, 2500)))
    # two that see the spot (facing it, in range), one looking away, one snapshot camera
    stack.publish("camera", camera("CAM-V01", offset(-90, 0), f"{base(video, 0)}/CAM-V01.mjpg",
                                   heading=90, fov=60, range_m=200))
    stack.publish("camera", camera("CAM-V02", offset(0, 160), f"{base(video, 1)}/CAM-V02.mjpg",
                                   heading=180, fov=50, range_m=250))
    stack.publish("camera", camera("CAM-V03", offset(60, 40), f"{base(video, 0)}/CAM-V03.jpg",
                                   "image", heading=0, fov=40, range_m=100))
    stack.publish("camera", camera("CAM-V04", offset(250, -200),
                                   f"{base(video, 1)}/CAM-V04.mjpg", heading=90, fov=40,
                                   range_m=100))
    stack.publish("camera", camera("CAM-V09", offset(3000, 2400),
                                   f"{base(video, 0)}/CAM-V09.mjpg"))
    publish_units(stack)  # the panel as a commander sees it: units and plans below the video
    open_as(panel, "commander")
    panel.wait(lambda: panel.js("return window.ccwall.state.cameras") >= 5, 5, "the cameras")
    panel.select("EV-CAM")

    # covering ones first (nearest first), then the others by distance; all play at once
    panel.wait(lambda: [x.get("state") for x in tiles(panel)] == ["playing"] * 4, 10,
               "four playing tiles")
    shown = tiles(panel)
    assert [x["camera"] for x in shown] == ["CAM-V01", "CAM-V02", "CAM-V03", "CAM-V04"]
    assert [x["covers"] for x in shown] == [True, True, False, False]
    assert [x["type"] for x in shown] == ["mjpeg", "mjpeg", "image", "mjpeg"]
    assert shown[0]["dist"] == t("cmd.dist_m", n=90) and "测试探头01" in shown[0]["text"]
    assert panel.js("return window.ccwall.video.panelSource()") == "event"
    wait_streams(video, 3)

    # moving frames: two pictures of the first tile a moment apart differ
    tile = panel.driver.find_element("css selector", '.cc-vplayer[data-camera="CAM-V01"]')
    first = tile.screenshot_as_png
    time.sleep(1.2)
    second = tile.screenshot_as_png
    assert first != second
    assert state_of(panel, "CAM-V01") == "playing"

    # the panel with its video fits the wall, at 1920×1080 and on a 4K wall
    for size in ((3840, 2160), (1920, 1080)):
        panel.open(size=size)
        panel.select("EV-CAM")
        panel.wait(lambda: state_of(panel, "CAM-V01") == "playing", 10, "the first tile")
        fits = panel.js(f"""
            const p = document.getElementById('{ids.DETAIL}').getBoundingClientRect();
            const g = document.getElementById('{ids.VIDEO_TILES}').getBoundingClientRect();
            const m = document.querySelector('.cc-map-wrap').getBoundingClientRect();
            const t = document.querySelector('#{ids.VIDEO_TILES} .cc-vt').getBoundingClientRect();
            const units = document.querySelectorAll('#{ids.CMD_NEARBY} > li');
            const list = document.getElementById('{ids.CMD_NEARBY}').closest('section')
              .getBoundingClientRect();  // the section clips the list
            const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
            return {{inside: g.top >= p.top && g.bottom <= p.bottom && p.bottom <= m.bottom + 1,
                     tile: [t.width / rem, t.height / rem],
                     rows: Array.from(units).filter(li => li.getBoundingClientRect().bottom
                                                          <= list.bottom + 1).length,
                     cut: Array.from(units).filter(li => {{
                       const r = li.getBoundingClientRect();
                       return r.top < list.bottom - 1 && r.bottom > list.bottom + 1; }}).length,
                     rowRem: units.length ? units[0].getBoundingClientRect().height / rem : 0,
                     list: [list.top / rem, list.bottom / rem]}};""")
        assert fits["inside"], (size, fits)
        # tiles big enough to see a scene (16:9), and the nearest units still listed
        assert fits["tile"][0] >= 10 and abs(fits["tile"][0] / fits["tile"][1] - 16 / 9) < 0.05, \
            (size, fits)
        assert fits["rows"] >= 3, (size, fits)
        panel.shot("video-panel")  # also asserts no scrollbars

    # another event: its own cameras play, the first event's streams end
    panel.select("EV-FAR")
    panel.wait(lambda: [x.get("camera") for x in tiles(panel) if not x.get("empty")]
               == ["CAM-V09"], 5, "the far event's one camera")
    panel.wait(lambda: state_of(panel, "CAM-V09") == "playing", 10, "CAM-V09 playing")
    wait_streams(video, 1)

    # a map selection sent to the panel replaces the event's cameras
    assert panel.js("return window.ccwall.video.showInPanel(['CAM-V02', 'CAM-V04', 'nope'])")
    panel.wait(lambda: [x.get("camera") for x in tiles(panel) if not x.get("empty")]
               == ["CAM-V02", "CAM-V04"], 3, "the map selection")
    panel.wait(lambda: [state_of(panel, c) for c in ("CAM-V02", "CAM-V04")]
               == ["playing", "playing"], 10, "the selection playing")
    wait_streams(video, 2)

    # closing the panel stops every stream: nothing left with a live source, server side too
    panel.click(ids.DETAIL_CLOSE)
    panel.wait(lambda: not panel.visible(ids.DETAIL), 3, "the panel to close")
    panel.wait(lambda: live_media(panel) == [], 2, "no <img>/<video> with a stream")
    wait_streams(video, 0)
    assert panel.js("return window.ccwall.video.liveCount()") == 0
    assert panel.duo.get_logs() == []


def test_vid111_dead_and_offline_cameras_never_freeze_the_page(panel: Panel, stack: Stack,
                                                               video: VideoServer) -> None:
    dead_port = free_port()  # nothing listens there: connections are refused
    listener = socket.socket()  # counts any connection made to the offline camera
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    off_url = f"http://127.0.0.1:{listener.getsockname()[1]}/video/CAM-OFF.mjpg"
    dead_url = f"http://127.0.0.1:{dead_port}/video/CAM-DEAD.mjpg"
    try:
        stack.publish("event", make_event("EV-DARK", 2, type="fire", at=offset(0, 0)))
        stack.publish("camera", camera("CAM-DEAD", offset(-50, 0), dead_url, heading=90,
                                       fov=60, range_m=150))
        stack.publish("camera", camera("CAM-OFF", offset(0, 70), off_url, online=False,
                                       heading=180, fov=60, range_m=150))
        stack.publish("camera", camera("CAM-OK", offset(80, 80), f"{base(video)}/CAM-OK.mjpg"))
        open_as(panel, "commander")
        panel.wait(lambda: panel.js("return window.ccwall.state.cameras") >= 3, 5,
                   "the cameras")
        panel.select("EV-DARK")
        panel.js("""
            window.__states = [];
            const grid = document.getElementById(arguments[0]);
            new MutationObserver(ms => ms.forEach(m => {
              const d = m.target.dataset;
              if (d.camera === 'CAM-DEAD') window.__states.push(d.state);
            })).observe(grid, {subtree: true, attributes: true, attributeFilter: ['data-state']});
        """, ids.VIDEO_TILES)
        panel.wait(lambda: state_of(panel, "CAM-DEAD") == "nosignal", 8, "no signal")
        assert state_of(panel, "CAM-OFF") == "offline"
        panel.wait(lambda: state_of(panel, "CAM-OK") == "playing", 10, "the live camera")
        texts = {x["camera"]: x["text"] for x in tiles(panel) if not x.get("empty")}
        assert t("video.state.nosignal") in texts["CAM-DEAD"]
        assert t("video.state.offline") in texts["CAM-OFF"]

        # the rest of the page goes on: the clock ticks, a new event arrives
        clock = panel.text(ids.CLOCK_TIME)
        stack.publish("event", make_event("EV-NEXT", 4, type="noise", at=offset(400, 300)))
        panel.wait(lambda: panel.row("EV-NEXT"), 5, "the next event's row")
        panel.wait(lambda: panel.text(ids.CLOCK_TIME) != clock, 3, "the clock to tick")
        # the dead camera is tried again (2 s backoff with jitter) and fails again
        panel.wait(lambda: panel.js("return window.__states").count("nosignal") >= 1
                   and "loading" in panel.js("return window.__states"), 6, "a retry")
        panel.wait(lambda: state_of(panel, "CAM-DEAD") == "nosignal", 8, "no signal again")
        assert state_of(panel, "CAM-OK") == "playing"

        # the offline camera never opened a connection
        with pytest.raises(BlockingIOError):
            listener.accept()

        # the feed says it is back: it plays (the demo server serves every id)
        stack.publish("camera", {"id": "CAM-OFF", "lon": offset(0, 70)[0],
                                 "lat": offset(0, 70)[1], "online": True, "ts": now_ms(),
                                 "stream_url": f"{base(video)}/CAM-OFF.mjpg"})
        panel.wait(lambda: state_of(panel, "CAM-OFF") == "playing", 10, "the camera back")
    finally:
        listener.close()
    # the only console lines are the refused connections to the dead camera
    logs = panel.duo.get_logs()
    assert logs and all(dead_url in e["message"] for e in logs), logs


def current_time(panel: Panel, cid: str) -> float | None:
    return panel.js("const v = document.querySelector("
                    "`.cc-vplayer[data-camera=\"${arguments[0]}\"] video`);"
                    "return v ? v.currentTime : null", cid)


def test_vid112_hls_and_mp4_cameras_play(panel: Panel, stack: Stack, video: VideoServer) -> None:
    stack.publish("event", make_event("EV-HLS", 3, type="traffic_accident", at=offset(0, 0)))
    stack.publish("camera", camera("CAM-H01", offset(-60, 0),
                                   f"{base(video)}/CAM-H01/index.m3u8", "hls", heading=90,
                                   fov=60, range_m=150))
    stack.publish("camera", camera("CAM-M01", offset(0, 80), f"{base(video, 1)}/CAM-M01.webm",
                                   "webm", heading=180, fov=60, range_m=150))
    open_as(panel, "commander")
    panel.wait(lambda: panel.js("return window.ccwall.state.cameras") >= 2, 5, "the cameras")
    assert not panel.js("return !!window.Hls")  # hls.js is loaded on first use only
    panel.select("EV-HLS")
    panel.wait(lambda: state_of(panel, "CAM-H01") == "playing", 15, "the HLS camera playing")
    # through hls.js, fetched from the app itself (never a CDN)
    assert panel.js("return !!window.Hls && window.Hls.version") == "1.7.4"
    scripts = panel.js("return performance.getEntriesByType('resource')"
                       ".map(e => e.name).filter(n => n.includes('hls'))")
    assert scripts and all(s.startswith(panel.duo.server_url.rstrip("/") + "/vendor/")
                           for s in scripts if s.endswith(".js")), scripts
    start = current_time(panel, "CAM-H01")
    panel.wait(lambda: (current_time(panel, "CAM-H01") or 0) > (start or 0) + 1.0, 8,
               "the HLS picture to move on")
    panel.wait(lambda: state_of(panel, "CAM-M01") == "playing", 10, "the webm clip playing")
    t0 = current_time(panel, "CAM-M01")
    panel.wait(lambda: current_time(panel, "CAM-M01") != t0, 5, "the webm clip to move on")
    # the panel closes: the players and hls.js let go of everything
    panel.click(ids.DETAIL_CLOSE)
    panel.wait(lambda: live_media(panel) == [], 3, "no <video> with a stream left")
    assert panel.js("return window.ccwall.video.liveCount()") == 0
    assert panel.duo.get_logs() == []


class Frozen:
    """A camera whose MJPEG stream sends one picture and then nothing while the connection
    stays open (a hung encoder). CORS like the demo server, so the player can see the pixels."""

    def __init__(self, jpeg: bytes) -> None:
        self.connections = 0
        self.stop = threading.Event()
        frozen = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                frozen.connections += 1
                self.send_response(200)
                self.send_header("Content-Type",
                                 "multipart/x-mixed-replace; boundary=frozen-frame")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                part = (b"--frozen-frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                # twice: Chromium shows the first part once the second one has come
                self.wfile.write(part + part)
                self.wfile.flush()
                frozen.stop.wait(60)
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/video/CAM-F01.mjpg"

    def __enter__(self) -> Frozen:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def test_vid113_a_frozen_stream_is_reopened_then_shows_no_signal(panel: Panel, stack: Stack,
                                                                 video: VideoServer) -> None:
    with urllib.request.urlopen(f"{base(video)}/CAM-F01.jpg", timeout=5) as res:
        jpeg = res.read()
    with Frozen(jpeg) as frozen:
        stack.publish("event", make_event("EV-FROZEN", 3, type="fire", at=offset(0, 0)))
        stack.publish("camera", camera("CAM-F01", offset(-40, 0), frozen.url, heading=90,
                                       fov=60, range_m=150))
        open_as(panel, "commander")
        panel.wait(lambda: panel.js("return window.ccwall.state.cameras") >= 1, 5, "the camera")
        # the same rules, on a shorter clock (set before any player starts its watchdog)
        panel.js("Object.assign(window.ccwall.video.K, {stallMs: 2000, tickMs: 500,"
                 " loadTimeoutMs: 4000})")
        panel.select("EV-FROZEN")
        panel.wait(lambda: state_of(panel, "CAM-F01") == "playing", 8, "the first picture")
        panel.js("""
            window.__states = [];
            new MutationObserver(
              ms => ms.forEach(m => window.__states.push(m.target.dataset.state)))
              .observe(document.querySelector('.cc-vplayer[data-camera="CAM-F01"]'),
                       {attributes: true, attributeFilter: ['data-state']});
        """)
        # reopened once without a "connecting" flash, then no signal; then the retries
        panel.wait(lambda: "nosignal" in panel.js("return window.__states"), 12, "no signal")
        assert panel.js("return window.__states")[0] == "nosignal"
        assert frozen.connections >= 2
        panel.wait(lambda: frozen.connections >= 3 and
                   panel.js("return window.__states").count("nosignal") >= 2, 15,
                   "a retry that finds it frozen again")
        assert state_of(panel, "CAM-F01") in ("nosignal", "loading", "playing")

    # tile grids keep nothing they drop: 300 changes of cameras and sizes, then destroy
    churn = panel.js("""
        const V = window.ccwall.video, before = V.liveCount();
        const box = document.createElement('div');
        const g = V.tiles(box, {size: 4});
        let most = 0;
        for (let i = 0; i < 300; i++) {
          const cams = [];
          for (let j = 0; j < 6; j++) {
            const n = (i * 7 + j * 3) % 10;
            cams.push({id: 'X' + n, name: 'x' + n, online: n % 3 !== 0 ? false : true,
                       stream_type: 'none'});
          }
          if (i % 50 === 25) g.size(i % 100 === 25 ? 9 : 1);
          g.set(cams);
          most = Math.max(most, box.children.length, V.liveCount() - before);
        }
        g.size(4);
        g.set([]);
        const empty = box.querySelectorAll('.cc-vplayer').length;
        g.destroy();
        return {most: most, empty: empty, left: box.children.length,
                live: V.liveCount() - before};
    """)
    assert churn == {"most": 9, "empty": 0, "left": 0, "live": 0}, churn
    assert panel.duo.get_logs() == []
