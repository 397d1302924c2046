"""Relay on a real Valkey: snapshot + deltas, resume without gap or duplicate, resync."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from websockets.sync.client import ClientConnection

from feeds.fanout import Client

from ..conftest import Stack, start_stack

TS = 1_795_312_800_000


def event(i: int, **fields: Any) -> dict[str, Any]:
    base = {"id": f"ev-{i}", "type": "dispute", "severity": 4, "lon": 119.96, "lat": 36.78,
            "ts": TS + i, "title": f"纠纷 {i}"}
    base.update(fields)
    return base


def frames(ws: ClientConnection, until: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Read frames (ignoring stats) until `until(frames)` holds."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until(got):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"got {len(got)} frames: {[f['type'] for f in got][-5:]}")
        frame = json.loads(ws.recv(timeout=remaining))
        if frame["type"] != "stats":
            got.append(frame)
    return got


def event_ids(got: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["id"] for f in got if f["type"] == "delta" and f["kind"] == "event"]


def test_rel001_snapshot_then_ordered_deltas(stack: Stack) -> None:
    stack.publish("event", event(0))
    stack.wait_seq(1)
    with stack.connect() as ws:
        snap = frames(ws, lambda g: len(g) >= 1)[0]
        assert snap["type"] == "snapshot" and snap["seq"] == 1
        assert [e["id"] for e in snap["events"]] == ["ev-0"]
        for i in range(1, 6):
            stack.publish("event", event(i))
        got = frames(ws, lambda g: len(g) >= 5)
        assert [f["seq"] for f in got] == [2, 3, 4, 5, 6]
        assert event_ids(got) == [f"ev-{i}" for i in range(1, 6)]


def test_rel002_resume_has_no_gap_and_no_duplicate(stack: Stack) -> None:
    seen: list[str] = []
    with stack.connect() as ws:
        frames(ws, lambda g: len(g) >= 1)  # the snapshot, empty
        for i in range(10):
            stack.publish("event", event(i))
        got = frames(ws, lambda g: len(g) >= 10)
        seen += event_ids(got)
        last = got[-1]["seq"]
    for i in range(10, 25):  # published while the wall is away
        stack.publish("event", event(i))
    stack.wait_seq(25)
    with stack.connect(f"?since={last}") as ws:
        for i in range(25, 30):
            stack.publish("event", event(i))
        got = frames(ws, lambda g: len(event_ids(g)) >= 20)
        assert all(f["type"] != "snapshot" for f in got)
        seen += event_ids(got)
        seqs = [f["seq"] for f in got]
        assert seqs == sorted(seqs)
    assert seen == [f"ev-{i}" for i in range(30)]  # every event exactly once, in order


def test_rel003_moves_coalesced(redis_url: str) -> None:
    live, stop, threads = start_stack(redis_url, coalesce_s=1.0)
    try:
        worker = {"id": "w-1", "lon": 119.9, "lat": 36.7, "ts": TS, "status": "on_duty"}
        live.publish("worker", worker)
        live.wait_seq(1)
        with live.connect() as ws:
            frames(ws, lambda g: len(g) >= 1)
            pipe = live.client.pipeline(transaction=False)
            for step in range(1, 6):  # five moves inside one coalescing window
                pipe.publish("cc:worker", json.dumps({**worker, "lon": 119.9 + step * 1e-4,
                                                      "ts": TS + step}))
            pipe.execute()

            def latest_seen(g: list[dict[str, Any]]) -> bool:
                return any(i["data"]["lon"] == 119.9005 for f in g for i in f["items"])

            got = frames(ws, latest_seen, timeout=5)
            assert {f["type"] for f in got} == {"batch"}
            # Five moves reach the wall as one item (two if a flush fell between them).
            assert sum(len(f["items"]) for f in got) <= 2
            assert got[-1]["seq"] == 6
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


def test_rel004_status_change_is_not_coalesced(stack: Stack) -> None:
    worker = {"id": "w-1", "lon": 119.9, "lat": 36.7, "ts": TS, "status": "on_duty"}
    stack.publish("worker", worker)
    stack.wait_seq(1)
    with stack.connect() as ws:
        frames(ws, lambda g: len(g) >= 1)
        stack.publish("worker", {**worker, "lon": 119.901, "ts": TS + 1})
        stack.publish("worker", {**worker, "status": "sos", "ts": TS + 2})
        got = frames(ws, lambda g: len(g) >= 2, timeout=2)
        # The pending move is flushed first so frames stay in sequence order.
        assert [f["type"] for f in got] == ["batch", "delta"]
        assert got[1]["op"] == "upsert" and got[1]["data"]["status"] == "sos"


def stalled_client(url: str, headers: dict[str, str]) -> socket.socket:
    """A wall that completes the websocket handshake and then stops reading."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Cookie: {headers['Cookie']}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    assert b" 101 " in sock.recv(1024)
    return sock


