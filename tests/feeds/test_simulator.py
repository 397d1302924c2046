"""The demo simulator, against a real Valkey: protocol, determinism, rate, stop, restarts."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard import models, protocol
from dashboard.access.audit import Audit
from dashboard.city import load_city
from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.store import Store
from feeds.redis_server import EmbeddedRedis, free_port
from feeds.sim import autopilot, field
from feeds.sim.engine import Simulator
from feeds.sim.incidents import ON_SPOT_MAX, RECENT_MAX, OnSpot
from feeds.sim.world import Worker, distance_m
from feeds.simulator import run_simulator

from ..conftest import start_stack

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
    """The feed protocol (docs/PROTOCOL.md), checked by hand (independent of dashboard.protocol)."""
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
    run(redis_url, rate=2.0, duration=3.0, warmup=1200)
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
        run(redis_url, rate=1.0, seed=seed, duration=1.5, warmup=1200)
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


def test_sim006_events_are_only_reported() -> None:
    sim = Simulator(CITY, seed=3, workers=300, cameras=400)
    seen: Counter[str] = Counter()
    # Two simulated hours of events alone (the warm-up path skips positions).
    for channel, raw in sim.warm_up(7200):
        assert channel == "cc:event"
        msg = json.loads(raw)
        # The command center owns the lifecycle: the field never says more than `reported`.
        assert msg["status"] == "reported", msg
        seen[msg["id"]] += 1
    assert len(seen) > 1000
    assert set(seen.values()) == {1}  # each event reported once
    # Nobody dispatched them: all open, and the field's memory of them stays bounded.
    assert sim.open_events() == min(len(seen), RECENT_MAX)
    assert len(sim.desk.recent) <= RECENT_MAX
    # A share of grid issues is settled by the worker who found it, waiting to be recorded.
    assert 0 < len(sim.desk.on_spot) <= ON_SPOT_MAX


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


# -- the field plays the command center's tasks ----------------------------------------------


def _dispatch_msg(task_id: str, event_id: str, units: list[Any]) -> dict[str, Any]:
    return {"task_id": task_id, "event_id": event_id, "plan_id": None, "by": "zhang",
            "ts": int(time.time() * 1000), "note": "",
            "assignees": [{"id": u.id, "kind": "worker" if isinstance(u, Worker) else "resource",
                           "eta_s": 300} for u in units]}


def _nearest(units: list[Any], point: tuple[float, float], t: float) -> Any:
    return min(units, key=lambda u: distance_m(u.mover.at(t), point))


def _play(sim: Simulator, until: float, step: float = 5.0,
          after_last: float = 120.0) -> list[tuple[float, str, dict]]:
    """Advance the engine's own clock in steps until `until`, or `after_last` sim seconds
    after the field has no open task; (sim time, kind, message) of all that was sent."""
    out = []
    t = sim.s
    while t < until:
        t = min(until, t + step)
        out += [(t, ch.removeprefix("cc:"), json.loads(raw)) for ch, raw in sim.advance(t)]
        if not sim.field.plays:
            until = min(until, t + after_last)
    return out


@pytest.fixture
def calm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task ends handled: no random rejection or call for support."""
    monkeypatch.setattr(field, "REJECT_SHARE", 0.0)
    monkeypatch.setattr(field, "SUPPORT_SHARE", 0.0)


