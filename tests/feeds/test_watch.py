"""The watch service on a real Redis and the real ingest, with a clock the test moves."""

from __future__ import annotations

import dataclasses
import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary, plan_from_dict
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.store import Store
from feeds.watch import Watch

from .. import units_util as units
from ..command.test_alerts import ALERT_FIELDS, Clock, messages, subscribe
from ..conftest import Stack, start_stack
from .test_ingest import TS, an_event, wait_for


def watch_on(stack: Stack, r: redis.Redis, clock: Clock) -> Watch:
    """A watch stepped by hand (process / tick) on the test's connection."""
    watch = Watch(stack.settings, stack.settings.redis_url or "", clock=clock)
    watch.attach(r)
    return watch


def a_worker(**fields: Any) -> dict[str, Any]:
    return {"id": "W1", "name": "李强", "lon": 119.96, "lat": 36.79, "ts": TS,
            "status": "on_duty", **fields}


def alerts_of(r: redis.Redis, kind: str | None = None) -> list[dict[str, Any]]:
    found = [json.loads(v) for v in r.hvals("cc:state:alert")]
    return sorted((a for a in found if kind is None or a["kind"] == kind),
                  key=lambda a: (a["ts"], a["subject_id"]))


def test_watch001_level_one_event_alerts_once_on_cc_alert(stack: Stack, r: redis.Redis) -> None:
    clock = Clock(TS + 1000)
    watch = watch_on(stack, r, clock)
    sub = subscribe(r, "cc:alert")
    stack.publish("event", an_event(id="E1", severity=1, title="化工厂爆炸"))
    stack.publish("event", an_event(id="E3", severity=3, title="小区停水"))
    stack.publish("event", an_event(id="E1", severity=1, ts=TS + 1, title="化工厂爆炸（更新）"))
    stack.wait_seq(3)
    watch.process()
    watch.process()  # nothing new: nothing twice
    got = [m["data"] for m in messages(sub)]
    assert got == [{"kind": "critical_event", "subject_id": "E1", "event_id": "E1",
                    "ts": TS + 1000, "message": "I级事件：化工厂爆炸"}]
    assert set(got[0]) == ALERT_FIELDS
    stored = alerts_of(r)
    assert len(stored) == 1 and stored[0]["severity"] == 1
    # a later escalation to level II of another event is announced too
    stack.publish("event", an_event(id="E3", severity=2, ts=TS + 2))
    stack.wait_seq(5)
    watch.process()
    assert [a["subject_id"] for a in alerts_of(r, "critical_event")] == ["E1", "E3"]
    sub.close()


def test_watch002_sos_once_per_episode(stack: Stack, r: redis.Redis) -> None:
    clock = Clock(TS)
    watch = watch_on(stack, r, clock)
    stack.publish("worker", a_worker())
    stack.publish("worker", a_worker(status="sos", ts=TS + 1))
    for i in range(2, 6):  # keeps moving while in SOS: one episode
        stack.publish("worker", a_worker(status="sos", ts=TS + i, lon=119.96 + i * 1e-4))
    stack.wait_seq(6)
    watch.process()
    sos = alerts_of(r, "sos")
    assert len(sos) == 1 and sos[0]["subject_id"] == "W1" and sos[0]["event_id"] is None
    assert "李强" in sos[0]["message"] and sos[0]["severity"] == 1
    stack.publish("worker", a_worker(status="on_duty", ts=TS + 10))
    stack.publish("worker", a_worker(status="sos", ts=TS + 11))
    stack.wait_seq(9)  # two worker frames + the first alert's frame
    watch.process()
    assert len(alerts_of(r, "sos")) == 2
    # a restarted watch (no memory) does not raise the same episode again
    again = watch_on(stack, r, clock)
    again.cursor = 0
    again.process()
    assert len(alerts_of(r, "sos")) == 2


