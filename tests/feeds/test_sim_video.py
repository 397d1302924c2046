"""The demo video server over real sockets: MJPEG, snapshots, the HLS loop, files, limits."""

from __future__ import annotations

import http.client
import io
import json
import math
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from PIL import Image, ImageStat

from dashboard import protocol
from dashboard.city import load_city
from dashboard.config import ROOT, Settings
from feeds.redis_server import EmbeddedRedis, free_port
from feeds.sim.engine import Simulator, stream_url, video_bases
from feeds.sim.scene import Renderer, clock_text
from feeds.sim.video import BOUNDARY, CLIP_DIR, Clip, Frames, Names, VideoServer, VideoService

CAM = "37028301001310000001"
T0 = 1_779_069_600.0  # 2026-05-18 10:00 in Pingdu: daylight


class FakeClock:
    """Wall-clock time the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def serve(redis_url: str) -> Iterator[Callable[..., VideoServer]]:
    """Starts a video server on free ports against the test Valkey; stopped afterwards."""
    servers: list[VideoServer] = []

    def start(ports: int = 1, **kwargs: Any) -> VideoServer:
        settings = replace(Settings(), redis_url=redis_url, prefix="cc:", sim_video_fps=8.0)
        server = VideoServer(VideoService(settings, **kwargs), "127.0.0.1",
                             [free_port() for _ in range(ports)]).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def get(server: VideoServer, path: str, port_index: int = 0,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.ports[port_index], timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class Stream:
    """An MJPEG response read part by part."""

    def __init__(self, server: VideoServer, cam: str, port_index: int = 0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.ports[port_index], timeout=10)
        self.conn.request("GET", f"/video/{cam}.mjpg")
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}

    def frame(self) -> bytes:
        length = None
        while True:
            line = self.resp.fp.readline()
            assert line, "stream ended"
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            elif line == b"\r\n" and length is not None:
                return self.resp.fp.read(length)

    def close(self) -> None:
        self.resp.close()
        self.conn.close()


def jpeg(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()  # decodes all of it: a truncated JPEG fails here
    assert img.format == "JPEG"
    return img


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_vid001_mjpeg_frames_are_jpegs_and_move(serve: Callable[..., VideoServer]) -> None:
    server = serve()
    stream = Stream(server, CAM)
    try:
        assert stream.status == 200
        assert stream.headers["content-type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        assert stream.headers["access-control-allow-origin"] == "*"
        assert stream.headers["cache-control"] == "no-store"
        first, second = stream.frame(), stream.frame()
    finally:
        stream.close()
    a, b = jpeg(first), jpeg(second)
    assert a.size == b.size == (480, 270)
    assert first != second  # the street moves from one frame to the next


def test_vid002_snapshot(serve: Callable[..., VideoServer]) -> None:
    clock = FakeClock()
    server = serve(ports=2, clock=clock)
    for index in (0, 1):  # every port serves every path
        status, headers, body = get(server, f"/video/{CAM}.jpg?t=123", index)
        assert status == 200 and headers["content-type"] == "image/jpeg"
        assert headers["cache-control"] == "no-store"
        assert headers["access-control-allow-origin"] == "*"
        assert jpeg(body).size == (480, 270)
    clock.now += 5
    assert get(server, f"/video/{CAM}.jpg")[2] != body  # a snapshot later is another picture


def test_vid003_the_name_comes_from_redis(serve: Callable[..., VideoServer],
                                          r: redis.Redis) -> None:
    name = "平度市凤台街道-人民路与杭州路路口-球机"
    r.hset("cc:state:camera", CAM, json.dumps({"id": CAM, "name": name}, ensure_ascii=False))
    clock = FakeClock()
    server = serve(clock=clock)
    body = get(server, f"/video/{CAM}.jpg")[2]
    renderer = Renderer("Asia/Shanghai")
    at = math.floor(T0 * 8.0) / 8.0  # the start of the frame tick (8 fps here)
    assert body == renderer.jpeg(CAM, name, at)
    assert body != renderer.jpeg(CAM, None, at)
    assert renderer.osd(CAM, name, at) == (name, "2026-05-18 10:00:00")
    # an unknown camera still renders, its id as the name
    other = "37028301001310000999"
    assert get(server, f"/video/{other}.jpg")[2] == renderer.jpeg(other, None, at)
    assert renderer.osd(other, None, at)[0] == other


def test_vid004_redis_away_ids_stand_in(redis_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    settings = replace(Settings(), redis_url=dead, sim_video_fps=8.0)
    clock = FakeClock()
    with VideoServer(VideoService(settings, clock=clock), "127.0.0.1", [free_port()]) as server:
        status, _, body = get(server, f"/video/{CAM}.jpg")
        assert status == 200
        assert body == Renderer().jpeg(CAM, None, math.floor(T0 * 8) / 8)
        assert server.service.names.get(CAM) is None
        assert get(server, "/health")[2] == b'{"status":"ok","streams":0}'


def parse_playlist(text: str) -> dict[str, Any]:
    """A live media playlist checked against RFC 8216's rules that matter here."""
    lines = text.strip().split("\n")
    assert lines[0] == "#EXTM3U"
    tags: dict[str, str] = {}
    segments: list[dict[str, Any]] = []
    pending: dict[str, Any] = {"discontinuity": False}
    for line in lines[1:]:
        if line.startswith("#EXTINF:"):
            pending["duration"] = float(line[8:].rstrip(","))
        elif line == "#EXT-X-DISCONTINUITY":
            pending["discontinuity"] = True
        elif line.startswith("#"):
            key, _, value = line[1:].partition(":")
            tags[key] = value
        else:
            assert "duration" in pending, line
            segments.append({**pending, "uri": line})
            pending = {"discontinuity": False}
    assert "EXT-X-ENDLIST" not in tags  # live
    target = int(tags["EXT-X-TARGETDURATION"])
    assert all(round(s["duration"]) <= target for s in segments)
    return {"seq": int(tags["EXT-X-MEDIA-SEQUENCE"]),
            "disc": int(tags.get("EXT-X-DISCONTINUITY-SEQUENCE", "0")), "segments": segments}


