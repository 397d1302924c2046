"""The demo video server: moving pictures for the simulator's cameras, no external source.

    python -m feeds.sim.video [--host H] [--port P] [--spread N] [--fps F]

Serves docs/VIDEO.md's paths on `spread` ports from `port` (a browser opens at most six
connections per host:port and each MJPEG tile holds one): `/video/<id>.mjpg` (a street
scene with the camera's name and a running clock, `feeds/sim/scene.py`), `/video/<id>.jpg`
(one frame), `/video/<id>/index.m3u8` (a live HLS playlist looping the committed clip in
data/video), `/video/<id>.mp4` and `.webm` (the clip), `/health`.

One render per camera per frame tick is shared by every viewer. Names come from
`Pstate:camera`, cached; when Redis is away the id stands in and the pictures go on.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import re
import signal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import redis

from dashboard.config import ROOT, Settings
from dashboard.connect import open_redis
from dashboard.ops import logs
from feeds.sim.scene import Renderer

log = logging.getLogger("feeds.sim.video")

CLIP_DIR = ROOT / "data" / "video"
STREAMS_MAX = 96  # concurrent MJPEG streams (all ports); more get 503
FRAMES_MAX = 256  # cameras whose latest frame is kept
NAMES_MAX = 4096  # camera names cached
NAME_TTL_S = 30.0  # a renamed camera shows its new name within this
UNKNOWN_TTL_S = 5.0  # a camera not (yet) in Pstate:camera
REDIS_RETRY_S = 5.0  # after Redis failed, ids stand in for names this long before a retry
WRITE_TIMEOUT_S = 10.0  # a viewer that stops reading is dropped after this
HLS_WINDOW = 4  # segments in the live playlist
BOUNDARY = "ccframe"
_ID = re.compile(r"[^/\x00-\x1f]{1,128}")
Clock = Callable[[], float]


class Names:
    """Camera names from `Pstate:camera`, cached (bounded, TTL); never raises."""

    def __init__(self, redis_url: str | None, prefix: str, *, ttl: float = NAME_TTL_S,
                 max_entries: int = NAMES_MAX) -> None:
        self.key = f"{prefix}state:camera"
        self.ttl, self.max_entries = ttl, max_entries
        self._client = open_redis(
            redis_url, socket_connect_timeout=0.5, socket_timeout=1.0) if redis_url else None
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down = False

    def get(self, cam_id: str) -> str | None:
        """The camera's name, or None (unknown camera, or Redis unreachable)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(cam_id)
            if hit is not None:
                self._cache.move_to_end(cam_id)
                if now < hit[1] or now < self._down_until:
                    return hit[0]
            elif now < self._down_until:
                return None
        name = self._fetch(cam_id, hit[0] if hit else None)
        # An unknown camera is asked again soon: its record may be on its way.
        ttl = self.ttl if name is not None else min(self.ttl, UNKNOWN_TTL_S)
        with self._lock:
            self._cache[cam_id] = (name, time.monotonic() + ttl)
            self._cache.move_to_end(cam_id)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return name

    def _fetch(self, cam_id: str, old: str | None) -> str | None:
        if self._client is None:
            return None
        try:
            raw = self._client.hget(self.key, cam_id)
        except redis.RedisError as exc:
            with self._lock:
                if not self._down:  # said once per outage, not once per retry
                    log.warning("video: camera names unavailable (%s); ids shown for now", exc)
                self._down, self._down_until = True, time.monotonic() + REDIS_RETRY_S
            return old
        if self._down:
            self._down = False
            log.info("video: camera names available again")
        if raw is None:
            return None
        try:
            name = orjson.loads(raw).get("name")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return (name.strip()[:200] or None) if isinstance(name, str) else None

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class Frames:
    """The latest JPEG of each camera: one render per camera per tick, whoever asks."""

    def __init__(self, renderer: Renderer, names: Names, fps: float, *,
                 max_cameras: int = FRAMES_MAX) -> None:
        self.renderer, self.names, self.fps = renderer, names, fps
        self.max_cameras = max_cameras
        self.rendered = 0  # a counter, for tests and the bench
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def tick(self, now: float) -> int:
        return math.floor(now * self.fps)

    def jpeg(self, cam_id: str, now: float) -> bytes:
        """The frame of `cam_id` for the tick `now` falls in."""
        tick = self.tick(now)
        with self._lock:
            entry = self._entries.get(cam_id)
            if entry is None:
                entry = self._entries[cam_id] = _Entry(threading.Lock())
                while len(self._entries) > self.max_cameras:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(cam_id)
        with entry.lock:  # the other viewers of this camera wait for this one render
            if entry.tick != tick:
                name = self.names.get(cam_id)
                entry.jpeg = self.renderer.jpeg(cam_id, name, tick / self.fps)
                entry.tick = tick
                self.rendered += 1
            return entry.jpeg

    def __len__(self) -> int:
        return len(self._entries)