def test_sim009_field_plays_a_dispatched_task(calm: None) -> None:
    settings = Settings()
    sim = Simulator(CITY, seed=4, workers=400, cameras=50, settings=settings)
    sim.warm_up(600)
    inc = next(i for i in sim.desk.recent.values() if i.severity > 2)
    free = [w for w in sim.world.workers if w.status == "on_duty" and w.busy_with is None]
    worker = _nearest(free, inc.point, sim.s)
    cars = [r for r in sim.world.by_kind["police_car"] if r.status == "available"]
    car = _nearest(cars, inc.point, sim.s)
    t0, start = sim.s, {u.id: distance_m(u.mover.at(sim.s), inc.point) for u in (worker, car)}
    assert sim.dispatched(_dispatch_msg("T-9", inc.id, [worker, car]))
    assert not sim.dispatched(_dispatch_msg("T-9", inc.id, [worker, car]))  # a duplicate
    out = _play(sim, t0 + 4 * 3600)

    feedback = [(t, m) for t, k, m in out if k == "feedback"]
    assert {(m["task_id"], m["event_id"]) for _, m in feedback} == {("T-9", inc.id)}
    for _, m in feedback:
        raw = json.dumps(m, ensure_ascii=False)
        # played hours ahead of the wall clock: received when it is sent
        assert isinstance(protocol.parse("feedback", raw, now_ms=m["ts"]),
                          protocol.Accepted), raw
        assert m["note"] and re.search(r"[\u4e00-\u9fff]", m["note"])  # a Chinese note
    stages = [(m["actor_id"], m["stage"]) for _, m in feedback]
    # The first on scene reports it handled, and every unit closes its own order with it
    # (a task is handled once all its assignees say so); nothing comes after.
    first = next(i for i, (_, s) in enumerate(stages) if s == "handled")
    assert sorted(stages[first:]) == sorted((u.id, "handled") for u in (worker, car)), stages
    lead = stages[first][0]
    assert stages.index((lead, "accepted")) < stages.index((lead, "arrived")) < first
    assert [m["ts"] for _, m in feedback] == sorted(m["ts"] for _, m in feedback)
    assert all(s != "rejected" and s != "need_support" for _, s in stages)

    for unit in (worker, car):
        kind = "worker" if unit is worker else "resource"
        fixes = [(t, m) for t, k, m in out if k == kind and m["id"] == unit.id]
        accepted = next(t for t, m in feedback if m["actor_id"] == unit.id
                        and m["stage"] == "accepted")
        done = feedback[-1][0]
        arrived = next((t for t, m in feedback if m["actor_id"] == unit.id
                        and m["stage"] == "arrived"), done)
        # Engaged, the unit sends positions only; the command center owns its status.
        during = [m for t, m in fixes if t0 < t < done]
        assert during and all("status" not in m for m in during)
        # On the way it closes in on the scene, leg by leg, and stops there.
        way = [distance_m((m["lon"], m["lat"]), inc.point) for t, m in fixes
               if accepted <= t <= arrived]
        assert len(way) >= 2
        assert all(b <= a + 2.0 for a, b in pairwise(way)), way
        if arrived < done:
            assert way[-1] < 5.0
            # As long as the wall's ETA says, give or take traffic and getting going.
            speed = settings.speed_kmh("worker" if unit is worker else "police_car") / 3.6
            eta = start[unit.id] * settings.detour_factor / speed
            assert 0.85 * eta <= arrived - accepted <= 1.3 * eta + 60
        # Once the task is handled it reports a status of its own again.
        after = [m for t, m in fixes if t > done]
        assert after and after[0]["status"] == ("on_duty" if unit is worker else "available")
    assert worker.busy_with is None and car.mission is None and not sim.field.plays
    assert all(m["status"] == "reported" for _, k, m in out if k == "event")


