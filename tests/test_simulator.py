"""The demo simulator, against a real Valkey: protocol, determinism, rate, stop, restarts."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard import models, protocol
from dashboard.city import load_city
from feeds.redis_server import EmbeddedRedis, free_port
from feeds.sim.engine import Simulator
from feeds.simulator import run_simulator

ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
KINDS = ("event", "worker", "resource", "camera")
CITY = load_city("pingdu")


class Collector:
    """Everything published on `{prefix}*`, in order, from a background reader."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(f"{prefix}*")
        self.prefix = prefix
        self.messages: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 5
        while self.client.pubsub_numpat() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.pubsub.get_message(timeout=0.1)
            except (redis.ConnectionError, OSError):
                time.sleep(0.1)  # the server is being restarted; redis-py resubscribes
                continue
            if msg and msg["type"] == "pmessage":
                self.messages.append((msg["channel"][len(self.prefix):], msg["data"]))

    def wait_for(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.messages) >= n

    def close(self) -> list[tuple[str, str]]:
        time.sleep(0.3)  # let the last pipeline arrive
        self._stop.set()
        self._thread.join(2)
        self.pubsub.close()
        self.client.close()
        return self.messages


@pytest.fixture
def collect(redis_url: str) -> Iterator[Any]:
    opened: list[Collector] = []

    def start(prefix: str = "cc:", url: str = redis_url) -> Collector:
        opened.append(Collector(url, prefix))
        return opened[-1]

    yield start
    for c in opened:
        c._stop.set()


def run(url: str, prefix: str = "cc:", **kwargs: Any) -> None:
    kwargs.setdefault("city", CITY)
    run_simulator(url, prefix, **kwargs)


def parse_ts_ms(ts: Any) -> int:
    if isinstance(ts, int):
        return ts
    assert isinstance(ts, str) and ts.endswith("+08:00"), ts
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


def check(kind: str, msg: dict[str, Any], now_ms: int) -> None:
    """The DESIGN §3 contract, checked by hand (independent of dashboard.protocol)."""
    assert ID_RE.match(msg["id"]), msg
    lo_lon, lo_lat, hi_lon, hi_lat = CITY.bbox
    # GCJ-02 / BD-09 shift points by a few hundred metres: allow ~2 km around the city.
    assert lo_lon - 0.02 <= msg["lon"] <= hi_lon + 0.02, msg
    assert lo_lat - 0.02 <= msg["lat"] <= hi_lat + 0.02, msg
    assert msg.get("crs", "wgs84") in models.CRS_CODES
    if kind != "camera" or "ts" in msg:
        assert now_ms - 86_400_000 < parse_ts_ms(msg["ts"]) < now_ms + 60_000, msg
    if kind == "event":
        assert msg["type"] in models.EVENT_TYPES, msg
        assert msg["severity"] in (1, 2, 3, 4) and isinstance(msg["severity"], int)
        assert msg["source"] in models.SOURCES
        assert msg["status"] in models.EVENT_STATUSES
        assert msg["title"] and msg["description"] and msg["address"] and msg["reporter"]
        assert "{" not in msg["title"] + msg["description"], msg  # every placeholder filled
        assert all(isinstance(t, str) for t in msg["tags"])
        if "grid_id" in msg:
            assert CITY.unit(msg["grid_id"]) is not None
    elif kind == "worker":
        assert msg["status"] in models.WORKER_STATUSES
        assert CITY.unit(msg["grid_id"]) is not None
        assert 0 <= msg["battery"] <= 100 and 0 <= msg["heading"] < 360 and msg["speed"] >= 0
        assert re.fullmatch(r"1\d{10}", msg["phone"]) and msg["name"]
    elif kind == "resource":
        assert msg["kind"] in models.RESOURCE_KINDS
        assert msg["status"] in models.RESOURCE_STATUSES
        assert msg["name"] and msg["unit"]
    elif kind == "camera":
        assert re.fullmatch(r"\d{20}", msg["id"]), msg  # GB/T 28181
        assert msg["stream_type"] in models.STREAM_TYPES
        url = msg["stream_url"]
        assert url is None or url.startswith("http://"), msg
        assert (url is None) == (msg["stream_type"] == "none")
        assert isinstance(msg["online"], bool) and isinstance(msg["ptz"], bool)
        assert 0 < msg["range_m"] <= 100_000
        if "heading" in msg:
            assert 0 <= msg["heading"] < 360 and 0 < msg["fov"] <= 360


def test_sim001_messages_follow_protocol(redis_url: str, collect: Any) -> None:
    c = collect()
    run(redis_url, rate=2.0, duration=3.0)
    messages = c.close()
    now_ms = int(time.time() * 1000)
    by_kind: Counter[str] = Counter()
    events: list[dict[str, Any]] = []
    cameras: set[str] = set()
    for kind, raw in messages:
        assert kind in KINDS
        msg = json.loads(raw)
        assert isinstance(msg, dict)
        check(kind, msg, now_ms)
        accepted = protocol.parse(kind, raw)
        assert isinstance(accepted, protocol.Accepted), (accepted, raw)
        by_kind[kind] += 1
        if kind == "event":
            events.append(msg)
        elif kind == "camera":
            cameras.add(msg["id"])
    assert all(by_kind[k] > 0 for k in KINDS), by_kind
    assert len(cameras) == 3000  # the whole catalogue is pushed at start
    # Both ts forms, the three datums and most sources appear in the warm-up history.
    assert {type(e["ts"]) for e in events} == {int, str}
    assert {e.get("crs", "wgs84") for e in events} == {"wgs84", "gcj02", "bd09"}
    assert all(e.get("crs") == "gcj02" for e in events if e["source"] == "wechat")
    assert len({e["source"] for e in events}) >= 7
    assert all(re.fullmatch(r"W\d{5}", e["reporter"]) and "grid_id" in e
               for e in events if e["source"] == "app")
    assert all("camera_id" in e for e in events if e["source"] == "video_ai")