class StaticFrames(Frames):
    """One pre-encoded frame for every camera and tick: the bench's no-rendering baseline."""

    def __init__(self, renderer: Renderer, names: Names, fps: float, **kwargs: Any) -> None:
        super().__init__(renderer, names, fps, **kwargs)
        self._jpeg = renderer.jpeg("static", None, 0.0)

    def jpeg(self, cam_id: str, now: float) -> bytes:
        return self._jpeg


@dataclass
class _Entry:
    lock: threading.Lock
    tick: int = -1
    jpeg: bytes = b""


@dataclass(frozen=True)
class Segment:
    name: str
    duration: float
    data: bytes


class Clip:
    """The committed demo clip: MPEG-TS segments (listed in clip/index.m3u8), mp4, webm."""

    def __init__(self, folder: Path = CLIP_DIR) -> None:
        self.segments: list[Segment] = []
        listing = folder / "clip" / "index.m3u8"
        if listing.is_file():
            duration = 0.0
            for line in listing.read_text().splitlines():
                if line.startswith("#EXTINF:"):
                    duration = float(line[8:].split(",")[0])
                elif line and not line.startswith("#"):
                    self.segments.append(Segment(line, duration,
                                                 (folder / "clip" / line).read_bytes()))
        self.files = {ext: (folder / f"clip.{ext}").read_bytes()
                      for ext in ("mp4", "webm") if (folder / f"clip.{ext}").is_file()}
        self.target = math.ceil(max((s.duration for s in self.segments), default=2.0))

    def playlist(self, now: float, origin: float = 0.0, window: int = HLS_WINDOW) -> str:
        """A live playlist at wall-clock `now`: the clip looping for ever, `window` segments.

        Media sequence m plays clip segment m % n; a wrap back to segment 0 is a
        discontinuity (timestamps restart), counted in EXT-X-DISCONTINUITY-SEQUENCE. The
        count starts at `origin` (the server's start), not at 1970: hls.js keeps a sparse
        array indexed by discontinuity number and walks it from 0 on every reload, which
        with epoch-sized numbers (~10⁸) froze the page for seconds."""
        n = len(self.segments)
        period = sum(s.duration for s in self.segments) / n
        last = max(0, math.floor((now - origin) / period)) + window - 1  # full from the start
        first = last - window + 1
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{self.target}",
                 f"#EXT-X-MEDIA-SEQUENCE:{first}", f"#EXT-X-DISCONTINUITY-SEQUENCE:{first // n}"]
        for m in range(first, last + 1):
            seg = self.segments[m % n]
            if m % n == 0 and m != first:
                lines.append("#EXT-X-DISCONTINUITY")
            lines += [f"#EXTINF:{seg.duration:.3f},", f"/video/clip/{m % n}.ts"]
        return "\n".join(lines) + "\n"


class VideoService:
    """What every port serves: frames, the clip, names, and the stream count."""

    def __init__(self, settings: Settings, *, clock: Clock = time.time,
                 max_streams: int = STREAMS_MAX, names: Names | None = None,
                 renderer: Renderer | None = None, clip: Clip | None = None,
                 frames_max: int = FRAMES_MAX, static: bool = False) -> None:
        self.settings, self.clock, self.max_streams = settings, clock, max_streams
        self.fps = max(0.2, min(30.0, settings.sim_video_fps))
        self.names = names or Names(settings.redis_url, settings.prefix)
        self.renderer = renderer or Renderer(settings.timezone)
        kind = StaticFrames if static else Frames
        self.frames = kind(self.renderer, self.names, self.fps, max_cameras=frames_max)
        self.clip = clip or Clip()
        self.started = clock()  # where the live playlist's sequence numbers start
        self.stop = threading.Event()
        self.streams = 0
        self._lock = threading.Lock()

    def open_stream(self) -> bool:
        with self._lock:
            if self.streams >= self.max_streams:
                return False
            self.streams += 1
            return True

    def close_stream(self) -> None:
        with self._lock:
            self.streams -= 1


