"""More relays, more web servers (issue 15): two relays and two gunicorn web servers on one
Valkey behind Debian's nginx running deploy/nginx's own site, every process real. Walls and
HTTP go through nginx; one relay and one web server are SIGKILLed while walls are open and
events keep coming: every wall resumes through nginx on the surviving relay with `?since=`
and misses no sequence number, and every HTTP request through nginx still succeeds.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from websockets.sync.client import connect

from dashboard.config import ROOT
from feeds.redis_server import EmbeddedRedis, free_port
from layouts.theme import BOUNDARY_LEVELS

from .. import nginx_util
from ..auth_util import make_user
from ..faults_util import Load, Wall, wait

pytestmark = nginx_util.needs_nginx


@dataclass
class Farm:
    """Valkey, two ingests, the watch, two relays, two web servers and nginx (HTTP and TLS)."""

    folder: Path
    redis: EmbeddedRedis
    port: int  # nginx, HTTP
    tls_port: int
    cert: Path
    web_ports: list[int]
    relay_ports: list[int]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    nginx: subprocess.Popen[bytes] | None = None

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "REDIS_URL": self.redis.url, "CC_PREFIX": "cc:",
                "CC_HOST": "127.0.0.1", "CC_DATA_DIR": str(self.folder),
                "CC_TRUSTED_PROXIES": "1", "CC_DEMO_USERS": "0",
                "CC_WS_PUBLIC_URL": f"ws://127.0.0.1:{self.port}/ws",
                # two cores for the whole farm: one process of four threads per web server
                "CC_WEB_WORKERS": "1", "CC_WEB_THREADS": "4",
                "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}

    def spawn(self, name: str, argv: list[str], **extra: str) -> None:
        self.commands[name] = (argv, extra)
        log = (self.folder / f"{name}.log").open("ab")
        # its own process group: a web server is a gunicorn master and its worker, killed
        # together as a host would lose them
        self.procs[name] = subprocess.Popen([sys.executable, *argv], cwd=ROOT,
                                            env=self.env(**extra), stdout=log, stderr=log,
                                            start_new_session=True)

    def respawn(self, name: str) -> None:
        """Start a killed process again, as systemd would."""
        argv, extra = self.commands[name]
        self.spawn(name, argv, **extra)

    def relay_clients(self) -> dict[str, int]:
        """Walls per live relay process, by name (its pid is in its heartbeat's field)."""
        client = self.client()
        try:
            beats = client.hgetall("cc:relay:hb")
        finally:
            client.close()
        now = time.time() * 1000
        out = {}
        for name, proc in self.procs.items():
            for instance, value in beats.items():
                beat = json.loads(value)
                if instance.split(":")[1] == str(proc.pid) and now - beat["ts"] < 10_000:
                    out[name] = beat["clients"]
        return out

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url, decode_responses=True, socket_timeout=5)

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None, tls: bool = False,
                ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request through nginx: (status, headers lower-cased, raw body)."""
        if tls:
            context = ssl.create_default_context(cafile=str(self.cert))
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.tls_port, timeout=10, context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            sent = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers={**sent, **(headers or {})})
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()

    def sign_in(self, name: str) -> dict[str, str]:
        """A commander signed in through nginx (`POST /api/login`): the Cookie header."""
        client = self.client()
        user, password = make_user(client, "commander", name)
        client.close()
        status, headers, body = self.request("POST", "/api/login",
                                             {"username": user, "password": password})
        assert status == 200, body
        cookie = headers["set-cookie"].split(";")[0]
        assert cookie.startswith("cc_session=")
        return {"Cookie": cookie}

    def health(self) -> dict[str, Any]:
        status, _, body = self.request("GET", "/api/health")
        assert status in (200, 503), body
        return json.loads(body)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    folder = Path(tmp_path_factory.mktemp("farm"))
    cert, key = nginx_util.self_signed(folder)
    running = Farm(folder, EmbeddedRedis(folder / "redis", persist=False).start(),
                   free_port(), free_port(), cert, [free_port(), free_port()],
                   [free_port(), free_port()])
    try:
        running.spawn("ingest-a", ["-m", "feeds.ingest"])
        running.spawn("ingest-b", ["-m", "feeds.ingest"])
        running.spawn("watch", ["-m", "feeds.watch"])
        for i, port in enumerate(running.relay_ports, 1):
            running.spawn(f"relay-{i}", ["-m", "feeds.relay"], CC_WS_PORT=str(port))
        for i, port in enumerate(running.web_ports, 1):
            # the systemd unit's command (deploy/systemd/command-wall-web@.service)
            running.spawn(f"web-{i}", ["-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                                       "--bind", f"127.0.0.1:{port}", "app:create_server()"])
        conf = nginx_util.main_conf(folder, [
            nginx_util.render_site(running.port, running.web_ports, running.relay_ports),
            nginx_util.render_tls(running.tls_port, cert, key)])
        running.nginx = nginx_util.start(folder, conf, running.port)
        client = running.client()
        wait(lambda: client.get("cc:ingest:lease") and client.exists("cc:ingest:standby")
             and client.exists("cc:watch:hb"), 30, "ingest or watch did not start")
        client.close()

        def both_up() -> bool:
            # each web server answers on its own port, and health sees both relays
            for port in running.web_ports:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                try:
                    conn.request("GET", "/api/health")
                    conn.getresponse().read()
                except OSError:
                    return False
                finally:
                    conn.close()
            return running.health()["relay"]["relays"] == 2

        wait(both_up, 60, "the web servers or the relays did not start")
        yield running
    finally:
        if running.nginx is not None:
            nginx_util.stop(running.nginx)
        for proc in running.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in running.procs.values():
            try:
                proc.wait(8)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(2)
        running.redis.stop()


def test_sco001_http_gzip_tls_and_the_websocket_through_nginx(farm: Farm) -> None:
    body = farm.health()
    assert body["status"] == "ok", body
    assert body["relay"]["relays"] == 2
    cookie = farm.sign_in("sco-gzip")
    level = BOUNDARY_LEVELS[0]
    status, headers, raw = farm.request("GET", f"/geo/{level}.geojson",
                                        headers={**cookie, "Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip"  # nginx compressed the boundaries
    assert json.loads(gzip.decompress(raw))["type"] == "FeatureCollection"
    print(f"sco001: /geo/{level}.geojson {len(gzip.decompress(raw))} bytes, "
          f"{len(raw)} gzipped")
    # the TLS server block serves the same, with its certificate
    status, headers, _ = farm.request("GET", "/api/health", tls=True)
    assert status == 200 and "max-age" in headers["strict-transport-security"]
    # the pages let the websocket go to nginx (CC_WS_PUBLIC_URL), and it answers there
    status, headers, _ = farm.request("GET", "/", headers=cookie)
    assert status == 200
    assert f"ws://127.0.0.1:{farm.port}" in headers["content-security-policy"]
    context = ssl.create_default_context(cafile=str(farm.cert))
    for url, origin, extra in (
            (f"ws://127.0.0.1:{farm.port}/ws", f"http://127.0.0.1:{farm.port}", {}),
            (f"wss://127.0.0.1:{farm.tls_port}/ws", f"https://127.0.0.1:{farm.tls_port}",
             {"ssl": context})):
        # a browser's Origin: the relay compares it with the Host nginx passes on
        with connect(url, additional_headers={**cookie, "Origin": origin}, max_size=None,
                     open_timeout=5, **extra) as ws:
            frame = json.loads(ws.recv(timeout=10))
            assert frame["type"] == "snapshot", url


def test_sco004_the_app_sees_what_nginx_says_and_only_that(farm: Farm) -> None:
    """X-Forwarded-Proto reaches the app (a sign-in over HTTPS gets a Secure cookie, with
    CC_TRUSTED_PROXIES=1); a client's own X-Forwarded-Prefix does not."""
    client = farm.client()
    user, password = make_user(client, "commander", "sco-tls")
    client.close()
    login = {"username": user, "password": password}
    status, headers, _ = farm.request("POST", "/api/login", login, tls=True)
    assert status == 200 and "secure" in headers["set-cookie"].lower()
    status, headers, _ = farm.request("POST", "/api/login", login)
    assert status == 200 and "secure" not in headers["set-cookie"].lower()
    status, headers, _ = farm.request("GET", "/cockpit", headers={"X-Forwarded-Prefix": "/x"})
    assert status in (302, 303) and headers["location"].startswith("/login"), headers


