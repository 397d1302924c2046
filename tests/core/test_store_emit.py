"""The shared Lua library: frames of any kind in the change log, restating a record."""

from __future__ import annotations

import json

import redis

from dashboard.store import Change, Store

from ..conftest import Stack
from ..feeds.test_ingest import TS, an_event, stored


def test_emit001_frame_logged_and_published(r: redis.Redis) -> None:
    store = Store(r)
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("cc:ui")
    while sub.get_message(timeout=0.1) is None and not sub.subscribed:
        pass
    seq = store.emit("task", "upsert", {"id": "T1", "stage": "dispatched"})
    assert seq == store.seq() == 1
    assert store.log_since(0, 10) == [(1, "task", "upsert", '{"id": "T1", "stage": "dispatched"}')]
    message = None
    for _ in range(20):
        message = message or sub.get_message(timeout=0.1)
    assert message is not None
    frames = json.loads(message["data"])
    assert frames == [{"type": "delta", "seq": 1, "kind": "task", "op": "upsert",
                       "data": {"id": "T1", "stage": "dispatched"}}]
    sub.close()


def test_emit002_restate_keeps_ts_and_checks_revision(stack: Stack, r: redis.Redis) -> None:
    stack.publish("event", an_event())
    stack.wait_seq(1)
    store = Store(r)
    event, rev = store.records("event", ["ev-1"])["ev-1"]
    assert store.restate("event", event, "dispatched", "999") is None
    newrev = store.restate("event", event, "dispatched", rev, now_ms=TS + 5000)
    assert newrev is not None and int(newrev) > int(rev)
    again = stored(r, "event", "ev-1")
    assert again is not None and again["status"] == "dispatched" and again["status_ts"] == TS + 5000
    assert r.hget("cc:meta:event", "ev-1") == f"{newrev}|{TS}|dispatched"
    assert r.hget("cc:count:event", "dispatched") == "1"
    assert r.hget("cc:count:event", "reported") == "0"
    assert [s["status"] for s in store.timeline("ev-1")] == ["reported", "dispatched"]
    # a newer fix from the field still lands: the stored ts was kept
    stack.publish("event", an_event(ts=TS + 1, title="仓库起火（更新）"))
    stack.wait_seq(3)
    latest = stored(r, "event", "ev-1")
    assert latest is not None and latest["title"] == "仓库起火（更新）"
    assert latest["status"] == "dispatched"


def test_emit003_closing_leaves_open_set_and_snapshot_has_tasks(stack: Stack,
                                                                 r: redis.Redis) -> None:
    stack.publish("event", an_event())
    stack.wait_seq(1)
    store = Store(r)
    event, rev = store.records("event", ["ev-1"])["ev-1"]
    store.restate("event", event, "closed", rev, now_ms=TS + 60_000)
    assert not r.sismember("cc:events:open", "ev-1")
    r.hset("cc:state:task", "T1", '{"id":"T1"}')
    r.sadd("cc:tasks:open", "T1")
    r.hset("cc:state:alert", "A1", '{"id":"A1"}')
    r.zadd("cc:alerts:open", {"A1": TS})
    parts = store.snapshot_parts(now_ms=TS)
    assert parts["tasks"] == ['{"id":"T1"}'] and parts["alerts"] == ['{"id":"A1"}']


def test_emit004_fix_taken_before_a_restate_keeps_the_new_status(stack: Stack,
                                                                   r: redis.Redis) -> None:
    worker = {"id": "W1", "lon": 119.95, "lat": 36.78, "ts": TS, "status": "on_duty"}
    stack.publish("worker", worker)
    stack.wait_seq(1)
    store = Store(r)
    record, rev = store.records("worker", ["W1"])["W1"]
    assert store.restate("worker", record, "busy", rev, now_ms=TS + 10_000)
    # a fix taken before the dispatch but applied after it moves the unit, keeps it busy
    stack.publish("worker", {**worker, "ts": TS + 5_000, "lon": 119.951})
    stack.wait_seq(3)
    moved = stored(r, "worker", "W1")
    assert moved is not None and moved["lon"] == 119.951 and moved["status"] == "busy"
    assert r.hget("cc:count:worker", "busy") == "1"
    # a status the field reports after the command center's change is taken
    stack.publish("worker", {**worker, "ts": TS + 20_000, "status": "sos"})
    stack.wait_seq(4)
    latest = stored(r, "worker", "W1")
    assert latest is not None and latest["status"] == "sos"


def test_emit005_a_change_built_on_a_guessed_revision_cannot_pass_a_restate(
        stack: Stack, r: redis.Redis) -> None:
    """Ingest guesses rev + 1 for a change still in flight; the command center's write in
    between must make any change built before it conflict, never overwrite it."""
    worker = {"id": "W1", "lon": 119.95, "lat": 36.78, "ts": TS, "status": "on_duty"}
    stack.publish("worker", worker)
    stack.wait_seq(1)
    store = Store(r)
    record, rev = store.records("worker", ["W1"])["W1"]
    assert store.restate("worker", record, "busy", rev, now_ms=TS + 10_000)
    for guess in range(int(rev) + 1, int(rev) + 50):
        stale = {**record, "ts": TS + 5_000}
        (outcome,) = store.apply([Change("worker", "W1", TS + 5_000, str(guess),
                                         json.dumps(stale), "on_duty", 119.95, 36.78)])
        assert outcome.code == -1, guess
    latest = stored(r, "worker", "W1")
    assert latest is not None and latest["status"] == "busy"