def test_sim010_rejections_and_calls_for_support(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = Simulator(CITY, seed=6, workers=400, cameras=50, settings=Settings())
    sim.warm_up(600)
    free = [w for w in sim.world.workers if w.status == "on_duty" and w.busy_with is None]
    # Events with free workers close by (a small world leaves many grids without one).
    events = [i for i in sim.desk.recent.values() if i.severity > 2
              and distance_m(_nearest(free, i.point, sim.s).mover.at(sim.s), i.point) < 800]
    idle: list[Worker] = []  # four different workers, each close to the event it is sent to
    for inc in (events[0], events[1], events[1], events[2]):
        idle.append(_nearest([w for w in free if w not in idle], inc.point, sim.s))
    # A unit that cannot go (off duty) turns the task down at once, with the reason.
    off = next(w for w in sim.world.workers if w.status == "off_duty")
    assert sim.dispatched(_dispatch_msg("T-off", events[0].id, [off, idle[0]]))
    # Some units turn a task down; a turned-down task frees all its units.
    monkeypatch.setattr(field, "REJECT_SHARE", 1.0)
    assert sim.dispatched(_dispatch_msg("T-no", events[1].id, [idle[1], idle[2]]))
    # Some ask for support from the scene, and still finish the job.
    monkeypatch.setattr(field, "REJECT_SHARE", 0.0)
    monkeypatch.setattr(field, "SUPPORT_SHARE", 1.0)
    assert sim.dispatched(_dispatch_msg("T-help", events[2].id, [idle[3]]))
    out = _play(sim, sim.s + 4 * 3600)
    by_task: dict[str, list[tuple[str, str, str]]] = {}
    for _, kind, m in out:
        if kind == "feedback":
            by_task.setdefault(m["task_id"], []).append((m["actor_id"], m["stage"], m["note"]))
    assert [(a, s) for a, s, _ in by_task["T-off"]] == [(off.id, "rejected")]
    assert "下班" in by_task["T-off"][0][2]
    assert [s for _, s, _ in by_task["T-no"]] == ["rejected"]
    assert [s for _, s, _ in by_task["T-help"]] == ["accepted", "arrived", "need_support",
                                                   "handled"]
    assert all(note for notes in by_task.values() for *_, note in notes)
    # Everyone is free again and reports a status.
    for w in (off, *idle[:4]):
        assert w.busy_with is None and w.task is None
        last = [m for _, k, m in out if k == "worker" and m["id"] == w.id][-1]
        assert last["status"] in ("on_duty", "off_duty")
    assert not sim.field.plays


def test_sim011_dispatch_over_redis_gets_feedback(redis_url: str, collect: Any,
                                                  calm: None) -> None:
    """The real loop: cc:dispatch on Redis in, cc:feedback and positions out, fast-forward."""
    sim = Simulator(CITY, seed=8, rate=100.0, workers=150, cameras=30, settings=Settings())
    stop = threading.Event()
    c = collect()
    thread = threading.Thread(target=sim.run, args=(redis_url, stop, 60.0, 300.0), daemon=True)
    thread.start()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        while not any(k == "event" for k, _ in c.messages) and time.monotonic() < deadline:
            time.sleep(0.05)
        # One of the simulator's events with a free worker close by.
        t = sim.s
        free = [w for w in sim.world.workers if w.status == "on_duty" and w.busy_with is None]
        pick = None
        for inc in list(sim.desk.recent.values()):
            w = _nearest(free, inc.point, t)
            if distance_m(w.mover.at(t), inc.point) < 300:
                pick = (inc, w)
                break
        assert pick is not None
        inc, worker = pick
        inc.handle_s = 120.0  # a short job, so the test is short too
        while client.pubsub_numsub("cc:dispatch")[0][1] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        client.publish("cc:dispatch", json.dumps(_dispatch_msg("T-r", inc.id, [worker])))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                k == "feedback" and '"handled"' in raw for k, raw in c.messages):
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(5)
        client.close()
    out = [(k, json.loads(raw)) for k, raw in c.close()]
    feedback = [m for k, m in out if k == "feedback"]
    assert [(m["actor_id"], m["stage"], m["task_id"], m["event_id"]) for m in feedback] == [
        (worker.id, s, "T-r", inc.id) for s in ("accepted", "arrived", "handled")]
    i_acc, i_arr, i_done = (next(i for i, (k, m) in enumerate(out)
                                 if k == "feedback" and m["stage"] == s)
                            for s in ("accepted", "arrived", "handled"))
    fixes = [(i, m) for i, (k, m) in enumerate(out) if k == "worker" and m["id"] == worker.id]
    way = [distance_m((m["lon"], m["lat"]), inc.point) for i, m in fixes if i_acc < i < i_arr]
    assert all(b <= a + 2.0 for a, b in pairwise(way)), way
    assert all("status" not in m for i, m in fixes if i_acc < i < i_done)
    assert all(m["status"] == "reported" for k, m in out if k == "event")


# -- the demo's autopilot: the other seats, through the real Desk ---------------------------


