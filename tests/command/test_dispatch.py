"""The duty desk (dashboard/command/dispatch.py) on a real Valkey: proposal, atomic idempotent
dispatch under contention, the feedback lifecycle through the real ingest, verify, evaluate."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary, plan_from_dict
from dashboard.command.proposal import propose
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.errors import Refused
from dashboard.store import Store

from ..conftest import Stack
from ..units_util import TS, east, event, put, resource, worker

TASK_1 = "T20261122-0001"  # TS is 2026-11-22 10:00 in Pingdu

FIRE_PLAN = {
    "id": "P-TEST-FIRE", "name": {"zh-CN": "测试火灾预案", "en": "Test fire plan"}, "level": 2,
    "applies_to": {"types": ["fire"], "severities": [1, 2, 3, 4]},
    "steps": [{"order": 1, "role": "commander", "action": {"zh-CN": "调度", "en": "Send"},
               "limit_min": 5}],
    "resources": [{"kind": "worker", "count": 1, "max_eta_s": 600},
                  {"kind": "fire_engine", "count": 2, "max_eta_s": 300}],
}


class Clock:
    """The desk's time, moved by the test; `hook` runs once on the next reading."""

    def __init__(self, now: int = TS) -> None:
        self.now = now
        self.hook: Any = None

    def __call__(self) -> int:
        hook, self.hook = self.hook, None
        if hook:
            hook()
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_desk(r: redis.Redis, clock: Clock) -> Desk:
    plans = PlanLibrary([plan_from_dict(FIRE_PLAN)])
    return Desk(Store(r), plans, Deadlines.load(), Settings(), clock=clock)


@pytest.fixture
def desk(r: redis.Redis, clock: Clock) -> Desk:
    return make_desk(r, clock)


class Dispatches:
    """Messages published on cc:dispatch since the fixture started."""

    def __init__(self, r: redis.Redis) -> None:
        self.sub = r.pubsub(ignore_subscribe_messages=True)
        self.sub.subscribe("cc:dispatch")
        self.got: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        # an ignored subscribe confirmation also reads as None: poll a little while
        for _ in range(10):
            m = self.sub.get_message(timeout=0.05)
            if m is not None:
                self.got.append(json.loads(m["data"]))
        return self.got


@pytest.fixture
def dispatches(r: redis.Redis) -> Iterator[Dispatches]:
    reader = Dispatches(r)
    yield reader
    reader.sub.close()


def city_scene(store: Store) -> None:
    """E1 at the origin in grid G1; workers and fire engines around it."""
    event(store, "E1", grid_id="G1")
    worker(store, "W-NEAR", 150, grid_id="G9")
    worker(store, "W-OWN", 400, grid_id="G1")          # the event's own grid worker
    worker(store, "W-BUSY", 50, status="busy", grid_id="G1")
    resource(store, "F1", "fire_engine", 1200)          # 1200 m × 1.4 at 40 km/h = 152 s
    resource(store, "F2", "fire_engine", 2000)          # 252 s
    resource(store, "F3", "fire_engine", 9000)          # 1134 s: too far for 300 s
    resource(store, "A1", "ambulance", 300)


def test_disp001_proposal_fills_calls_own_grid_worker_first(r: redis.Redis, desk: Desk) -> None:
    city_scene(Store(r))
    p = desk.proposal("E1")
    assert p["plan"]["plan"]["id"] == "P-TEST-FIRE"
    calls = {c["kind"]: c for c in p["calls"]}
    assert [u["id"] for u in calls["worker"]["units"]] == ["W-OWN"]
    assert [u["id"] for u in calls["fire_engine"]["units"]] == ["F1", "F2"]
    assert all(u["eta_s"] <= 300 for u in calls["fire_engine"]["units"])
    assert p["unfilled"] == []
    assert [u["id"] for u in p["candidates"]["workers"]] == ["W-NEAR", "W-OWN"]
    assert [u["id"] for u in p["candidates"]["resources"]][:2] == ["A1", "F1"]
    # one fire engine taken: the call can no longer be filled in time
    r.set("cc:task:unit:resource:F2", "T-other")
    p = desk.proposal("E1")
    assert p["unfilled"] == [{"kind": "fire_engine", "count": 2, "max_eta_s": 300,
                              "missing": 1}]
    with pytest.raises(Refused) as err:
        desk.proposal("nope")
    assert err.value.status == 404 and err.value.code == "no_event"


