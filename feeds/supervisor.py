"""The embedded stack's processes: each started as it would run in production and restarted
with backoff if it dies unasked; stopped together, and waited for until ready.

Two ingest processes run: one applies, the other stands by with the feed's last seconds and
takes over when the first dies (feeds/failover.py); pub/sub keeps nothing for later.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import redis

from dashboard.backoff import Backoff
from dashboard.config import ROOT, Settings
from dashboard.ops.health import missing, ready
from dashboard.store import Store

log = logging.getLogger("cc.app")


class Child:
    """One child process, restarted with backoff when it dies unasked."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.backoff = Backoff(0.5, 30.0)
        self.started = 0.0
        # The supervisor may restart us while main stops us: one at a time, and a stopped
        # child stays stopped (a restart after the stop would outlive the app).
        self.lock = threading.Lock()
        self.stopped = False

    def start(self) -> None:
        with self.lock:
            if self.stopped:
                return
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT)
            self.started = time.monotonic()

    def watch(self, stop: threading.Event) -> None:
        if self.proc is None or self.proc.poll() is None:
            if time.monotonic() - self.started > 60:
                self.backoff.reset()
            return
        wait = self.backoff.next()
        log.warning("%s exited with %s; restarting in %.1fs", self.name, self.proc.returncode,
                    wait)
        if not stop.wait(wait):
            self.start()

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            if self.proc and self.proc.poll() is None:
                self.proc.terminate()

    def join(self, timeout: float) -> None:
        if not self.proc:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(2)


class Supervisor:
    """The stack's children: started together, watched once a second, stopped together."""

    def __init__(self, settings: Settings, url: str, demo: bool) -> None:
        env = {**os.environ, "REDIS_URL": url, "CC_PREFIX": settings.prefix,
               "CC_WS_PORT": str(settings.ws_port), "CC_PORT": str(settings.port),
               "CC_HOST": settings.host}
        py = sys.executable
        # the pages: gunicorn, as production runs them; the demo's users are main's to make
        web = [py, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
               f"app:create_server(demo={demo})"]
        self.children = [Child("web", web, env),
                         Child("ingest-a", [py, "-m", "feeds.ingest"], env),
                         Child("ingest-b", [py, "-m", "feeds.ingest"], env),
                         Child("relay", [py, "-m", "feeds.relay"], env),
                         Child("watch", [py, "-m", "feeds.watch"], env)]
        if demo:
            self.children.append(Child("simulator", [py, "-m", "feeds.simulator"], env))
            self.children.append(Child("video", [py, "-m", "feeds.sim.video"], env))

    def start(self, stop: threading.Event) -> None:
        """Start every child, and a thread restarting those that die until `stop`."""
        for child in self.children:
            child.start()

        def supervise() -> None:
            while not stop.wait(1.0):
                for child in self.children:
                    child.watch(stop)

        threading.Thread(target=supervise, daemon=True, name="supervisor").start()

    def stop(self) -> None:
        for child in self.children:
            child.stop()
        for child in self.children:
            child.join(5)


def forget_heartbeats(store: Store) -> None:
    """The last run's heartbeats live on for 15 s (and the AOF brings them back): a quick
    restart would look ready before this run's ingest has subscribed."""
    store.r.delete(*(store.key(k) for k in ("ingest:hb", "ingest:standby", "relay:hb")))


def wait_ready(store: Store, stop: threading.Event, warn_after_s: float = 30.0) -> bool:
    """Until ingest is subscribed and the relay listens; False if stopped first."""
    started = time.monotonic()
    warned = False
    while not stop.is_set():
        now = int(time.time() * 1000)
        try:
            state = store.health()
        except (redis.RedisError, OSError):
            state = {"ingest": {}, "relay": {}}
        if ready(state, now):
            return True
        if not warned and time.monotonic() - started > warn_after_s:
            warned = True
            log.warning("still waiting for %s to start (see its log above)",
                        " and ".join(missing(state, now)))
        stop.wait(0.2)
    return False


def wait_http(host: str, port: int, stop: threading.Event, warn_after_s: float = 30.0) -> bool:
    """Until the web server answers a request (any status: health says `starting` with a 503
    while ingest or the relay are not ready); False if stopped first. A listening socket is
    not enough: gunicorn binds before its workers have loaded the app."""
    address = f"[{host}]" if ":" in host else host
    if address in ("0.0.0.0", "[::]"):
        address = "127.0.0.1" if address == "0.0.0.0" else "[::1]"
    url = f"http://{address}:{port}/api/health"
    started = time.monotonic()
    warned = False
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # an answer
        except OSError:  # refused, reset, timed out (URLError is one)
            pass
        if not warned and time.monotonic() - started > warn_after_s:
            warned = True
            log.warning("still waiting for the web server on %s (see its log above)", url)
        stop.wait(0.2)
    return False