def test_rel005_slow_client_resynced_fast_client_unharmed(redis_url: str) -> None:
    live, stop, threads = start_stack(redis_url, client_lag_s=1.0)
    slow = stalled_client(live.ws_url, live.headers)
    try:
        with live.connect(max_size=None) as fast:
            frames(fast, lambda g: len(g) >= 1)
            # Large frames fill the stalled client's socket buffers: ~20 KB each, the most a
            # record's own fields hold (unknown fields are capped at 4 KiB).
            big = {"description": "纠" * 4000, "attachments": ["x" * 1000] * 8}
            n = 800
            pipe = live.client.pipeline(transaction=False)
            for i in range(n):
                pipe.publish("cc:event", json.dumps(event(i, **big), ensure_ascii=False))
            pipe.execute()
            got = frames(fast, lambda g: len(event_ids(g)) >= n, timeout=30)
            assert event_ids(got) == [f"ev-{i}" for i in range(n)]
            assert all(f["type"] != "snapshot" for f in got)  # the fast wall was never resynced

            def stalled() -> Client | None:
                behind = [c for c in live.relay.fan.clients if c.resync]
                return behind[0] if behind else None

            deadline = time.monotonic() + 10
            while (laggard := stalled()) is None:
                assert time.monotonic() < deadline, "the stalled wall was never marked behind"
                time.sleep(0.05)
            assert len(laggard.queue) == 0  # its backlog was dropped, not kept growing
            # Once it reads again it is brought up to date with a fresh snapshot.
            def read_until_closed() -> None:
                with contextlib.suppress(OSError):
                    while slow.recv(1 << 20):
                        pass

            drain = threading.Thread(target=read_until_closed, daemon=True)
            drain.start()
            deadline = time.monotonic() + 20
            while not (laggard.resyncs >= 1 and laggard.skip_upto == n):
                assert time.monotonic() < deadline, "the stalled wall was not resynced"
                time.sleep(0.05)
    finally:
        slow.close()
        stop.set()
        for thread in threads:
            thread.join(5)


def test_rel006_since_beyond_log_gets_snapshot(stack: Stack, r: redis.Redis) -> None:
    for i in range(3):
        stack.publish("event", event(i))
    stack.wait_seq(3)
    with stack.connect("?since=999") as ws:  # Redis was reset under the wall
        snap = frames(ws, lambda g: len(g) >= 1)[0]
        assert snap["type"] == "snapshot" and snap["seq"] == 3
    r.xtrim("cc:log", maxlen=1, approximate=False)  # the log no longer reaches back to seq 1
    with stack.connect("?since=1") as ws:
        snap = frames(ws, lambda g: len(g) >= 1)[0]
        assert snap["type"] == "snapshot" and len(snap["events"]) == 3