def test_disp010_own_grid_worker_only_first_when_near(r: redis.Redis, clock: Clock) -> None:
    city_scene(Store(r))
    plans = PlanLibrary([plan_from_dict(FIRE_PLAN)])
    near_300 = dataclasses.replace(Settings(), near_radius_m=300)
    desk = Desk(Store(r), plans, Deadlines.load(), near_300, clock=clock)
    calls = {c["kind"]: c for c in desk.proposal("E1")["calls"]}
    assert [u["id"] for u in calls["worker"]["units"]] == ["W-NEAR"]  # W-OWN is 400 m off


def _race(desk: Desk, keys: list[str], event_id: str = "E1") -> list[Any]:
    out: list[Any] = []
    barrier = threading.Barrier(len(keys))

    def go(key: str) -> None:
        barrier.wait()
        try:
            out.append(desk.dispatch(event_id, by="zhang", key=key, assignees=None,
                                     plan_id=None))
        except Refused as exc:
            out.append(exc)

    threads = [threading.Thread(target=go, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_disp002_twenty_threads_different_keys_one_task(r: redis.Redis, desk: Desk,
                                                        dispatches: Dispatches) -> None:
    city_scene(Store(r))
    out = _race(desk, [f"key-{i}" for i in range(20)])
    made = [o for o in out if isinstance(o, tuple)]
    refused = [o for o in out if isinstance(o, Refused)]
    assert len(made) == 1 and made[0][1] is False
    assert len(refused) == 19
    assert {(e.code, e.status) for e in refused} == {("has_task", 409)}
    task = made[0][0]
    assert task["id"] == TASK_1 and task["plan_id"] == "P-TEST-FIRE"
    assert r.hlen("cc:state:task") == 1 and r.smembers("cc:tasks:open") == {TASK_1}
    assert r.get("cc:task:event:E1") == TASK_1
    assert sorted(r.keys("cc:task:unit:*")) == [
        "cc:task:unit:resource:F1", "cc:task:unit:resource:F2", "cc:task:unit:worker:W-OWN"]
    messages = dispatches.read()
    assert len(messages) == 1
    assert messages[0] == {
        "task_id": TASK_1, "event_id": "E1", "plan_id": "P-TEST-FIRE",
        "assignees": [{"id": a["id"], "kind": a["kind"], "eta_s": a["eta_s"]}
                      for a in task["assignees"]],
        "by": "zhang", "ts": TS, "note": ""}
    stored_event = json.loads(r.hget("cc:state:event", "E1"))
    assert stored_event["status"] == "dispatched" and stored_event["task_id"] == TASK_1
    assert stored_event["ts"] == TS and stored_event["status_ts"] == TS
    assert r.hget("cc:meta:worker", "W-OWN").endswith("|busy")
    assert r.hget("cc:meta:resource", "F1").endswith("|dispatched")
    # the walls saw it: restated records and the task frame in the change log
    kinds = [k for _, k, _, _ in Store(r).log_since(0, 1000)]
    assert kinds.count("task") == 1 and kinds[-1] == "task"


def test_disp003_twenty_threads_same_key_one_task_rest_duplicates(
        r: redis.Redis, desk: Desk, dispatches: Dispatches) -> None:
    city_scene(Store(r))
    out = _race(desk, ["same-key"] * 20)
    assert all(isinstance(o, tuple) for o in out), [o for o in out if not isinstance(o, tuple)]
    assert {o[0]["id"] for o in out} == {TASK_1}
    assert sorted(o[1] for o in out) == [False] + [True] * 19
    assert r.hlen("cc:state:task") == 1
    assert len(dispatches.read()) == 1
    assert r.get("cc:idem:same-key") == TASK_1 and 0 < r.ttl("cc:idem:same-key") <= 86400
    # the key belongs to E1: reusing it for another event is refused
    event(Store(r), "E2", 50)
    with pytest.raises(Refused) as err:
        desk.dispatch("E2", by="zhang", key="same-key", assignees=None, plan_id=None)
    assert err.value.code == "key_reused" and err.value.status == 409


def test_disp004_two_events_compete_for_one_unit(r: redis.Redis, desk: Desk,
                                                 dispatches: Dispatches) -> None:
    store = Store(r)
    event(store, "E1")
    event(store, "E2", 100)
    worker(store, "W1", 50)
    results: dict[str, Any] = {}
    barrier = threading.Barrier(2)

    def go(event_id: str) -> None:
        barrier.wait()
        try:
            results[event_id] = desk.dispatch(
                event_id, by="zhang", key=f"k-{event_id}",
                assignees=[{"id": "W1", "kind": "worker"}], plan_id=None,
                override_reason="only one worker near")
        except Refused as exc:
            results[event_id] = exc

    threads = [threading.Thread(target=go, args=(e,)) for e in ("E1", "E2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    won = [e for e, v in results.items() if isinstance(v, tuple)]
    lost = [v for v in results.values() if isinstance(v, Refused)]
    assert len(won) == 1 and len(lost) == 1
    assert lost[0].code == "unit_busy" and lost[0].status == 409
    assert lost[0].detail["unit"] == "W1" and "task_id" not in lost[0].detail
    assert r.get("cc:task:unit:worker:W1") == results[won[0]][0]["id"]
    assert r.hlen("cc:state:task") == 1 and len(dispatches.read()) == 1
    loser = "E2" if won == ["E1"] else "E1"
    assert json.loads(r.hget("cc:state:event", loser))["status"] == "reported"


def test_disp005_override_needs_a_reason_and_is_kept(r: redis.Redis, desk: Desk) -> None:
    city_scene(Store(r))
    mine = [{"id": "W-NEAR", "kind": "worker"}, {"id": "F3", "kind": "resource"}]
    with pytest.raises(Refused) as err:
        desk.dispatch("E1", by="zhang", key="k1", assignees=mine, plan_id="P-TEST-FIRE")
    assert (err.value.code, err.value.status) == ("override_reason_required", 400)
    assert sorted(err.value.detail["recommended"]) == ["F1", "F2", "W-OWN"]
    for bad, code, status in [
        ([{"id": "W-BUSY", "kind": "worker"}], "unit_busy", 409),
        ([{"id": "nobody", "kind": "worker"}], "unit_unknown", 400),
        ([{"id": "W-NEAR", "kind": "camera"}], "bad_body", 400),
        ([], "no_units", 400),
    ]:
        with pytest.raises(Refused) as err:
            desk.dispatch("E1", by="zhang", key="k2", assignees=bad, plan_id=None,
                          override_reason="x")
        assert (err.value.code, err.value.status) == (code, status), bad
    with pytest.raises(Refused) as err:
        desk.dispatch("E1", by="zhang", key="k3", assignees=mine, plan_id="P-NOPE",
                      override_reason="x")
    assert err.value.code == "unknown_plan"
    assert r.hlen("cc:state:task") == 0 and not r.keys("cc:task:unit:*")
    task, dup = desk.dispatch("E1", by="zhang", key="k4", assignees=mine,
                              plan_id="P-TEST-FIRE", note="老王熟悉情况",
                              override_reason="王师傅在附近")
    assert not dup
    assert [a["id"] for a in task["assignees"]] == ["W-NEAR", "F3"]
    assert task["override"]["reason"] == "王师傅在附近"
    assert sorted(task["override"]["recommended"]) == ["F1", "F2", "W-OWN"]
    assert task["note"] == "老王熟悉情况"
    assert set(task["deadlines"]) == {"dispatch", "arrive", "handle"}
    assert task["deadlines"]["arrive"] > TS
    assert json.loads(r.hget("cc:state:task", task["id"])) == task


def test_disp006_a_gps_fix_in_between_is_retried_not_lost(r: redis.Redis, clock: Clock,
                                                          desk: Desk) -> None:
    store = Store(r)
    city_scene(store)
    moved = east(380)

    def fix_arrives() -> None:  # between the desk's read and its script
        put(store, "worker", "W-OWN", *moved, ts=TS + 1000, grid_id="G1",
            name="网格员W-OWN")

    clock.hook = fix_arrives
    task, _ = desk.dispatch("E1", by="zhang", key="k", assignees=None, plan_id=None)
    stored = json.loads(r.hget("cc:state:worker", "W-OWN"))
    assert stored["status"] == "busy" and stored["lon"] == round(moved[0], 6)
    assert stored["ts"] == TS + 1000
    assert task["id"] == TASK_1


def feedback(stack: Stack, task_id: str, actor: str, stage: str, ts: int,
             event_id: str = "E1") -> None:
    stack.publish("feedback", {"task_id": task_id, "event_id": event_id, "actor_id": actor,
                               "stage": stage, "ts": ts, "note": f"{actor} {stage}"})


def drive(stack: Stack, desk: Desk, since: int) -> int:
    """Hand every feedback record ingest logged after `since` to the desk; new cursor."""
    entries = desk.store.log_since(since, 1000)
    for _seq, kind, _op, data in entries:
        if kind == "feedback":
            desk.on_feedback(json.loads(data))
    return entries[-1][0] if entries else since


def test_disp007_full_lifecycle_by_feedback_through_ingest(stack: Stack, r: redis.Redis,
                                                           clock: Clock) -> None:
    desk = make_desk(r, clock)
    base = east(0)
    stack.publish("event", {"id": "E1", "type": "fire", "severity": 2, "lon": base[0],
                            "lat": base[1], "ts": TS, "title": "仓库起火"})
    for i, (uid, metres) in enumerate([("W1", 200)]):
        lon, lat = east(metres)
        stack.publish("worker", {"id": uid, "lon": lon, "lat": lat, "ts": TS + i,
                                 "status": "on_duty", "name": "李强"})
    for uid, metres in [("F1", 1000), ("F2", 1500)]:
        lon, lat = east(metres)
        stack.publish("resource", {"id": uid, "kind": "fire_engine", "lon": lon, "lat": lat,
                                   "ts": TS, "status": "available"})
    stack.wait_seq(4)
    task, _ = desk.dispatch("E1", by="zhang", key="k", assignees=None, plan_id=None)
    tid = task["id"]
    cursor = desk.store.seq()
    # a GPS fix without status while engaged: the position lands, the status stays
    lon, lat = east(150)
    stack.publish("worker", {"id": "W1", "lon": lon, "lat": lat, "ts": TS + 5000})
    steps = [("W1", "accepted"), ("F1", "accepted"), ("F2", "accepted"),
             ("F1", "accepted"),  # a repeat
             ("F1", "arrived"), ("STRANGER", "arrived"), ("W1", "arrived"), ("F2", "arrived"),
             ("W1", "handled"), ("F1", "handled")]
    for n, (actor, stage) in enumerate(steps):
        feedback(stack, tid, actor, stage, TS + 10_000 + n)
    feedback(stack, "T-unknown", "W1", "handled", TS + 20_000)
    stack.wait_seq(cursor + len(steps) + 2)
    clock.now = TS + 60_000
    drive(stack, desk, cursor)
    worker_now = json.loads(r.hget("cc:state:worker", "W1"))
    assert worker_now["lon"] == round(lon, 6) and worker_now["status"] == "on_duty"
    task = desk.task(tid)
    assert task is not None
    assert {a["id"]: a["stage"] for a in task["assignees"]} == {
        "W1": "handled", "F1": "handled", "F2": "arrived"}
    assert task["stage"] == "arrived"  # the furthest stage all of them reached
    assert json.loads(r.hget("cc:state:event", "E1"))["status"] == "in_progress"
    assert r.hget("cc:meta:resource", "F2").endswith("|on_scene")
    assert r.hget("cc:meta:resource", "F1").endswith("|available")  # handled: released
    assert not r.exists("cc:task:unit:resource:F1", "cc:task:unit:worker:W1")
    # repeats changed nothing: one history entry per real step
    assert [h["stage"] for h in task["history"]].count("accepted") == 3
    cursor = desk.store.seq()  # past the desk's own frames too
    feedback(stack, tid, "F2", "handled", TS + 30_000)
    stack.wait_seq(cursor + 1)
    drive(stack, desk, cursor)
    task = desk.task(tid)
    assert task is not None and task["stage"] == "handled"
    assert json.loads(r.hget("cc:state:event", "E1"))["status"] == "handled"
    assert not r.keys("cc:task:unit:*")
    assert r.hget("cc:meta:resource", "F2").endswith("|available")
    with pytest.raises(Refused) as err:
        desk.evaluate("E1", by="li", score=5)
    assert err.value.code == "not_verified"
    clock.now = TS + 120_000
    task = desk.verify("E1", by="li", passed=True, note="现场已清理")
    assert task["verify"] == {"by": "li", "ts": TS + 120_000, "passed": True,
                              "note": "现场已清理"}
    assert json.loads(r.hget("cc:state:event", "E1"))["status"] == "verified"
    task = desk.evaluate("E1", by="li", score=5, note="处置及时")
    assert task["stage"] == "closed" and task["evaluation"]["score"] == 5
    event_now = json.loads(r.hget("cc:state:event", "E1"))
    assert event_now["status"] == "closed"
    assert not r.sismember("cc:events:open", "E1") and not r.smembers("cc:tasks:open")
    assert not r.exists("cc:task:event:E1")
    assert desk.task_of_event("E1") == task == desk.task(tid)
    frames = [json.loads(d) for _, k, _, d in desk.store.log_since(0, 10_000) if k == "task"]
    assert [f["stage"] for f in frames][-3:] == ["handled", "handled", "closed"]
    assert [s["status"] for s in desk.store.timeline("E1")] == [
        "reported", "dispatched", "in_progress", "handled", "verified", "closed"]


def test_disp008_rejected_releases_units_and_a_new_dispatch_supersedes(
        r: redis.Redis, clock: Clock, desk: Desk) -> None:
    city_scene(Store(r))
    task, _ = desk.dispatch("E1", by="zhang", key="k1", assignees=None, plan_id=None)
    fb = {"task_id": task["id"], "event_id": "E1", "actor_id": "W-OWN", "stage": "rejected",
          "ts": TS + 1000, "note": "不在辖区"}
    after = desk.on_feedback(fb)
    assert after is not None and after["stage"] == "rejected"
    assert desk.on_feedback(fb) == after  # the same message again: nothing changes
    assert not r.keys("cc:task:unit:*")
    assert r.hget("cc:meta:worker", "W-OWN").endswith("|on_duty")
    assert json.loads(r.hget("cc:state:event", "E1"))["status"] == "reported"
    assert r.smembers("cc:tasks:open") == {task["id"]}
    assert desk.on_feedback({**fb, "actor_id": "nobody", "ts": TS + 2}) is None
    assert desk.on_feedback({**fb, "task_id": "T-none"}) is None
    clock.now = TS + 5000
    second, _ = desk.dispatch("E1", by="zhang", key="k2", assignees=None, plan_id=None)
    assert second["id"] == "T20261122-0002"
    first = desk.task(task["id"])
    assert first is not None and first["stage"] == "closed"
    assert r.smembers("cc:tasks:open") == {second["id"]}
    assert r.get("cc:task:event:E1") == second["id"]


def test_disp009_need_support_and_failed_verify_rework(r: redis.Redis, clock: Clock,
                                                      desk: Desk) -> None:
    city_scene(Store(r))
    task, _ = desk.dispatch("E1", by="zhang", key="k", assignees=None, plan_id=None)
    tid = task["id"]

    def fb(actor: str, stage: str, ts: int) -> dict[str, Any] | None:
        return desk.on_feedback({"task_id": tid, "event_id": "E1", "actor_id": actor,
                                 "stage": stage, "ts": ts})

    after = fb("F1", "need_support", TS + 1)
    assert after is not None and after["stage"] == "need_support"
    assert json.loads(r.hget("cc:state:event", "E1"))["status"] == "in_progress"
    assert r.exists("cc:task:unit:resource:F1")  # still engaged
    with pytest.raises(Refused) as err:
        desk.verify("E1", by="li", passed=True)
    assert (err.value.code, err.value.status) == ("bad_stage", 409)
    for n, actor in enumerate(("W-OWN", "F1", "F2")):
        fb(actor, "handled", TS + 10 + n)
    assert desk.task(tid)["stage"] == "handled"  # type: ignore[index]
    task = desk.verify("E1", by="li", passed=False, note="还有积水")
    assert task["stage"] == "rework" and task["verify"]["passed"] is False
    assert {a["stage"] for a in task["assignees"]} == {"rework"}
    assert json.loads(r.hget("cc:state:event", "E1"))["status"] == "in_progress"
    for n, actor in enumerate(("W-OWN", "F1", "F2")):
        fb(actor, "handled", TS + 100 + n)
    assert desk.verify("E1", by="li", passed=True)["verify"]["passed"] is True
    for bad in (0, 6, "5", True, None, 4.5):
        with pytest.raises(Refused) as err:
            desk.evaluate("E1", by="li", score=bad)  # type: ignore[arg-type]
        assert (err.value.code, err.value.status) == ("bad_score", 400)
    assert desk.evaluate("E1", by="li", score=3)["stage"] == "closed"
    with pytest.raises(Refused) as err:
        desk.evaluate("E1", by="li", score=3)
    assert err.value.status == 409
    with pytest.raises(Refused) as err:
        desk.dispatch("E1", by="zhang", key="k-again", assignees=None, plan_id=None)
    assert (err.value.code, err.value.status) == ("bad_stage", 409)


def test_disp011_picking_what_was_shown_is_no_override_after_units_moved(
        r: redis.Redis, desk: Desk) -> None:
    store = Store(r)
    city_scene(store)
    shown = desk.proposal("E1")
    picked = [{"id": u["id"], "kind": u["kind"]} for c in shown["calls"] for u in c["units"]]
    assert sorted(a["id"] for a in picked) == ["F1", "F2", "W-OWN"]
    # F2 drives off before the click: a proposal now would offer F1 alone
    put(store, "resource", "F2", *east(8000), ts=TS + 1000, kind="fire_engine")
    now = propose(store, desk.plans, desk.settings, store.event("E1") or {})
    assert [u["id"] for u in now["calls"][1]["units"]] == ["F1"]
    task, _ = desk.dispatch("E1", by="zhang", key="k", assignees=picked, plan_id="P-TEST-FIRE")
    assert task["override"] is None
    assert sorted(a["id"] for a in task["assignees"]) == ["F1", "F2", "W-OWN"]


def test_disp012_an_override_is_recorded_against_what_was_shown(r: redis.Redis,
                                                                desk: Desk) -> None:
    city_scene(Store(r))
    desk.proposal("E1")
    mine = [{"id": "W-NEAR", "kind": "worker"}]
    with pytest.raises(Refused) as err:
        desk.dispatch("E1", by="zhang", key="k", assignees=mine, plan_id=None)
    assert sorted(err.value.detail["recommended"]) == ["F1", "F2", "W-OWN"]
    task, _ = desk.dispatch("E1", by="zhang", key="k", assignees=mine, plan_id=None,
                            override_reason="只派网格员先核实")
    assert task["override"] == {"reason": "只派网格员先核实",
                                "recommended": ["W-OWN", "F1", "F2"]}


def test_disp013_a_task_step_moves_the_cockpit_version(r: redis.Redis, desk: Desk) -> None:
    """Arriving keeps the event in progress, yet the cockpit's times read the task: the
    figures' cache must see a new version."""
    city_scene(Store(r))
    task, _ = desk.dispatch("E1", by="zhang", key="k1", assignees=None, plan_id=None)
    fb = {"task_id": task["id"], "event_id": "E1", "actor_id": "W-OWN", "stage": "accepted",
          "ts": TS + 1000, "note": ""}
    assert desk.on_feedback(fb) is not None
    status = json.loads(r.hget("cc:state:event", "E1"))["status"]
    ver = int(r.get("cc:stats:ver") or 0)
    assert desk.on_feedback({**fb, "stage": "arrived", "ts": TS + 2000}) is not None
    assert json.loads(r.hget("cc:state:event", "E1"))["status"] == status
    assert int(r.get("cc:stats:ver")) > ver


def test_disp014_a_team_reporting_at_once_is_one_step(r: redis.Redis, desk: Desk) -> None:
    """Several assignees' feedback for one task: one read and one write, the same outcome
    as one by one; records of others or of another task change nothing."""
    city_scene(Store(r))
    task, _ = desk.dispatch("E1", by="zhang", key="k", assignees=None, plan_id=None)
    tid, team = task["id"], [a["id"] for a in task["assignees"]]
    assert sorted(team) == ["F1", "F2", "W-OWN"]

    def frames() -> list[dict[str, Any]]:
        return [json.loads(d) for _, k, _, d in desk.store.log_since(0, 10_000) if k == "task"]

    def records(stage: str, ts: int) -> list[dict[str, Any]]:
        return [{"task_id": tid, "event_id": "E1", "actor_id": a, "stage": stage, "ts": ts}
                for a in team]

    before = len(frames())
    stray = [{"task_id": tid, "event_id": "E1", "actor_id": "nobody", "stage": "arrived",
              "ts": TS + 5}, {"task_id": "T-other", "event_id": "E1", "actor_id": "F1",
                              "stage": "arrived", "ts": TS + 5}]
    after = desk.on_feedbacks([*records("arrived", TS + 5), *stray])
    assert after is not None and after["stage"] == "arrived"
    assert {a["stage"] for a in after["assignees"]} == {"arrived"}
    assert [h["by"] for h in after["history"][1:]] == team
    assert len(frames()) == before + 1  # one write
    assert json.loads(r.hget("cc:state:event", "E1"))["status"] == "in_progress"
    assert {json.loads(r.hget("cc:state:resource", f))["status"] for f in ("F1", "F2")} == {
        "on_scene"}
    assert desk.on_feedbacks(records("arrived", TS + 5)) == after  # again: nothing changes
    assert len(frames()) == before + 1
    done = desk.on_feedbacks(records("handled", TS + 9))
    assert done is not None and done["stage"] == "handled"
    assert json.loads(r.hget("cc:state:event", "E1"))["status"] == "handled"
    assert not r.keys("cc:task:unit:*")  # the whole team free again
    assert json.loads(r.hget("cc:state:resource", "F1"))["status"] == "available"
    assert len(frames()) == before + 2
    assert desk.on_feedbacks(stray) is None and desk.on_feedbacks([]) is None
    assert desk.on_feedbacks([{"task_id": tid, "stage": "odd"}]) is None


def test_disp015_a_remembering_desk_reads_nothing_yet_misses_nothing(
        r: redis.Redis, clock: Clock) -> None:
    """The history's desk rules each next step over what its own last write left, without
    a read; a GPS fix, another desk's step or its failed check meanwhile make it read and
    rule again, so the outcome is what a desk reading every time would write."""
    store = Store(r)
    city_scene(store)
    plans = PlanLibrary([plan_from_dict(FIRE_PLAN)])
    mine = Desk(store, plans, Deadlines.load(), Settings(), clock=clock, remember=16)
    other = make_desk(r, clock)
    reads = 0
    read = mine._scripts.read

    def counted(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return read(*args)

    mine._scripts.read = counted  # type: ignore[method-assign]
    task, _ = mine.dispatch("E1", by="zhang", key="k", assignees=None, plan_id=None)
    tid, team = task["id"], [a["id"] for a in task["assignees"]]

    def stage(desk: Desk, name: str, ts: int) -> dict[str, Any] | None:
        return desk.on_feedbacks([{"task_id": tid, "event_id": "E1", "actor_id": a,
                                   "stage": name, "ts": ts} for a in team])

    assert stage(mine, "accepted", TS + 1)["stage"] == "accepted"  # type: ignore[index]
    assert reads == 0  # the dispatch's own write was enough
    # F1 reports a position: the remembered record is stale; its fix must not be undone
    put(store, "resource", "F1", *east(900), ts=TS + 2, kind="fire_engine", status="en_route")
    fixed = json.loads(r.hget("cc:state:resource", "F1"))
    assert stage(mine, "arrived", TS + 3)["stage"] == "arrived"  # type: ignore[index]
    assert reads == 1
    f1 = json.loads(r.hget("cc:state:resource", "F1"))
    assert (f1["lon"], f1["lat"], f1["status"]) == (fixed["lon"], fixed["lat"], "on_scene")
    assert stage(mine, "handled", TS + 4)["stage"] == "handled"  # type: ignore[index]
    assert reads == 1
    # another desk sends it back: the remembered "handled" would call a new report a repeat
    assert other.verify("E1", by="li", passed=False)["stage"] == "rework"
    again = stage(mine, "handled", TS + 5)
    assert again is not None and again["stage"] == "handled" and reads == 2
    assert [h["stage"] for h in again["history"]][-4:] == ["rework", *["handled"] * 3]
    assert mine.verify("E1", by="li", passed=True)["verify"]["passed"] is True
    assert mine.evaluate("E1", by="li", score=4)["stage"] == "closed"
    assert reads == 2
    assert json.loads(r.hget("cc:state:event", "E1"))["status"] == "closed"
    assert not r.keys("cc:task:unit:*")
    assert {json.loads(r.hget("cc:state:resource", f))["status"] for f in ("F1", "F2")} == {
        "available"}
    assert [s["status"] for s in store.timeline("E1")] == [
        "reported", "dispatched", "in_progress", "handled", "in_progress", "handled",
        "verified", "closed"]


def test_disp016_what_a_remembering_desk_hands_out_is_the_callers(r: redis.Redis,
                                                                   clock: Clock) -> None:
    """A caller changing the task it got changes nothing the desk writes next."""
    city_scene(Store(r))
    plans = PlanLibrary([plan_from_dict(FIRE_PLAN)])
    desk = Desk(Store(r), plans, Deadlines.load(), Settings(), clock=clock, remember=4)
    task, _ = desk.dispatch("E1", by="zhang", key="k", assignees=None, plan_id=None)
    task["note"] = "changed by the caller"
    task["assignees"].clear()
    after = desk.on_feedback({"task_id": task["id"], "event_id": "E1", "actor_id": "W-OWN",
                              "stage": "accepted", "ts": TS + 1})
    assert after is not None and after["note"] == "" and len(after["assignees"]) == 3
    after["history"].clear()
    last = desk.on_feedback({"task_id": task["id"], "event_id": "E1", "actor_id": "F1",
                             "stage": "accepted", "ts": TS + 2})
    assert last is not None and [h["stage"] for h in last["history"]] == [
        "dispatched", "accepted", "accepted"]
    assert json.loads(r.hget("cc:state:task", task["id"])) == last


def test_disp017_the_proposal_s_units_need_no_second_read(
        r: redis.Redis, desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dispatching the proposal sends the units its search found free (the script checks
    their revisions); a unit that moved meanwhile makes it propose again, not fail."""
    from dashboard.command import dispatch as dispatch_module

    store = Store(r)
    city_scene(store)
    read = dispatch_module.read_units
    reads: list[Any] = []
    monkeypatch.setattr(dispatch_module, "read_units",
                        lambda *a: reads.append(a) or read(*a))  # type: ignore[func-returns-value]
    # F1 moves (a new revision) between the proposal's search and the script: once
    moved = False
    propose_then = dispatch_module.propose

    def propose_and_move(*args: Any, **kwargs: Any) -> Any:
        nonlocal moved
        out = propose_then(*args, **kwargs)
        if not moved:
            moved = True
            put(store, "resource", "F1", *east(1100), ts=TS + 1, kind="fire_engine")
        return out

    monkeypatch.setattr(dispatch_module, "propose", propose_and_move)
    task, _ = desk.dispatch("E1", by="zhang", key="k", assignees=None, plan_id=None)
    assert sorted(a["id"] for a in task["assignees"]) == ["F1", "F2", "W-OWN"]
    assert reads == []
    f1 = json.loads(r.hget("cc:state:resource", "F1"))
    assert f1["status"] == "dispatched" and f1["lon"] == round(east(1100)[0], 6)
    # the commander's own pick is read first, as before
    event(store, "E2", grid_id="G1")
    desk.dispatch("E2", by="zhang", key="k2", assignees=[{"id": "W-NEAR", "kind": "worker"}],
                  plan_id=None, override_reason="就近")
    assert len(reads) == 1


def test_disp018_a_remembering_desk_finds_the_event_s_new_task(r: redis.Redis,
                                                              clock: Clock) -> None:
    """The task it remembers for an event was superseded by another desk's new dispatch:
    a verify by event id reaches the new task, as a desk reading every time would."""
    store = Store(r)
    city_scene(store)
    plans = PlanLibrary([plan_from_dict(FIRE_PLAN)])
    mine = Desk(store, plans, Deadlines.load(), Settings(), clock=clock, remember=16)
    other = make_desk(r, clock)
    first, _ = mine.dispatch("E1", by="zhang", key="k1", assignees=None, plan_id=None)
    assert other.on_feedback({"task_id": first["id"], "event_id": "E1", "actor_id": "W-OWN",
                              "stage": "rejected", "ts": TS + 1}) is not None
    clock.now = TS + 5000
    second, _ = other.dispatch("E1", by="li", key="k2", assignees=None, plan_id=None)
    assert other.on_feedbacks([{"task_id": second["id"], "event_id": "E1", "actor_id": a["id"],
                                "stage": "handled", "ts": TS + 6}
                               for a in second["assignees"]])["stage"] == "handled"
    verified = mine.verify("E1", by="li", passed=True)
    assert verified["id"] == second["id"] and verified["verify"]["passed"] is True