def test_watch003_resumes_from_cursor_without_reprocessing(stack: Stack,
                                                           r: redis.Redis) -> None:
    clock = Clock(TS)
    first = watch_on(stack, r, clock)
    stack.publish("event", an_event(id="E1", severity=2))
    stack.wait_seq(1)
    assert first.process() == 1  # the event; its alert is appended at seq 2
    assert first.process() == 1 and first.process() == 0
    assert int(r.get("cc:watch:cursor")) == 2
    stack.publish("event", an_event(id="E2", severity=4))
    stack.publish("event", an_event(id="E3", severity=1))
    stack.wait_seq(4)
    second = watch_on(stack, r, clock)  # a restart: a new process, no memory
    assert second.cursor == 2
    handled = second.process()
    assert handled == 2 and second.counters["processed"] == 2
    assert [a["subject_id"] for a in alerts_of(r, "critical_event")] == ["E1", "E3"]


def test_watch004_log_trimmed_past_cursor_starts_at_first_entry(redis_url: str,
                                                                r: redis.Redis) -> None:
    store = Store(r)
    for i in range(10):
        store.emit("camera", "upsert", {"id": f"C{i}"})
    r.set("cc:watch:cursor", 3)
    r.xtrim("cc:log", minid="7-0", approximate=False)
    settings = dataclasses.replace(Settings(), redis_url=redis_url)
    watch = Watch(settings, redis_url, clock=Clock())
    watch.attach(r)
    assert watch.cursor == 6 and watch.counters["skipped"] == 3
    assert watch.process() == 4 and int(r.get("cc:watch:cursor")) == 10
    # a cursor from before a Redis reset (past the log's end) starts over
    r.set("cc:watch:cursor", 99)
    watch.attach(r)
    assert watch.cursor == 6


@pytest.fixture
def live_watch(redis_url: str) -> Iterator[tuple[Stack, Clock]]:
    clock = Clock(TS)
    live, stop, threads = start_stack(redis_url, watch=True, clock=clock, watch_tick_s=0.05)
    yield live, clock
    stop.set()
    for thread in threads:
        thread.join(5)
    live.client.close()


def test_watch005_service_heartbeat_and_health(live_watch: tuple[Stack, Clock],
                                               r: redis.Redis) -> None:
    stack, _ = live_watch
    stack.publish("event", an_event(id="E1", severity=1))
    alert = wait_for(lambda: alerts_of(r, "critical_event"))
    assert alert[0]["subject_id"] == "E1"
    hb = wait_for(lambda: (h := r.hgetall("cc:watch:hb")) and h["cursor"] == "2" and h)
    assert int(hb["lag"]) == 0 and 0 < r.ttl("cc:watch:hb") <= 15
    health = wait_for(lambda: (b := stack.app.server.test_client().get("/api/health")
                               .get_json())["watch"]["alive"] and b)
    assert health["watch"]["cursor"] == 2 and health["status"] == "ok"


def test_watch008_health_degraded_without_the_watch(stack: Stack) -> None:
    stack.publish("event", an_event(id="E1"))
    stack.wait_seq(1)
    http = stack.app.server.test_client()
    body = wait_for(lambda: (b := http.get("/api/health").get_json())["ingest"]["alive"] and b)
    assert body["watch"]["alive"] is False and body["status"] == "degraded"


def test_watch006_threads_stop_and_survive_bad_entries(redis_url: str, r: redis.Redis) -> None:
    clock = Clock(TS)
    live, stop, threads = start_stack(redis_url, watch=True, clock=clock)
    try:
        Store(r).emit("task", "upsert", "{not json")  # one broken entry must not stop it
        live.publish("event", an_event(id="E1", severity=2))
        wait_for(lambda: alerts_of(r, "critical_event"))
        assert live.watch is not None and live.watch.counters["errors"] == 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        live.client.close()
    assert not any(thread.is_alive() for thread in threads)


