"""Sentinel failover: time to healthy and events lost across a SIGKILL of the Valkey primary.

Real processes on loopback: a Valkey primary, two replicas and three sentinels (quorum 2,
down-after 1 s; feeds/redis_sentinel.py), and the stack on its `redis+sentinel://` URL as
separate processes: two ingest, the relay, the watch service and gunicorn (two workers).
Load from this process, through the same URL: worker moves and new events published at
`--rate` (an event is acknowledged once PUBLISH says an ingest received it), and events
XADDed to the input
stream `cc:in:event` by a producer that counts one only once `WAIT 1` says a replica holds it
(it sends it again otherwise: ingest stores a repeat as a duplicate). Signed-in walls
(websocket clients through the relay) keep their state as a wall does: a snapshot replaces
it, deltas add to it. A third of the way in, the primary is SIGKILLed — with `--gap S`, S
seconds after its replicas were cut off, so the promoted replica surely lacks what the old
primary acknowledged in those S seconds (events the walls were shown, stream entries ingest
acknowledged): what a crash just before replication caught up does, only for certain.
With `--hang` the primary is SIGSTOPped instead: alive to TCP, answering nothing (a frozen
VM), so no client is told its connection is dead.

Measured from the moment a majority of sentinels name the promoted replica:
- healthy: /api/health says ok and every process (both ingests, relay, watch) has written its
  heartbeat to the new primary;
- walls live: every wall got an event published after the promotion;
then, once the load stopped: acknowledged events missing from the new primary's state
(lost), from a wall's state, and frames that went back in seq on a wall.

    python -m bench.sentinel [--rate 500] [--seconds 12] [--walls 2] [--gap 0.5] [--hang]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from dashboard.access.auth import Auth
from dashboard.city import load_city
from dashboard.config import ROOT, Settings
from dashboard.connect import open_redis
from dashboard.store import relays
from feeds.redis_sentinel import SentinelSet
from feeds.redis_server import free_port

OUT = ROOT / "bench" / "results" / "sentinel.json"
SERVICES = ("ingest-a", "ingest-b", "relay", "watch", "web")
PASSWORD = "drill-Sentinel-pw1"
USER = "sentinel-drill"
EVENT_EVERY = 10  # one message in ten is a new event, the rest are moves of 40 units


class Stack:
    """The processes on the Sentinel URL, each in its own process and log."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder, self.url = folder, url
        self.ws_port, self.http_port = free_port(), free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> Stack:
        env = {**os.environ, "REDIS_URL": self.url, "CC_PREFIX": "cc:",
               "CC_WS_PORT": str(self.ws_port), "CC_PORT": str(self.http_port),
               "CC_HOST": "127.0.0.1", "CC_DATA_DIR": str(self.folder),
               "CC_WEB_WORKERS": "2", "PYTHONPATH": str(ROOT)}
        for name in SERVICES:
            # the web side as production runs it: gunicorn, two worker processes
            argv = ([sys.executable, "-m", "gunicorn", "-c",
                     str(ROOT / "deploy" / "gunicorn.conf.py"), "app:create_server()"]
                    if name == "web" else
                    [sys.executable, "-m", "feeds.ingest" if name.startswith("ingest")
                     else f"feeds.{name}"])
            log = (self.folder / f"{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                                stderr=log)
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.http_port}/api/health", timeout=1) as res:
                return json.loads(res.read())
        except OSError as exc:  # 503 while starting or Redis is unreachable: a body too
            body = getattr(exc, "read", None)
            with contextlib.suppress(Exception):
                return json.loads(body()) if body else None
            return None

    def metric(self, name: str) -> float | None:
        """A value of `/metrics` (the first sample of `name`), as Prometheus would read it."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics",
                                        timeout=2) as res:
                for line in res.read().decode().splitlines():
                    if line.startswith((name + " ", name + "{")):
                        return float(line.rsplit(" ", 1)[1])
        except OSError:
            pass
        return None

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(2)

    def log_tail(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class Load(threading.Thread):
    """Moves and new events over pub/sub at `rate`; `acked`: event id → publish time, for
    those an ingest received."""

    def __init__(self, url: str, rate: int, tag: str) -> None:
        super().__init__(daemon=True, name="load")
        self.url, self.rate, self.tag = url, rate, tag
        self.acked: dict[str, float] = {}
        self.refused = 0  # events whose PUBLISH failed or reached no ingest: the sender knows
        self.halt = threading.Event()
        self.lon, self.lat = load_city().grids[0].centroid

    def run(self) -> None:
        client: redis.Redis | None = None
        i, started = 0, time.monotonic()
        while not self.halt.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while i < due and not self.halt.is_set():
                ts = int(time.time() * 1000)
                event_id = f"{self.tag}p{i}" if i % EVENT_EVERY == 0 else ""
                kind, message = ("event", {
                    "id": event_id, "type": "dispute", "severity": 4, "lon": self.lon,
                    "lat": self.lat, "ts": ts, "title": f"drill {i}"}) if event_id else (
                    "worker", {"id": f"W{i % 40}", "lon": self.lon + (i % 97) * 1e-5,
                               "lat": self.lat, "ts": ts, "status": "on_duty"})
                try:
                    if client is None:
                        client = open_redis(self.url, socket_timeout=2,
                                            socket_connect_timeout=1)
                    received = client.publish(f"cc:{kind}", json.dumps(message))
                except (redis.RedisError, OSError):
                    if client is not None:
                        client.close()
                    client, received = None, 0
                    time.sleep(0.05)  # a failover: find the primary again soon, not at once
                if event_id:
                    if received:
                        self.acked[event_id] = time.monotonic()
                    else:
                        self.refused += 1
                i += 1
            time.sleep(0.005)
        if client is not None:
            client.close()


class Producer(threading.Thread):
    """Events into the input stream, each counted once a replica holds it (XADD, WAIT 1);
    one that is not is sent again, the same message: ingest stores the repeat as a
    duplicate. The at-least-once producer docs/OPERATIONS.md ("Sentinel") describes."""

    def __init__(self, url: str, rate: int, tag: str) -> None:
        super().__init__(daemon=True, name="producer")
        self.url, self.rate, self.tag = url, rate, tag
        self.durable: dict[str, float] = {}
        self.resent = 0
        self.halt = threading.Event()
        self.lon, self.lat = load_city().grids[1].centroid

    def run(self) -> None:
        client: redis.Redis | None = None
        i = 0
        while not self.halt.is_set():
            event_id = f"{self.tag}s{i}"
            message = json.dumps({"id": event_id, "type": "dispute", "severity": 4,
                                  "lon": self.lon, "lat": self.lat,
                                  "ts": int(time.time() * 1000), "title": f"stream {i}"})
            while not self.halt.is_set():
                try:
                    if client is None:
                        client = open_redis(self.url, socket_timeout=2,
                                            socket_connect_timeout=1)
                    pipe = client.pipeline(transaction=False)
                    pipe.xadd("cc:in:event", {"m": message})
                    pipe.execute_command("WAIT", 1, 200)
                    if int(pipe.execute()[1]) >= 1:
                        self.durable[event_id] = time.monotonic()
                        break
                except (redis.RedisError, OSError):
                    if client is not None:
                        client.close()
                    client = None
                    time.sleep(0.05)
                self.resent += 1
            i += 1
            self.halt.wait(1 / self.rate)
        if client is not None:
            client.close()


class Wall(threading.Thread):
    """A signed-in websocket client holding a wall's event state; resumes with `?since=`
    after a disconnect, as the browser does."""

    def __init__(self, ws_url: str, token: str, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.ws_url, self.headers = ws_url, {"Cookie": f"cc_session={token}"}
        self.seq = 0
        self.events: dict[str, float] = {}  # id → when it reached this wall (state, not log)
        self.snapshots = 0
        self.reconnects = 0
        self.backwards: list[tuple[int, int]] = []  # (seq before, frame seq) without snapshot
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            query = f"?since={self.seq}" if self.seq else ""
            try:
                with connect(self.ws_url + query, additional_headers=self.headers,
                             max_size=None, open_timeout=2) as ws:
                    while not self.halt.is_set():
                        with contextlib.suppress(TimeoutError):
                            self._frame(json.loads(ws.recv(timeout=0.5)))
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                pass
            if not self.halt.is_set():
                self.reconnects += 1
                time.sleep(0.2)

    def _frame(self, frame: dict[str, Any]) -> None:
        kind, now = frame["type"], time.monotonic()
        if kind == "stats":
            return
        if kind == "snapshot":
            self.snapshots += 1
            self.seq = frame["seq"]
            seen = self.events
            self.events = {e["id"]: seen.get(e["id"], now) for e in frame["events"]}
            return
        if frame["seq"] <= self.seq:
            self.backwards.append((self.seq, frame["seq"]))
        self.seq = max(self.seq, frame["seq"])
        items = [frame] if kind == "delta" else frame.get("items", [])
        for item in items:
            if item["kind"] == "event":
                self.events.setdefault(item["data"]["id"], now)


def _seq(valkey: SentinelSet, node: Any) -> int:
    client = valkey.node_client(node)
    try:
        return int(client.get("cc:seq") or 0)
    finally:
        client.close()


def _warnings(log: str) -> list[str]:
    return [line[-200:] for line in log.splitlines() if "WARNING" in line or "ERROR" in line]


def _wait(predicate: Any, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if predicate():
                return True
        time.sleep(step)
    return False


# The standby is left out of "healthy": it writes its heartbeat only once it has been
# subscribed YOUNG_S (3 s, feeds/ingest.py), so its return is reported on its own.
BEATS = ("ingest:hb", "relay:hb", "watch:hb")


def _beats_since(client: redis.Redis, since_ms: int, back: dict[str, float]) -> bool:
    """Every process wrote its heartbeat after `since_ms` (to the new primary, then);
    `back` gets when each was first seen so."""
    pipe = client.pipeline(transaction=False)
    for key in (*BEATS, "ingest:standby"):
        pipe.hgetall(f"cc:{key}")
    for key, beat in zip((*BEATS, "ingest:standby"), pipe.execute(), strict=True):
        if key == "relay:hb":  # a field per relay (several side by side): the freshest
            beat = relays(beat, int(time.time() * 1000))
        ts = beat.get("ts")
        if ts is not None and int(ts) > since_ms:
            back.setdefault(key, time.monotonic())
    return all(key in back for key in BEATS)


def drill(rate: int = 500, seconds: float = 12.0, walls: int = 2,
          stream_rate: int = 20, gap: float = 0.0, hang: bool = False) -> dict[str, Any]:
    """One run: the stack on Sentinel under load, the primary SIGKILLed a third of the way
    in; the figures of the module's docstring."""
    load_before = os.getloadavg()
    tag = f"S{time.monotonic_ns() % 10**9}-"
    with tempfile.TemporaryDirectory() as tmp, \
            SentinelSet(Path(tmp) / "valkey", replicas=2, password=PASSWORD) as valkey:
        stack = Stack(Path(tmp), valkey.url).start()
        client = open_redis(valkey.url, decode_responses=True, socket_timeout=2,
                            socket_connect_timeout=1)
        clients: list[Wall] = []
        load = Load(valkey.url, rate, tag)
        producer = Producer(valkey.url, stream_rate, tag)
        try:
            if not _wait(lambda: (stack.health() or {}).get("status") == "ok", 60, 0.2):
                raise RuntimeError("the stack did not start:\n" + stack.log_tail("web"))
            auth = Auth(client, "cc:", Settings())
            auth.add_user(USER, "commander", PASSWORD)
            session = auth.login(USER, PASSWORD, "127.0.0.1")
            assert session is not None
            clients = [Wall(f"ws://127.0.0.1:{stack.ws_port}/ws", session.token, f"wall{k}")
                       for k in range(walls)]
            for wall in clients:
                wall.start()
            if not _wait(lambda: all(w.snapshots for w in clients), 20):
                raise RuntimeError("walls got no snapshot:\n" + stack.log_tail("relay"))
            load.start()
            producer.start()
            time.sleep(seconds / 3)

            if gap:
                valkey.cut_replication()
                cut = time.monotonic()
                time.sleep(gap)
            # What any replica holds, read before the fault: cut off, they cannot gain more
            # until after the promotion, when ingest's replay may already have added seqs
            primary = valkey.primary()
            replica_seq = max(_seq(valkey, node) for node in valkey.nodes
                              if node is not primary) if gap else None
            old_port = valkey.hang_primary() if hang else valkey.kill_primary()
            killed = time.monotonic()
            killed_ms = int(time.time() * 1000)
            shown_seq = max(w.seq for w in clients)  # the walls had been sent up to here
            if gap:
                valkey.restore_replication(skip=old_port)
            promoted = valkey.wait_promoted(old_port)
            promoted_ms = killed_ms + int((promoted - killed) * 1000)
            # its own client, failing fast: one stuck on a hung primary would hold the polls
            # back and make every process look back at the same late moment
            probe = open_redis(valkey.url, decode_responses=True, socket_timeout=0.5,
                               socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
            promoted_seq = replica_seq if replica_seq is not None else \
                _seq(valkey, valkey.primary())
            unreplicated = [i for i, t in {**load.acked, **producer.durable}.items()
                            if gap and cut <= t <= killed]

            back: dict[str, float] = {}

            seen_ok: dict[str, Any] = {}

            def healthy() -> bool:
                body = stack.health() or {}
                if body.get("status") == "ok":
                    back.setdefault("health_ok", time.monotonic())
                    seen_ok.update(body)
                return _beats_since(probe, promoted_ms, back) and body.get("status") == "ok"

            healthy_ok = _wait(healthy, 30, 0.05)
            healthy_at = time.monotonic() if healthy_ok else None
            # asked once more; a loaded machine may let that one request time out, and then
            # the answer that made it healthy stands
            final_health = stack.health() or seen_ok

            def live_at(wall: Wall) -> float | None:
                after = [i for i, t in list(load.acked.items()) if t > promoted]
                return min((wall.events[i] for i in after if i in wall.events), default=None)

            _wait(lambda: all(live_at(w) is not None for w in clients), 20, 0.05)
            _wait(lambda: _beats_since(probe, promoted_ms, back)
                  and "ingest:standby" in back, 15, 0.05)
            time.sleep(max(0.0, seconds - (time.monotonic() - killed) - seconds / 3))
            load.halt.set()
            producer.halt.set()
            load.join(5)
            producer.join(5)
            acked = {**load.acked, **producer.durable}

            def missing() -> list[str]:
                ids = list(acked)
                found = client.hmget("cc:state:event", ids) if ids else []
                return [i for i, v in zip(ids, found, strict=True) if v is None]

            _wait(lambda: not missing(), 20, 0.2)
            lost = missing()
            seq = int(client.get("cc:seq") or 0)
            _wait(lambda: all(w.seq >= seq and set(acked) <= set(w.events) for w in clients),
                  10, 0.1)
            hb = client.hgetall("cc:ingest:hb")
            walls_live = [live_at(w) for w in clients]
            probe.close()
            result = {
                "rate": rate, "stream_rate": stream_rate, "walls": walls,
                "gap_s": gap, "fault": "SIGSTOP" if hang else "SIGKILL",
                "promoted_after_kill_s": round(promoted - killed, 3),
                "healthy_after_promotion_s": round(healthy_at - promoted, 3)
                if healthy_at is not None else None,
                "back_after_promotion_s": {k: round(t - promoted, 3) for k, t in back.items()},
                "walls_live_after_promotion_s": round(max(walls_live) - promoted, 3)
                if all(t is not None for t in walls_live) else None,
                "acked_pubsub": len(load.acked), "refused_pubsub": load.refused,
                "durable_stream": len(producer.durable), "stream_resent": producer.resent,
                # seqs the walls were sent that the promoted replica did not have (without a
                # gap read at the promotion: ingest may have applied a few more by then, so
                # at least this)
                "seqs_walls_saw_beyond_promoted": shown_seq - promoted_seq,
                "walls_seq_at_kill": shown_seq,
                "log_fork": int(client.zscore("cc:log:fork", "seq") or 0),
                "acked_while_cut_off": len(unreplicated),
                "lost": len(lost), "lost_ids": lost[:10],
                # when each lost one was published, from the fault and from the promotion;
                # and what the ingests said meanwhile: the evidence for a post-mortem
                "lost_published_s": [(round(acked[i] - killed, 3), round(acked[i] - promoted, 3))
                                     for i in lost[:10]],
                "ingest_logs": {n: _warnings(stack.log_tail(n))
                                for n in ("ingest-a", "ingest-b")},
                "walls_missing": [len(set(acked) - set(w.events)) for w in clients],
                "walls_behind": [seq - w.seq for w in clients],
                "walls_backwards": [len(w.backwards) for w in clients],
                "walls_snapshots": [w.snapshots for w in clients],
                "walls_reconnects": [w.reconnects for w in clients],
                "health_after": {k: final_health.get(k) for k in ("status", "reasons")},
                "ingest": {k: hb.get(k) for k in ("failovers", "last_failover", "takeovers",
                                                  "last_takeover", "duplicates", "accepted",
                                                  "degraded")},
                "deadletters": int(client.get("cc:deadletter:count") or 0),
                "deadletter_reasons": [(d.get("code"), d.get("reason")) for d in (
                    json.loads(raw) for raw in client.lrange("cc:deadletter", 0, 4))],
                "metrics_failovers": stack.metric("cc_ingest_failovers_total"),
                "load_avg_before": [round(x, 2) for x in load_before],
                "load_avg_after": [round(x, 2) for x in os.getloadavg()],
            }
            return result
        finally:
            load.halt.set()
            producer.halt.set()
            for wall in clients:
                wall.halt.set()
            for wall in clients:
                wall.join(3)
            stack.stop()
            client.close()


def summary(result: dict[str, Any]) -> str:
    return ("sentinel " + json.dumps({k: result[k] for k in (
        "promoted_after_kill_s", "healthy_after_promotion_s", "walls_live_after_promotion_s",
        "acked_pubsub", "durable_stream", "lost", "walls_missing", "walls_backwards",
        "load_avg_before")}))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.sentinel",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=500, help="pub/sub messages a second")
    parser.add_argument("--stream-rate", type=int, default=20,
                        help="events a second into the input stream")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the load")
    parser.add_argument("--walls", type=int, default=2, help="websocket clients")
    parser.add_argument("--gap", type=float, default=0.5,
                        help="seconds the replicas are cut off before the kill (0: none)")
    parser.add_argument("--hang", action="store_true",
                        help="SIGSTOP the primary (hung, not dead) instead of SIGKILL")
    args = parser.parse_args(argv)
    result = drill(args.rate, args.seconds, args.walls, args.stream_rate, args.gap, args.hang)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