class Handler(BaseHTTPRequestHandler):
    """One request; `self.server.service` is the shared `VideoService`."""

    protocol_version = "HTTP/1.1"  # keep-alive for snapshots and segments
    server_version = "cc-video/1"
    service: VideoService

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(WRITE_TIMEOUT_S)
        self.service = self.server.service  # type: ignore[attr-defined]

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """The base class's errors (bad request line, unknown method) as JSON too."""
        self.close_connection = True
        self._json(code, {"error": message or HTTPStatus(code).phrase, "status": code},
                   head=self.command == "HEAD")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Range")
        # Chrome's Private Network Access: a secure page elsewhere may still use a demo here.
        self.send_header("Access-Control-Allow-Private-Network", "true")
        self._common(live=False)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    # -- routing -------------------------------------------------------------------------

    def _route(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        svc = self.service
        try:
            if path == "/health":
                self._json(200, {"status": "ok", "streams": svc.streams}, head)
            elif path.startswith("/video/clip/") and path.endswith(".ts"):
                self._segment(path[len("/video/clip/"):-3], head)
            elif path.startswith("/video/") and path.endswith("/index.m3u8"):
                cam = path[len("/video/"):-len("/index.m3u8")]
                if not _ID.fullmatch(cam) or not svc.clip.segments:
                    self._not_found(path, head)
                else:
                    body = svc.clip.playlist(svc.clock(), svc.started).encode()
                    self._bytes(body, "application/vnd.apple.mpegurl", head, live=True)
            elif path.startswith("/video/") and "." in path:
                cam, _, ext = path[len("/video/"):].rpartition(".")
                if not _ID.fullmatch(cam):
                    self._not_found(path, head)
                elif ext == "mjpg":
                    self._mjpeg(cam, head)
                elif ext == "jpg":
                    self._bytes(svc.frames.jpeg(cam, svc.clock()), "image/jpeg", head, live=True)
                elif ext in svc.clip.files:
                    self._file(svc.clip.files[ext], f"video/{ext}", head)
                else:
                    self._not_found(path, head)
            else:
                self._not_found(path, head)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the viewer went away; nothing to answer
        except Exception:  # a bug must cost one answer, never the server
            log.exception("video: error on %s", path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._json(500, {"error": "internal error; see the server log", "status": 500})

    # -- answers -------------------------------------------------------------------------

    def _common(self, live: bool) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        # Live answers change every time; the clip's files never do (until re-derived).
        self.send_header("Cache-Control", "no-store" if live else "public, max-age=300")

    def _bytes(self, body: bytes, ctype: str, head: bool, *, live: bool, status: int = 200,
               extra: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in extra:
            self.send_header(key, value)
        self._common(live)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, data: dict[str, Any], head: bool = False) -> None:
        self._bytes(orjson.dumps(data), "application/json", head, live=True, status=status)

    def _not_found(self, path: str, head: bool) -> None:
        self._json(404, {"error": f"no such video path: {path[:200]}", "status": 404}, head)

    def _segment(self, index: str, head: bool) -> None:
        segs = self.service.clip.segments
        if not index.isdigit() or int(index) >= len(segs):
            self._not_found(f"/video/clip/{index}.ts", head)
            return
        self._bytes(segs[int(index)].data, "video/mp2t", head, live=False)

    def _file(self, data: bytes, ctype: str, head: bool) -> None:
        """A whole file, or the one byte range asked for (Safari plays video only so)."""
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        size = len(data)
        if ranged is None or ranged.groups() == ("", ""):
            self._bytes(data, ctype, head, live=False, extra=[("Accept-Ranges", "bytes")])
            return
        lo, hi = ranged.groups()
        if lo == "":  # the last N bytes
            start, end = max(0, size - int(hi)), size - 1
        else:
            start, end = int(lo), min(size - 1, int(hi)) if hi else size - 1
        if start >= size or start > end:
            self._bytes(b"", ctype, head, live=False, status=416,
                        extra=[("Content-Range", f"bytes */{size}")])
            return
        self._bytes(data[start:end + 1], ctype, head, live=False, status=206,
                    extra=[("Accept-Ranges", "bytes"),
                           ("Content-Range", f"bytes {start}-{end}/{size}")])

    def _mjpeg(self, cam: str, head: bool) -> None:
        svc = self.service
        if not svc.open_stream():
            self._json(503, {"error": f"too many video streams (max {svc.max_streams})",
                             "status": 503}, head)
            return
        try:
            self.close_connection = True  # the stream ends only with the connection
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Connection", "close")
            self._common(live=True)
            self.end_headers()
            if head:
                return
            self.wfile.write(f"--{BOUNDARY}\r\n".encode())
            sent = None
            while not svc.stop.is_set():
                now = svc.clock()
                tick = svc.frames.tick(now)
                if tick != sent:  # every frame a new tick: consecutive frames always differ
                    jpeg = svc.frames.jpeg(cam, now)
                    # Each part ends with the next boundary, so a browser shows it at once
                    # instead of waiting for the following frame.
                    self.wfile.write(b"Content-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s"
                                     b"\r\n--%s\r\n" % (len(jpeg), jpeg, BOUNDARY.encode()))
                    sent = tick
                # until the next tick starts (bounded either way: a clock that jumps or stops)
                svc.stop.wait(min(1.0, max(0.005, (tick + 1) / svc.fps - svc.clock())))
        finally:
            svc.close_stream()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a viewer's thread never holds up the stop
    allow_reuse_address = True
    request_queue_size = 128
    service: VideoService


class VideoServer:
    """The service on several ports, each a threaded HTTP server in its own thread."""

    def __init__(self, service: VideoService, host: str, ports: Iterable[int]) -> None:
        self.service = service
        self.host = host
        self.servers: list[_Server] = []
        try:
            for port in ports:
                srv = _Server((host, port), Handler)
                srv.service = service
                self.servers.append(srv)
        except OSError:
            self.close()
            raise
        self._threads: list[threading.Thread] = []

    @property
    def ports(self) -> list[int]:
        return [int(s.server_address[1]) for s in self.servers]

    def start(self) -> VideoServer:
        for srv in self.servers:
            thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                                      name=f"video:{srv.server_address[1]}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Ends every stream (within one frame) and stops listening."""
        self.service.stop.set()
        stoppers = [threading.Thread(target=srv.shutdown) for srv in self.servers]
        for th in stoppers:  # all ports at once: each waits up to a poll interval
            th.start()
        for th in stoppers:
            th.join()
        self.close()

    def close(self) -> None:
        for srv in self.servers:
            srv.server_close()
        self.service.names.close()

    def __enter__(self) -> VideoServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def browser_host(host: str) -> str:
    """The host a browser on this machine uses to reach a server bound to `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    ap = argparse.ArgumentParser(prog="python -m feeds.sim.video",
                                 description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--host", default=settings.host, help="default: $CC_HOST")
    ap.add_argument("--port", type=int, default=settings.sim_video_port,
                    help="first port (default: $CC_SIM_VIDEO_PORT or 8060)")
    ap.add_argument("--spread", type=int, default=settings.sim_video_spread,
                    help="how many ports (default: $CC_SIM_VIDEO_SPREAD or 4)")
    ap.add_argument("--fps", type=float, default=settings.sim_video_fps,
                    help="MJPEG frames a second (default: $CC_SIM_VIDEO_FPS or 6)")
    ap.add_argument("--static", action="store_true",
                    help="bench baseline: stream one pre-encoded frame, render nothing")
    args = ap.parse_args(argv)
    if not 1 <= args.spread <= 64:
        ap.error("--spread must be between 1 and 64")
    if not args.fps > 0:
        ap.error("--fps must be positive")
    logs.configure(settings.log_format, "video")
    settings = replace(settings, host=args.host, sim_video_port=args.port,
                       sim_video_spread=args.spread, sim_video_fps=args.fps)
    server = VideoServer(VideoService(settings, static=args.static), args.host,
                         range(args.port, args.port + args.spread)).start()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    log.info("demo video on http://%s:%d-%d/video/<id>.mjpg (%g fps; clip: %d segments)",
             browser_host(args.host), args.port, args.port + args.spread - 1, args.fps,
             len(server.service.clip.segments))
    while not done.wait(0.5):
        pass
    server.stop()
    log.info("demo video stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
