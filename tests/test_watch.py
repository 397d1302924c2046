"""The watch service on a real Redis and the real ingest, with a clock the test moves."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dashboard.config import Settings
from dashboard.store import Store
from feeds.watch import Watch

from .conftest import Stack, start_stack
from .test_alerts import DESIGN_FIELDS, Clock, messages, subscribe
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
                  key=lambda a: a["ts"])


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
    assert set(got[0]) == DESIGN_FIELDS
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
