"""Fault drills: the real processes on loopback, a steady load, and a wall that resumes.

`Cluster` runs one Valkey (AOF, as `make run`) and `python -m feeds.ingest` twice, the relay
and the watch service as child processes; any of them can be SIGKILLed and restarted. `Load`
publishes new events (each its own id) and worker moves at a steady rate and keeps the ids of
the events some subscriber received (PUBLISH answered ≥ 1). `Wall` is a websocket client that
reads every frame, keeps the highest seq and, when its socket dies, reconnects with
`?since=` it, as the browser does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from dashboard.city import load_city
from dashboard.config import ROOT
from feeds.redis_server import EmbeddedRedis, free_port

from .auth_util import cookie_header, session_token
from .feeds.test_ingest import wait_for as wait

SERVICES = ("ingest-a", "ingest-b", "relay", "watch")
TS_BASE = int(time.time() * 1000)


class Cluster:
    """The stack's processes, each killable and restartable on its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.redis = EmbeddedRedis(folder / "redis", persist=True)
        self.ws_port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return self.redis.url

    def start(self) -> Cluster:
        self.redis.start()
        for name in SERVICES:
            self.spawn(name)
        client = self.client()
        wait(lambda: client.get("cc:ingest:lease") and client.exists("cc:ingest:standby")
             and client.exists("cc:relay:hb") and client.exists("cc:watch:hb"), 30,
             "the stack did not start")
        client.close()
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5)

    def spawn(self, name: str) -> None:
        module = "feeds.ingest" if name.startswith("ingest") else f"feeds.{name}"
        env = {**os.environ, "REDIS_URL": self.url, "CC_PREFIX": "cc:",
               "CC_WS_PORT": str(self.ws_port), "CC_HOST": "127.0.0.1",
               "CC_DATA_DIR": str(self.folder), "PYTHONPATH": str(ROOT)}
        log = (self.folder / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env,
                                            stdout=log, stderr=log)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)

    def active_ingest(self) -> str | None:
        """Which of ingest-a/-b holds the lease (its pid is in the lease's value), if any."""
        client = self.client()
        try:
            lease = client.get("cc:ingest:lease") or ""
        finally:
            client.close()
        pid = int(lease.split(":")[1]) if lease.count(":") >= 2 else -1
        return next((name for name, proc in self.procs.items()
                     if name.startswith("ingest") and proc.pid == pid), None)

    def restart_redis(self) -> None:
        """SIGKILL the server and start it again on its port with its data (AOF)."""
        proc = self.redis.process
        assert proc is not None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        self.redis = EmbeddedRedis(self.folder / "redis", port=self.redis.port, persist=True)
        self.redis.start()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(2)
        self.redis.stop()

    def log_tail(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class Load(threading.Thread):
    """`rate` messages a second: a new event every fifth message, worker moves between."""

    def __init__(self, url: str, rate: int = 200, severity: int = 4) -> None:
        super().__init__(daemon=True, name="load")
        self.url, self.rate, self.severity = url, rate, severity
        self.sent: list[str] = []  # event ids some subscriber received
        self.unsent = 0  # publishes that failed (Redis down) or reached nobody
        self.halt = threading.Event()
        self.tag = f"F{time.monotonic_ns() % 10**9}-"  # ids unique across drills
        grid = load_city().grids[0]
        self.lon, self.lat = grid.centroid

    def run(self) -> None:
        client: redis.Redis | None = None
        i = 0
        started = time.monotonic()
        while not self.halt.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while i < due and not self.halt.is_set():
                kind, message, event_id = self._message(i)
                try:
                    if client is None:
                        client = redis.Redis.from_url(self.url, socket_timeout=2,
                                                      socket_connect_timeout=1)
                    received = client.publish(f"cc:{kind}", json.dumps(message))
                except (redis.RedisError, OSError):
                    client = None
                    received = 0
                if event_id:
                    if received:
                        self.sent.append(event_id)
                    else:
                        self.unsent += 1
                i += 1
            time.sleep(0.005)

    def _message(self, i: int) -> tuple[str, dict[str, Any], str]:
        ts = int(time.time() * 1000)
        if i % 5 == 0:
            event_id = f"{self.tag}{i}"
            return "event", {"id": event_id, "type": "dispute", "severity": self.severity,
                             "lon": self.lon, "lat": self.lat, "ts": ts,
                             "title": f"drill {i}"}, event_id
        return "worker", {"id": f"W{i % 40}", "lon": self.lon + (i % 97) * 1e-5,
                          "lat": self.lat, "ts": ts, "status": "on_duty"}, ""

    def stop(self) -> list[str]:
        self.halt.set()
        self.join(5)
        return list(self.sent)


class Wall(threading.Thread):
    """A signed-in websocket client that resumes with `?since=` after any disconnect."""

    def __init__(self, url: str, ws_port: int) -> None:
        super().__init__(daemon=True, name="wall")
        client = redis.Redis.from_url(url, decode_responses=True)
        self.headers = cookie_header(session_token(client))
        client.close()
        self.ws_url = f"ws://127.0.0.1:{ws_port}/ws"
        self.seq = 0
        self.events: set[str] = set()
        self.snapshots = 0
        self.reconnects = 0
        self.backwards: list[tuple[int, int]] = []  # (previous, new) seq going back: a miss
        self.frame_times: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        wait_s = 0.1
        while not self.halt.is_set():
            query = f"?since={self.seq}" if self.seq else ""
            try:
                with connect(self.ws_url + query, additional_headers=self.headers,
                             max_size=None, open_timeout=2) as ws:
                    wait_s = 0.1
                    while not self.halt.is_set():
                        with contextlib.suppress(TimeoutError):
                            self._frame(json.loads(ws.recv(timeout=0.5)))
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                pass
            if self.halt.is_set():
                break
            self.reconnects += 1
            time.sleep(wait_s)
            wait_s = min(wait_s * 2, 2.0)

    def _frame(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "stats":
            return
        self.frame_times.append(time.monotonic())
        if kind == "snapshot":
            self.snapshots += 1
            self.seq = frame["seq"]
            self.events |= {e["id"] for e in frame["events"]}
            return
        if frame["seq"] <= self.seq:
            self.backwards.append((self.seq, frame["seq"]))
        self.seq = max(self.seq, frame["seq"])
        if kind == "delta" and frame["kind"] == "event":
            self.events.add(frame["data"]["id"])
        elif kind == "batch":
            self.events |= {item["data"]["id"] for item in frame["items"]
                            if item["kind"] == "event"}

    def frame_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first frame after it."""
        later = [t for t in self.frame_times if t > moment]
        return later[0] - moment if later else None

    def stop(self) -> None:
        self.halt.set()
        self.join(5)