class Poller(threading.Thread):
    """GETs through nginx every 50 ms (health, and the events API signed in); keeps every
    answer's status, or the error instead of one."""

    def __init__(self, farm: Farm, cookie: dict[str, str]) -> None:
        super().__init__(daemon=True, name="poller")
        self.farm, self.cookie = farm, cookie
        self.results: list[tuple[str, int | str]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for path, headers in (("/api/health", {}), ("/api/events?limit=5", self.cookie)):
                try:
                    status, _, _ = self.farm.request("GET", path, headers=headers)
                    self.results.append((path, status))
                except OSError as exc:
                    self.results.append((path, repr(exc)))
            time.sleep(0.05)

    def stop(self) -> list[tuple[str, int | str]]:
        self.halt.set()
        self.join(10)
        return list(self.results)


@pytest.mark.slow
def test_sco002_kill_a_relay_and_a_web_server_with_walls_open(farm: Farm,
                                                               record_property: Any) -> None:
    walls = []
    for i in range(4):
        wall = Wall(farm.redis.url, 0)
        wall.ws_url = f"ws://127.0.0.1:{farm.port}/ws"  # through nginx
        wall.headers = farm.sign_in(f"sco-wall-{i}")
        wall.start()
        wait(lambda w=wall: w.snapshots >= 1, 15, "a wall got no snapshot through nginx")
        walls.append(wall)
    client = farm.client()

    def per_relay() -> list[int]:
        beats = [json.loads(v) for v in client.hvals("cc:relay:hb")]
        return sorted(b["clients"] for b in beats if time.time() * 1000 - b["ts"] < 10_000)

    # nginx spread them (least_conn): both relays hold walls, so the kill cuts some off
    wait(lambda: per_relay() == [2, 2], 10, f"walls not spread over the relays: {per_relay()}")
    poller = Poller(farm, farm.sign_in("sco-poller"))
    poller.start()
    load = Load(farm.redis.url, rate=200)
    load.start()
    time.sleep(1.5)
    moment = time.monotonic()
    farm.kill("relay-1")
    farm.kill("web-1")
    time.sleep(4.0)  # events keep coming; nothing restarts the dead ones
    sent = load.stop()
    time.sleep(0.5)
    answers = poller.stop()

    def stored() -> bool:
        return all(v is not None for v in client.hmget("cc:state:event", sent))

    try:
        wait(stored, 15, "events some ingest received were not stored")
        for wall in walls:
            wait(lambda w=wall: set(sent) <= w.events, 10, "a wall missed events")
        # the survivor holds all four; the dead relay's beat ages out (10 s) and health
        # counts one relay
        wait(lambda: per_relay() == [4], 15, f"the walls are not on the survivor: {per_relay()}")
        wait(lambda: farm.health()["relay"] == {"alive": True, "relays": 1, "clients": 4}, 5,
             "health does not count one relay with four walls")
    finally:
        for wall in walls:
            wall.stop()
    assert len(sent) >= 150  # the load ran throughout (40 events a second)
    for wall in walls:
        assert not wall.backwards, f"a wall's seq went back: {wall.backwards[:3]}"
        # resumed with ?since= where it was: the one snapshot is the first connection's
        assert wall.snapshots == 1, "a wall needed a fresh snapshot"
    moved = [w for w in walls if w.reconnects >= 1]
    assert len(moved) == 2, [w.reconnects for w in walls]  # the dead relay's two
    resumed = [w.frame_after(moment) for w in moved]
    record_property("resume_s", max(r or 99 for r in resumed))
    print(f"sco002: {len(sent)} events, {len(answers)} HTTP requests through nginx; "
          f"walls resumed in {', '.join(f'{r:.2f}' for r in resumed if r)} s")
    assert all(r is not None and r < 5 for r in resumed)
    failed = [a for a in answers if a[1] != 200]
    assert len(answers) >= 60 and failed == [], failed[:5]
    # nginx did meet the dead web server, and went on to the other
    errors = (farm.folder / "error.log").read_text(errors="replace")
    assert "Connection refused" in errors or "reset by peer" in errors
    client.close()


@pytest.mark.slow
@pytest.mark.browser
def test_sco003_a_browser_wall_follows_its_relay_dying(farm: Farm, dash_duo: Any) -> None:
    """The wall's own JavaScript through nginx: its relay SIGKILLed (and one web server), it
    reconnects through nginx to the other relay with ?since= and misses no event."""
    for name in ("relay-1", "relay-2", "web-1", "web-2"):  # the last drill's dead come back
        if farm.procs[name].poll() is not None:
            farm.respawn(name)
    wait(lambda: len(farm.relay_clients()) == 2, 30, "both relays again")
    client = farm.client()
    user, password = make_user(client, "commander", "sco-browser")
    base = f"http://127.0.0.1:{farm.port}"
    driver = dash_duo.driver
    driver.get(f"{base}/login?next=/api/me")
    driver.find_element("id", "cc-login-user").send_keys(user)
    driver.find_element("id", "cc-login-password").send_keys(password)
    driver.find_element("id", "cc-login-submit").click()
    wait(lambda: urlsplit(driver.current_url).path == "/api/me", 10,
         "the browser did not sign in")
    driver.get(base + "/")

    def js(script: str, *args: Any) -> Any:
        return driver.execute_script(script, *args)

    try:
        wait(lambda: js("return !!(window.ccwall && window.ccwall.connected)"), 20,
             "the wall's websocket did not connect through nginx")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: {driver.current_url}, console {dash_duo.get_logs()}"
                             ) from None
    # the relay the wall landed on (its beat counts it within a second) dies
    victim = wait(lambda: next((name for name, n in farm.relay_clients().items() if n == 1),
                               None), 5, "no relay counts the wall")
    load = Load(farm.redis.url, rate=100)
    load.start()
    time.sleep(1.5)
    seq_before = js("return window.ccwall.lastSeq")
    farm.kill(victim)
    farm.kill("web-2")
    time.sleep(3.0)
    sent = load.stop()
    wait(lambda: all(v is not None for v in client.hmget("cc:state:event", sent)), 15,
         "events some ingest received were not stored")
    final = int(client.get("cc:seq") or 0)
    wait(lambda: js("return window.ccwall.lastSeq") >= final, 15,
         "the wall did not catch up after its relay died")
    missing = js("return arguments[0].filter(id => !window.ccwall.store.get('event', id))",
                 sent)
    assert missing == [], f"{len(missing)} events missed, e.g. {missing[:3]}"
    assert js("return window.ccwall.connected") and seq_before < final
    survivor = "relay-2" if victim == "relay-1" else "relay-1"
    # the dead relay's beat ages out; the survivor holds the wall
    wait(lambda: farm.relay_clients() == {survivor: 1}, 15,
         f"the wall is not on {survivor}: {farm.relay_clients()}")
    client.close()