def test_rel007_a_page_that_wants_alerts_gets_only_alerts(stack: Stack) -> None:
    """The duty desk (`?kinds=alert`): no units or events in its snapshot, none of their
    frames or moves, its alerts live and after a resume; stats still arrive."""
    from dashboard.command.alerts import Alerts
    from dashboard.store import Store

    stack.publish("event", event(0))
    stack.publish("worker", {"id": "W1", "name": "张", "status": "on_duty", "lon": 119.96,
                             "lat": 36.78, "ts": TS})
    stack.wait_seq(2)
    alerts = Alerts(Store(stack.client, stack.settings.prefix))
    with stack.connect("?kinds=alert") as ws:
        snap = frames(ws, lambda g: len(g) >= 1)[0]
        assert snap["type"] == "snapshot" and snap["events"] == [] and snap["workers"] == []
        stack.publish("event", event(1))
        stack.publish("worker", {"id": "W1", "lon": 119.961, "lat": 36.781, "ts": TS + 5})
        first = alerts.raise_once("critical_event", "ev-1", "ev-1", "II级事件", 2)
        assert first is not None
        got = frames(ws, lambda g: any(f.get("kind") == "alert" for f in g))
        assert [(f["type"], f.get("kind")) for f in got] == [("delta", "alert")]
        assert got[0]["data"]["id"] == first["id"]
        stats = json.loads(ws.recv(timeout=5))
        while stats["type"] != "stats":
            assert stats["type"] != "batch", stats  # the worker's move is not for it
            stats = json.loads(ws.recv(timeout=5))
        last = got[0]["seq"]
    stack.publish("event", event(2))  # while the desk is away
    second = alerts.raise_once("critical_event", "ev-2", "ev-2", "II级事件", 2)
    assert second is not None
    with stack.connect(f"?since={last}&kinds=alert") as ws:
        got = frames(ws, lambda g: any(f.get("kind") == "alert" for f in g))
        assert [f["data"]["id"] for f in got] == [second["id"]]
    with stack.connect("?kinds=") as ws:  # the cockpit: none at all, only the stats
        snap = frames(ws, lambda g: len(g) >= 1)[0]
        assert snap["events"] == [] and snap["workers"] == [] and snap["alerts"] == []
    with stack.connect() as ws:  # a wall without `kinds` gets everything, as before
        snap = frames(ws, lambda g: len(g) >= 1)[0]
        assert {e["id"] for e in snap["events"]} == {"ev-0", "ev-1", "ev-2"}
        assert [w["id"] for w in snap["workers"]] == ["W1"]


def test_rel008_a_reconnect_storm_shares_snapshot_reads(redis_url: str) -> None:
    """Forty walls connecting together (a relay restart) each get a whole snapshot and are
    live afterwards; how many reads they shared depends on the timing (rel009 pins it)."""
    live, stop, threads = start_stack(redis_url, ws_per_session=100)
    walls = 40
    try:
        for i in range(50):
            live.publish("event", event(i))
        live.wait_seq(50)
        assert live.headers  # one session for all, made before the walls race for it
        before = live.relay.snapshots_read
        snaps: list[dict[str, Any]] = []
        sockets: list[ClientConnection] = []
        opened = contextlib.ExitStack()
        lock = threading.Lock()

        def open_wall() -> None:
            ws = live.connect(max_size=None)
            with lock:
                sockets.append(opened.enter_context(ws))
            snaps.append(frames(ws, lambda g: len(g) >= 1, timeout=20)[0])

        openers = [threading.Thread(target=open_wall) for _ in range(walls)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(30)
        try:
            assert len(snaps) == walls and all(s["type"] == "snapshot" for s in snaps)
            assert all(len(s["events"]) == 50 for s in snaps)
            assert 1 <= live.relay.snapshots_read - before <= walls
            live.publish("event", event(50))  # and every wall is live afterwards
            for ws in sockets:
                assert event_ids(frames(ws, lambda g: len(event_ids(g)) >= 1)) == ["ev-50"]
        finally:
            opened.close()
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


def test_rel009_walls_asking_together_share_one_read(redis_url: str) -> None:
    """The snapshot read is single-flight: every wall that asks before a read begins shares
    it; one that asks once it has begun waits for the next (it may have missed frames)."""
    from dashboard.config import Settings
    from dashboard.store import Store
    from feeds.relay import Relay

    relay = Relay(Settings(), redis_url)
    relay.store = Store(redis.Redis.from_url(redis_url), "cc:")

    async def storm() -> tuple[list[Any], Any]:
        together = await asyncio.gather(*(relay._snapshot() for _ in range(40)))
        later = await relay._snapshot()
        return together, later

    together, later = asyncio.run(storm())
    assert len({id(s) for s in together}) == 1  # one shared Snapshot for all forty
    assert later is not together[0] and relay.snapshots_read == 2