def test_watch007_reconnects_after_redis_restart(tmp_path: Any) -> None:
    from feeds.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    settings = dataclasses.replace(Settings(), redis_url=server.url, watch_tick_s=0.05)
    watch = Watch(settings, server.url, clock=Clock(TS))
    stop = threading.Event()
    thread = threading.Thread(target=watch.run, args=(stop,), daemon=True)
    thread.start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        Store(client).emit("event", "upsert", an_event(id="E1", severity=1))
        wait_for(lambda: client.hlen("cc:state:alert") == 1)
        client.close()
        server.stop()
        server = EmbeddedRedis(tmp_path / "redis", port=server.port, persist=True).start()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        Store(client).emit("event", "upsert", an_event(id="E2", severity=2))
        wait_for(lambda: client.hlen("cc:state:alert") == 2, timeout=15)
        assert watch.counters["reconnects"] >= 1
        client.close()
    finally:
        stop.set()
        thread.join(5)
        server.stop()


def test_watch009_runs_as_a_process_and_stops_on_sigterm(redis_url: str,
                                                         r: redis.Redis) -> None:
    import os
    import subprocess
    import sys

    from dashboard.config import ROOT

    env = {**os.environ, "REDIS_URL": redis_url, "CC_PREFIX": "cc:"}
    proc = subprocess.Popen([sys.executable, "-m", "feeds.watch"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        Store(r).emit("event", "upsert", an_event(id="E1", severity=1))
        wait_for(lambda: r.hget("cc:watch:hb", "cursor") == "2", timeout=20)
        assert len(alerts_of(r, "critical_event")) == 1
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


# -- deadlines and the task lifecycle, with the real Desk and Deadlines -------------------

ONE_WORKER_PLAN = {
    "id": "P-TEST-ONE", "name": {"zh-CN": "测试预案", "en": "Test plan"}, "level": 3,
    "applies_to": {"types": ["fire"], "severities": [1, 2, 3, 4]},
    "steps": [{"order": 1, "role": "commander", "action": {"zh-CN": "调度", "en": "Send"},
               "limit_min": 5}],
    "resources": [{"kind": "worker", "count": 1, "max_eta_s": 600}],
}


def a_desk(r: redis.Redis, settings: Settings, clock: Clock) -> Desk:
    plans = PlanLibrary([plan_from_dict(ONE_WORKER_PLAN)])
    return Desk(Store(r), plans, Deadlines.load(), settings, clock=clock)


def sla_causes(r: redis.Redis) -> list[str]:
    """Which (colour, stage) were raised, from the dedupe keys."""
    return sorted(k.split(":")[3] + ":" + k.split(":")[-1]
                  for k in r.scan_iter("cc:alert:once:sla_*"))


def test_watch010_yellow_at_its_moment_red_at_the_limit_each_once(stack: Stack,
                                                                  r: redis.Redis) -> None:
    clock = Clock(TS)
    watch = watch_on(stack, r, clock)
    store = Store(r)
    record = units.event(store, "E1", severity=3, title="仓库起火")
    limit_ms = Deadlines.load().limits(record).dispatch_s * 1000
    yellow_at = TS + math.ceil(limit_ms * stack.settings.sla_yellow_ratio)
    sub = subscribe(r, "cc:alert")
    for now in (TS, yellow_at - 1):
        clock.ms = now
        assert watch.tick() == 0
    clock.ms = yellow_at
    assert watch.tick() == 1
    for now in range(yellow_at, TS + limit_ms, max(1, (TS + limit_ms - yellow_at) // 20)):
        clock.ms = now
        assert watch.tick() == 0
    clock.ms = TS + limit_ms - 1
    assert watch.tick() == 0
    clock.ms = TS + limit_ms
    assert watch.tick() == 1
    for step in range(20):
        clock.ms = TS + limit_ms + step * 60_000
        assert watch.tick() == 0
    assert watch_on(stack, r, clock).tick() == 0  # a restarted watch raises nothing again
    got = [m["data"] for m in messages(sub)]
    assert [(a["kind"], a["ts"], a["event_id"]) for a in got] == [
        ("sla_yellow", yellow_at, "E1"), ("sla_red", TS + limit_ms, "E1")]
    assert all(set(a) == ALERT_FIELDS and "仓库起火" in a["message"] for a in got)
    assert sla_causes(r) == ["sla_red:dispatch", "sla_yellow:dispatch"]
    assert [a["severity"] for a in alerts_of(r)] == [3, 3]
    sub.close()


def test_watch011_no_card_for_a_stage_already_reached(stack: Stack, r: redis.Redis) -> None:
    clock = Clock(TS)
    watch = watch_on(stack, r, clock)
    store = Store(r)
    record = units.event(store, "E1", severity=3)
    units.worker(store, "W1", 200)
    limits = Deadlines.load().limits(record)
    desk = a_desk(r, stack.settings, clock)
    clock.ms = TS + 1000  # dispatched well before the dispatch card
    task, _ = desk.dispatch("E1", by="zhang", key="k1", assignees=None, plan_id=None)
    clock.ms = TS + limits.dispatch_s * 1000 * 3  # long past the dispatch limit
    watch.tick()
    assert sla_causes(r) == []
    # the arrival clock runs from the dispatch: yellow, then red, for arrive only
    clock.ms = task["ts"] + math.ceil(limits.arrive_s * 1000 * stack.settings.sla_yellow_ratio)
    watch.tick()
    assert sla_causes(r) == ["sla_yellow:arrive"]
    clock.ms = task["ts"] + limits.arrive_s * 1000
    watch.tick()
    assert sla_causes(r) == ["sla_red:arrive", "sla_yellow:arrive"]
    # arrived, then handled: past every limit, nothing more
    for n, stage in enumerate(("accepted", "arrived", "handled")):
        desk.on_feedback({"task_id": task["id"], "event_id": "E1", "actor_id": "W1",
                          "stage": stage, "ts": TS + n})
    clock.ms = task["ts"] + limits.handle_s * 1000 * 2
    watch.tick()
    assert sla_causes(r) == ["sla_red:arrive", "sla_yellow:arrive"]
    assert store.event("E1")["status"] == "handled"


def test_watch012_feedback_lifecycle_through_ingest_and_the_watch(redis_url: str,
                                                                  r: redis.Redis) -> None:
    clock = Clock(TS)
    live, stop, threads = start_stack(redis_url, watch=True, clock=clock, watch_tick_s=0.05)
    try:
        lon, lat = units.east(0)
        live.publish("event", {"id": "E1", "type": "fire", "severity": 3, "lon": lon,
                               "lat": lat, "ts": TS, "title": "仓库起火"})
        lon, lat = units.east(200)
        live.publish("worker", {"id": "W1", "lon": lon, "lat": lat, "ts": TS,
                                "status": "on_duty", "name": "李强"})
        live.wait_seq(2)
        desk = a_desk(r, live.settings, clock)
        task, _ = desk.dispatch("E1", by="zhang", key="k1", assignees=None, plan_id=None)
        assert task["assignees"][0]["id"] == "W1"
        assert Store(r).event("E1")["status"] == "dispatched"
        for n, (stage, event_status) in enumerate([("accepted", "in_progress"),
                                                   ("arrived", "in_progress"),
                                                   ("handled", "handled")]):
            clock.ms = TS + (n + 1) * 30_000
            live.publish("feedback", {"task_id": task["id"], "event_id": "E1",
                                      "actor_id": "W1", "stage": stage, "ts": clock.ms})
            wait_for(lambda s=stage: desk.task(task["id"])["stage"] == s)
            assert Store(r).event("E1")["status"] == event_status
        assert json.loads(r.hget("cc:state:worker", "W1"))["status"] == "on_duty"
        assert not r.exists("cc:task:unit:worker:W1")
        history = desk.task(task["id"])["history"]
        assert [h["stage"] for h in history] == ["dispatched", "accepted", "arrived", "handled"]
        assert live.watch is not None and live.watch.counters["errors"] == 0
        assert alerts_of(r) == []  # everything in time, level III: nothing to alert
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        live.client.close()


def test_watch013_rejected_and_need_support_raise_alerts(redis_url: str,
                                                         r: redis.Redis) -> None:
    clock = Clock(TS)
    live, stop, threads = start_stack(redis_url, watch=True, clock=clock, watch_tick_s=0.05)
    sub = subscribe(r, "cc:alert")
    try:
        store = Store(r)
        units.event(store, "E1", severity=3, title="仓库起火")
        units.worker(store, "W1", 200)
        units.worker(store, "W2", 400)
        desk = a_desk(r, live.settings, clock)
        first, _ = desk.dispatch("E1", by="zhang", key="k1", assignees=None, plan_id=None)
        live.publish("feedback", {"task_id": first["id"], "event_id": "E1", "actor_id": "W1",
                                  "stage": "rejected", "ts": TS + 5, "note": "不在辖区"})
        alert = wait_for(lambda: alerts_of(r, "critical_event"))[0]
        assert alert["subject_id"] == first["id"] and alert["event_id"] == "E1"
        assert "退回" in alert["message"] and alert["severity"] == 3
        assert store.event("E1")["status"] == "reported"
        assert json.loads(r.hget("cc:state:worker", "W1"))["status"] == "on_duty"
        # dispatched again (the rejected task is superseded), then a call for support
        clock.ms = TS + 60_000
        second, _ = desk.dispatch("E1", by="zhang", key="k2", assignees=None, plan_id=None)
        for stage, ts in (("accepted", TS + 61_000), ("need_support", TS + 62_000)):
            live.publish("feedback", {"task_id": second["id"], "event_id": "E1",
                                      "actor_id": second["assignees"][0]["id"],
                                      "stage": stage, "ts": ts})
        found = wait_for(lambda: len(alerts_of(r, "critical_event")) == 2
                         and alerts_of(r, "critical_event"))
        assert found[1]["subject_id"] == second["id"] and "支援" in found[1]["message"]
        assert store.event("E1")["status"] == "in_progress"
        wait_for(lambda: int(r.hget("cc:watch:hb", "lag") or 1) == 0)
        assert len(alerts_of(r, "critical_event")) == 2  # re-sent task frames raised nothing
        # (the clock's jump may also raise the event's dispatch card: not this test's matter)
        got = [m["data"] for m in messages(sub) if m["data"]["kind"] == "critical_event"]
        assert [a["subject_id"] for a in got] == [first["id"], second["id"]]
        assert all(set(a) == ALERT_FIELDS for a in got)
    finally:
        sub.close()
        stop.set()
        for thread in threads:
            thread.join(5)
        live.client.close()


def test_watch014_tick_drops_old_acknowledged_alerts(stack: Stack, r: redis.Redis) -> None:
    from dashboard.command.alerts import ACKED_KEEP_MS, Alerts

    clock = Clock(TS)
    alerts = Alerts(Store(r), clock=clock)
    old = alerts.raise_once("critical_event", "E1", "E1", "I级事件", 1)
    kept = alerts.raise_once("critical_event", "E2", "E2", "II级事件", 2)
    assert old is not None and kept is not None
    alerts.ack(old["id"], by="li")
    watch = watch_on(stack, r, clock)
    watch.tick()
    assert r.hlen("cc:state:alert") == 2
    clock.ms = TS + ACKED_KEEP_MS + 1
    watch2 = watch_on(stack, r, clock)  # the trim runs on a watch's first tick, then each minute
    watch2.tick()
    assert r.hkeys("cc:state:alert") == [kept["id"]]
    assert r.zrange("cc:alerts:open", 0, -1) == [kept["id"]]


def test_watch015_a_broken_event_does_not_stop_the_cards(stack: Stack, r: redis.Redis) -> None:
    clock = Clock(TS)
    watch = watch_on(stack, r, clock)
    r.hset("cc:state:event", "E0", "{broken")
    r.sadd("cc:events:open", "E0")
    units.event(Store(r), "E1", severity=3)
    clock.ms = TS + 86_400_000
    assert watch.tick() == 1
    assert watch.counters["errors"] == 1
    assert sla_causes(r) == ["sla_red:dispatch"]