def test_vid005_live_playlist_advances_and_wraps(serve: Callable[..., VideoServer]) -> None:
    clock = FakeClock()
    server = serve(clock=clock)
    clip = server.service.clip
    n = len(clip.segments)
    assert n >= 3 and sum(s.duration for s in clip.segments) >= 6
    seen: list[int] = []
    for _ in range(2 * n + 1):  # over two wraps of the clip, a segment at a time
        status, headers, body = get(server, f"/video/{CAM}/index.m3u8")
        assert status == 200 and headers["content-type"] == "application/vnd.apple.mpegurl"
        assert headers["cache-control"] == "no-store"
        pl = parse_playlist(body.decode())
        assert 3 <= len(pl["segments"]) <= 4
        disc = pl["disc"]
        for m, seg in enumerate(pl["segments"], pl["seq"]):
            assert seg["uri"] == f"/video/clip/{m % n}.ts"  # the clip in loop order
            assert seg["discontinuity"] == (m % n == 0 and m != pl["seq"])  # where it wraps
            disc += seg["discontinuity"]
            assert disc == m // n  # one discontinuity per wrap, counted across reloads
        seen.append(pl["seq"])
        clock.now += clip.segments[0].duration
    # one step per segment duration, counted from the server's start: hls.js walks an array
    # as long as the discontinuity number on every reload, so it must stay small
    assert seen == list(range(len(seen)))
    for i in range(n):
        status, headers, body = get(server, f"/video/clip/{i}.ts")
        assert status == 200 and headers["content-type"] == "video/mp2t"
        assert body[0] == 0x47 and len(body) % 188 == 0  # MPEG-TS packets
        assert body == (CLIP_DIR / "clip" / f"{i}.ts").read_bytes()