def normalised(messages: list[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    """Drop what follows the wall clock: `ts` and the run tag inside event ids."""
    out = []
    for kind, raw in messages:
        msg = json.loads(re.sub(r"E\d{12}-", "E-", raw))
        msg.pop("ts", None)
        out.append((kind, msg))
    return out


def test_sim002_same_seed_same_messages(redis_url: str, collect: Any) -> None:
    runs = []
    for seed in (11, 11, 12):
        c = collect()
        run(redis_url, rate=1.0, seed=seed, duration=1.5)
        runs.append(normalised(c.close()))
    n = 2000
    assert min(len(r) for r in runs) >= n
    assert runs[0][:n] == runs[1][:n]
    assert runs[0][:n] != runs[2][:n]


def test_sim003_rate_scales_message_count(redis_url: str, collect: Any) -> None:
    counts = {}
    for rate in (1.0, 3.0):
        c = collect()
        run(redis_url, rate=rate, duration=3.0, warmup=0)
        counts[rate] = Counter(kind for kind, _ in c.close())
    workers1, workers3 = counts[1.0]["worker"], counts[3.0]["worker"]
    # 2,140 workers report every 4-6 s: in 3 s at rate 1 nobody can have reported twice.
    assert 600 < workers1 < 2140
    assert 1.8 < workers3 / workers1 < 4.5, counts


def test_sim004_stop_event_stops_within_a_second(redis_url: str, collect: Any) -> None:
    c = collect()
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(redis_url,), kwargs={"stop": stop, "rate": 5.0},
                              daemon=True)
    thread.start()
    assert c.wait_for(5000, timeout=15)
    t0 = time.monotonic()
    stop.set()
    thread.join(3)
    assert not thread.is_alive()
    assert time.monotonic() - t0 < 2.0  # generous: it checks every 0.1 s tick
    c.close()


def test_sim005_survives_a_redis_restart(tmp_path: Path, collect: Any) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path / "r", port=port, persist=False).start()
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(server.url,), daemon=True,
                              kwargs={"stop": stop, "rate": 2.0, "warmup": 0})
    try:
        thread.start()
        c = collect(url=server.url)
        assert c.wait_for(500, timeout=15)
        server.stop()
        time.sleep(1.5)  # the simulator is now backing off
        assert thread.is_alive()
        server = EmbeddedRedis(tmp_path / "r", port=port, persist=False).start()
        after = collect(url=server.url)
        assert after.wait_for(200, timeout=15), "no messages after the restart"
        stop.set()
        thread.join(3)
        assert not thread.is_alive()
        after.close()
    finally:
        stop.set()
        server.stop()


def test_sim006_events_walk_their_lifecycle() -> None:
    sim = Simulator(CITY, seed=3, workers=300, cameras=400)
    order = {s: i for i, s in enumerate(models.EVENT_STATUSES)}
    seen: dict[str, list[str]] = {}
    # Two simulated hours of events alone (the warm-up path skips positions).
    for channel, raw in sim.warm_up(7200):
        assert channel == "cc:event"
        msg = json.loads(raw)
        seen.setdefault(msg["id"], []).append(msg["status"])
    assert len(seen) > 1000
    for statuses in seen.values():
        assert statuses[0] == "reported"
        ranks = [order[s] for s in statuses if s != "cancelled"]
        assert ranks == sorted(ranks), statuses
    final = Counter(s[-1] for s in seen.values())
    assert final["closed"] > 0.7 * len(seen) and final["cancelled"] > 0
    assert 50 < sim.open_events() < 400  # steady, not growing


def test_sim007_memory_stays_bounded() -> None:
    sim = Simulator(CITY, seed=5, workers=200, cameras=300)
    entities = len(sim.world.workers) + len(sim.world.resources) + len(sim.world.cameras)
    sizes = []
    for minute in range(10, 41, 10):  # forty simulated minutes
        sim.advance(minute * 60.0)
        sizes.append(len(sim._heap))
    assert not sim._out
    # Each entity has one live report and at most one superseded entry; plus open events.
    assert max(sizes) < 2 * entities + 4 * sim.open_events() + 100, sizes
    assert sizes[-1] < 1.2 * sizes[1], sizes


def test_sim008_ts_follow_the_wall_clock() -> None:
    sim = Simulator(CITY, rate=10.0, workers=50, cameras=50, wall0=1_700_000_000.0)
    assert sim.stamp(0.0, iso=False) == 1_700_000_000_000
    assert sim.stamp(10.0, iso=False) == 1_700_000_001_000  # rate 10: 10 sim s = 1 wall s
    iso = sim.stamp(10.0, iso=True)
    assert iso == "2023-11-15T06:13:21.000+08:00"
    assert datetime.fromisoformat(iso).utcoffset() == timedelta(hours=8)