class Clock:
    """The autopilot's and the desk's idea of now (ms), moved by the test."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_sim012_autopilot_dispatches_unattended_events(stack: Any) -> None:
    settings = dataclasses.replace(stack.settings, sim_autopilot_s=5.0)
    base = int(time.time() * 1000)
    clock = Clock(base)
    lon, lat = 119.96, 36.78
    events = {"E-iv": 4, "E-ii": 2, "E-spot": 4}
    for i, (eid, severity) in enumerate(events.items()):
        stack.publish("event", {"id": eid, "type": "dispute", "severity": severity,
                                "lon": lon + i * 0.01, "lat": lat, "ts": base,
                                "title": "邻里纠纷", "source": "app"})
    for i in range(6):  # two free grid workers near each event
        stack.publish("worker", {"id": f"W-{i}", "lon": lon + (i // 2) * 0.01 + 0.001,
                                 "lat": lat + 0.001 * (i % 2), "status": "on_duty", "ts": base})
    stack.wait_seq(9)
    spots: deque[OnSpot] = deque([OnSpot("E-spot", "W-5", "worker", 0.0)])
    pilot = autopilot.build(stack.settings.redis_url or "", settings, on_spot=spots,
                            clock=clock)
    sub = stack.client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("cc:dispatch")
    r = stack.client

    def status(eid: str) -> str:
        return json.loads(r.hget("cc:state:event", eid))["status"]

    # The reporter settles E-spot on the spot: recorded at once as that worker's task.
    assert pilot.tick()["on_spot"] == 1
    spot_task = pilot.desk.task_of_event("E-spot")
    assert spot_task is not None and spot_task["by"] == "autopilot"
    assert [a["id"] for a in spot_task["assignees"]] == ["W-5"]
    # Nobody clicked, but the wait is not over: nothing happens.
    clock.ms = base + 4_000
    assert pilot.tick()["dispatched"] == 0
    assert status("E-iv") == status("E-ii") == "reported"
    # After the wait the level IV event is dispatched with the proposal; level II waits longer.
    clock.ms = base + 6_000
    assert pilot.tick()["dispatched"] == 1
    assert status("E-iv") == "dispatched" and status("E-ii") == "reported"
    task = pilot.desk.task_of_event("E-iv")
    assert task is not None and task["by"] == "autopilot" and task["plan_id"] == "P-DISPUTE-01"
    assert task["assignees"][0]["id"] in ("W-0", "W-1")
    clock.ms = base + 11_000
    assert pilot.tick()["dispatched"] == 1
    assert status("E-ii") == "dispatched"
    # Each went out on cc:dispatch like a person's dispatch, and into the audit log.
    sent = []
    deadline = time.monotonic() + 5
    while len(sent) < 3 and time.monotonic() < deadline:
        msg = sub.get_message(timeout=0.2)
        if msg:
            sent.append(json.loads(msg["data"]))
    sub.close()
    assert sorted(m["event_id"] for m in sent) == ["E-ii", "E-iv", "E-spot"]
    assert {m["by"] for m in sent} == {"autopilot"}
    audit = Audit(r, "cc:").entries()
    assert [(a["user"], a["action"], a["outcome"]) for a in audit] == \
        [("autopilot", "event.dispatch", "success")] * 3

    # The field turns E-iv down: it returns to the commander and, after a wait, goes again.
    worker = task["assignees"][0]["id"]
    clock.ms = base + 12_000
    pilot.desk.on_feedback({"task_id": task["id"], "event_id": "E-iv", "actor_id": worker,
                            "stage": "rejected", "ts": clock.ms, "note": "正在处置其他任务"})
    assert status("E-iv") == "reported"
    clock.ms = base + 16_000
    assert pilot.tick()["dispatched"] == 0
    clock.ms = base + 18_000
    assert pilot.tick()["dispatched"] == 1
    again = pilot.desk.task_of_event("E-iv")
    assert again is not None and again["id"] != task["id"] and again["by"] == "autopilot"

    # Handled in the field → verified, then evaluated, each after the wait.
    for stage in ("accepted", "arrived", "handled"):
        for a in again["assignees"]:
            pilot.desk.on_feedback({"task_id": again["id"], "event_id": "E-iv",
                                    "actor_id": a["id"], "stage": stage, "ts": clock.ms,
                                    "note": "现场调解完毕"})
    assert status("E-iv") == "handled"
    clock.ms = base + 22_000
    assert pilot.tick()["verified"] == 0
    clock.ms = base + 24_000
    assert pilot.tick()["verified"] == 1
    assert status("E-iv") == "verified"
    clock.ms = base + 30_000
    assert pilot.tick()["evaluated"] == 1
    assert status("E-iv") == "closed"
    closed = pilot.desk.task(again["id"])
    assert closed is not None and closed["stage"] == "closed"
    assert closed["verify"]["by"] == "autopilot" and closed["verify"]["passed"] is True
    assert closed["evaluation"]["by"] == "autopilot" and closed["evaluation"]["score"] in (4, 5)
    assert closed["evaluation"]["note"]
    assert pilot.tick() == {"dispatched": 0, "verified": 0, "evaluated": 0, "on_spot": 0}
    pilot.close()


def test_sim013_fixes_made_before_a_dispatch_carry_no_status() -> None:
    """Fixes computed in the tick a dispatch arrives in go out without a status, so they
    cannot undo the busy status the command center has just set."""
    sim = Simulator(CITY, seed=2, workers=100, cameras=10, settings=Settings())
    pending = sim.advance(12.0)
    ids = {json.loads(raw)["id"] for ch, raw in pending if ch == "cc:worker"}
    unit = sorted(ids)[0]
    sim.hint_engaged([unit])  # what the in-process autopilot does right after dispatching
    out = sim._without_status(pending, sim._live_hints())
    assert len(out) == len(pending)
    for (_, before), (ch, after) in zip(pending, out, strict=True):
        msg = json.loads(after)
        if ch == "cc:worker" and msg["id"] == unit:
            assert "status" not in msg and "status" in json.loads(before)
        else:
            assert after == before


@pytest.mark.slow  # seconds of real work: not in make test-fast
def test_sim014_the_whole_loop_with_rework(redis_url: str, calm: None) -> None:
    """Ingest, the watch service, the real Desk and the simulator together: a person
    dispatches one of our workers, the field's feedback drives the task to handled, a failed
    check sends it back (rework, no cc:dispatch for that) and the field does it again."""
    live, stop, threads = start_stack(redis_url, watch=True)
    settings = dataclasses.replace(live.settings, sim_autopilot_s=0.0)
    sim = Simulator(CITY, seed=9, rate=50.0, workers=150, cameras=30, settings=settings)
    sim_stop = threading.Event()
    runner = threading.Thread(target=sim.run, args=(redis_url, sim_stop, 120.0, 300.0),
                              daemon=True)
    runner.start()
    r = live.client
    desk = Desk(Store(r, "cc:"), PlanLibrary.load(), Deadlines.load(), settings)

    def wait(what: Any, timeout: float = 40.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = what()
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError("timed out")

    def status(eid: str) -> str:
        return (desk.store.event(eid) or {}).get("status", "")

    try:
        def pick() -> tuple[Any, Worker] | None:
            t = sim.s
            for inc in list(sim.desk.recent.values()):
                if status(inc.id) != "reported":
                    continue
                for w in sim.world.workers:
                    stored = json.loads(r.hget("cc:state:worker", w.id) or "{}")
                    if w.busy_with is None and w.status == "on_duty" and \
                            stored.get("status") == "on_duty" and \
                            distance_m(w.mover.at(t), inc.point) < 300:
                        return inc, w
            return None

        inc, worker = wait(pick)
        inc.handle_s = 60.0
        task, _ = desk.dispatch(inc.id, by="zhang", key="t-014",
                                assignees=[{"id": worker.id, "kind": "worker"}], plan_id=None,
                                override_reason="就近网格员")
        wait(lambda: status(inc.id) == "handled")
        desk.verify(inc.id, by="li", passed=False, note="回访群众不满意，返工")
        assert status(inc.id) == "in_progress"
        wait(lambda: status(inc.id) == "handled")
        done = desk.task(task["id"])
        assert done is not None
        stages = [(h["by"], h["stage"]) for h in done["history"]]
        assert stages == [("zhang", "dispatched"), (worker.id, "accepted"),
                          (worker.id, "arrived"), (worker.id, "handled"), ("li", "rework"),
                          (worker.id, "arrived"), (worker.id, "handled")], stages
        # Released again by the command center, the worker reports a status of its own.
        assert wait(lambda: json.loads(r.hget("cc:state:worker", worker.id))["status"]
                    == "on_duty")
    finally:
        sim_stop.set()
        runner.join(5)
        stop.set()
        for thread in threads:
            thread.join(5)
        r.close()