def test_vid006_clip_files(serve: Callable[..., VideoServer]) -> None:
    server = serve()
    mp4 = (CLIP_DIR / "clip.mp4").read_bytes()
    status, headers, body = get(server, f"/video/{CAM}.mp4")
    assert status == 200 and headers["content-type"] == "video/mp4" and body == mp4
    assert body[4:8] == b"ftyp" and body.find(b"moov") < body.find(b"mdat")  # faststart
    status, headers, body = get(server, f"/video/{CAM}.webm")
    assert status == 200 and headers["content-type"] == "video/webm"
    assert body[:4] == b"\x1a\x45\xdf\xa3"  # EBML
    # byte ranges (Safari asks for them)
    status, headers, body = get(server, f"/video/{CAM}.mp4", headers={"Range": "bytes=100-199"})
    assert status == 206 and body == mp4[100:200]
    assert headers["content-range"] == f"bytes 100-199/{len(mp4)}"
    status, _, body = get(server, f"/video/{CAM}.mp4", headers={"Range": "bytes=-50"})
    assert status == 206 and body == mp4[-50:]
    status, headers, _ = get(server, f"/video/{CAM}.mp4",
                             headers={"Range": f"bytes={len(mp4)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(mp4)}"


@pytest.mark.parametrize("path", ["/nope", "/video/", f"/video/{CAM}.png", "/video/clip/9.ts",
                                  "/video/clip/x.ts", "/video/a/b.mjpg", "/video/.jpg"])
def test_vid007_unknown_paths_are_json_404(serve: Callable[..., VideoServer], path: str) -> None:
    server = serve()
    status, headers, body = get(server, path)
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body)["status"] == 404 and "no such video path" in json.loads(body)["error"]


def test_vid015_other_methods_and_bad_requests_are_json(
        serve: Callable[..., VideoServer]) -> None:
    server = serve()
    conn = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=10)
    conn.request("POST", f"/video/{CAM}.jpg", body=b"x")
    resp = conn.getresponse()
    assert resp.status == 501 and resp.getheader("Content-Type") == "application/json"
    assert json.loads(resp.read())["status"] == 501
    conn.close()
    with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=10) as sock:
        sock.sendall(b"NOT A REQUEST\r\n\r\n")
        answer = sock.makefile("rb").read()
    # no valid HTTP version: answered HTTP/0.9 style (a body only), still JSON
    assert json.loads(answer.rpartition(b"\r\n\r\n")[2])["status"] == 400
    assert get(server, "/health")[0] == 200  # and it still serves


def test_vid008_streams_are_capped_and_a_closed_client_frees_its_slot(
        serve: Callable[..., VideoServer]) -> None:
    server = serve(ports=2, max_streams=2)
    first, second = Stream(server, CAM), Stream(server, "B", 1)
    try:
        first.frame(), second.frame()
        status, headers, body = get(server, "/video/C.mjpg")
        assert status == 503 and headers["content-type"] == "application/json"
        assert json.loads(body) == {"error": "too many video streams (max 2)", "status": 503}
        assert json.loads(get(server, "/health")[2]) == {"status": "ok", "streams": 2}
        first.close()  # the viewer leaves: the server notices at its next write
        assert wait_for(lambda: json.loads(get(server, "/health")[2])["streams"] == 1)
        third = Stream(server, "C")
        assert third.status == 200 and jpeg(third.frame()).size == (480, 270)
        third.close()
    finally:
        second.close()
    assert wait_for(lambda: server.service.streams == 0)


def test_vid009_caches_are_bounded_and_one_render_serves_all(redis_url: str) -> None:
    renderer = Renderer(backgrounds_max=3)
    names = Names(redis_url, "cc:", max_entries=5)
    frames = Frames(renderer, names, fps=6.0, max_cameras=4)
    for i in range(20):
        frames.jpeg(f"cam{i}", T0)
    assert len(frames) == 4 and renderer.cached() == 3 and len(names) == 5
    assert frames.rendered == 20
    # twelve viewers of one camera in the same tick: one render
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(frames.jpeg("shared", T0)))
               for _ in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert frames.rendered == 21 and len(set(results)) == 1 and len(results) == 12
    frames.jpeg("shared", T0 + 1 / 6)  # the next tick renders again
    assert frames.rendered == 22
    names.close()


def test_vid010_night_and_clock(redis_url: str) -> None:
    renderer = Renderer("Asia/Shanghai")
    day = renderer.frame(CAM, "x", T0)
    night = renderer.frame(CAM, "x", T0 + 11 * 3600)  # 21:00
    def mean(img: Image.Image) -> float:
        return float(ImageStat.Stat(img.convert("L")).mean[0])

    assert mean(night) < 0.7 * mean(day)
    assert clock_text(T0 + 11 * 3600 + 5, renderer.tz) == "2026-05-18 21:00:05"
    # another camera is another street
    assert renderer.frame("another", "x", T0).tobytes() != day.tobytes()


def test_vid011_sigterm_stops_the_process(redis_url: str) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "feeds.sim.video", "--port", str(port),
                             "--spread", "1"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"})
    try:
        def up() -> bool:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                return conn.getresponse().status == 200
            except OSError:
                return False
        assert wait_for(up, 20)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/video/{CAM}.mjpg")  # a stream open while it stops
        assert conn.getresponse().status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


CITY = load_city("pingdu")


def test_vid012_simulator_spreads_urls_over_ports() -> None:
    settings = replace(Settings(), sim_video_port=8060, sim_video_spread=4)
    sim = Simulator(CITY, seed=3, workers=50, cameras=400, settings=settings)
    cams = {m["id"]: m for m in (json.loads(raw) for ch, raw in sim.advance(10.0)
                                 if ch == "cc:camera")}
    assert len(cams) == 400
    ports: set[int] = set()
    types = set()
    for cam_id, msg in cams.items():
        assert isinstance(protocol.parse("camera", json.dumps(msg)), protocol.Accepted)
        types.add(msg["stream_type"])
        url = msg["stream_url"]
        if msg["stream_type"] == "none":
            assert url is None
            continue
        found = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/video/(.+)", url)
        assert found, url
        port = int(found.group(1))
        assert port == 8060 + zlib.crc32(cam_id.encode()) % 4  # a camera keeps its port
        ports.add(port)
        assert found.group(2) == {"mjpeg": f"{cam_id}.mjpg", "image": f"{cam_id}.jpg",
                                  "hls": f"{cam_id}/index.m3u8", "mp4": f"{cam_id}.mp4",
                                  "webm": f"{cam_id}.webm"}[msg["stream_type"]]
    assert ports == {8060, 8061, 8062, 8063}
    assert types == {"mjpeg", "image", "hls", "mp4", "webm", "none"}
    # CC_SIM_VIDEO_BASE: that one base for every camera
    one = video_bases(replace(settings, sim_video_base="http://cams.local:9000/v/"))
    assert one == ["http://cams.local:9000/v"]
    assert stream_url(one, CAM, "image") == f"http://cams.local:9000/v/{CAM}.jpg"
    assert video_bases(replace(settings, host="0.0.0.0", sim_video_spread=2)) == [
        "http://127.0.0.1:8060/video", "http://127.0.0.1:8061/video"]


def test_vid013_clip_on_disk_is_small_and_complete() -> None:
    clip = Clip()
    assert len(clip.segments) >= 3 and set(clip.files) == {"mp4", "webm"}
    total = sum(f.stat().st_size for f in Path(CLIP_DIR).rglob("*") if f.is_file())
    assert total < 1.5 * 1024 * 1024


def test_vid014_names_refresh_and_survive_redis_going_away(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, persist=False).start()
    client = redis.Redis.from_url(server.url)
    names = Names(server.url, "cc:", ttl=0.0)  # no caching: every call asks Redis
    try:
        assert names.get(CAM) is None  # not published yet
        client.hset("cc:state:camera", CAM, json.dumps({"id": CAM, "name": "南门"}))
        assert names.get(CAM) == "南门"
        client.hset("cc:state:camera", "bad", b"{not json")
        assert names.get("bad") is None
    finally:
        client.close()
        server.stop()
    assert names.get(CAM) == "南门"  # Redis gone: the last name known, no exception
    assert names.get("never-seen") is None
    names.close()
