"""Nothing lost: poison messages, refused changes, repeats, bad clocks, bounds, takeover."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import redis

from dashboard import protocol
from dashboard.config import ROOT, Settings
from dashboard.store import APPLIED, REFUSED, SNAPSHOT_EVENTS_MAX, Change, Store, day_of
from feeds.failover import LEASE_MS, Ring, digest
from feeds.ingest import Ingest

from ..conftest import Stack, running_stack
from ..feeds.test_ingest import TS, an_event, stored, wait_for


def _ingest(redis_url: str, **overrides: Any) -> Ingest:
    ingest = Ingest(replace(Settings(), **overrides), redis_url)
    ingest.store = Store(redis.Redis.from_url(redis_url), "cc:")
    return ingest


def _events(n: int, prefix: str = "ev", ts: int = TS) -> list[tuple[str, str]]:
    return [("cc:event", json.dumps(an_event(id=f"{prefix}-{i}", ts=ts + i))) for i in range(n)]


def _no_trace(r: redis.Redis, applied: int) -> None:
    """The log holds exactly the applied changes and seq is its last id."""
    assert r.xlen("cc:log") == applied
    last = r.xrevrange("cc:log", count=1)
    assert int(r.get("cc:seq") or 0) == (int(last[0][0].split("-")[0]) if last else 0)


def test_int001_bd09_edge_is_dead_lettered_and_intake_goes_on(stack: Stack,
                                                              r: redis.Redis) -> None:
    """bd09 lon -180 converts to -180.0065: refused with a reason, the stream goes on."""
    for i in range(70):
        stack.publish("event", an_event(id=f"a-{i}", ts=TS + i))
    stack.publish("event", an_event(id="edge", lon=-180, lat=36.0, crs="bd09"))
    for i in range(70):
        stack.publish("event", an_event(id=f"b-{i}", ts=TS + i))
    stack.wait_seq(140)
    assert r.hlen("cc:state:event") == 140 and stored(r, "event", "edge") is None
    letter = json.loads(r.lindex("cc:deadletter", 0))
    assert letter["code"] == "bad_coordinates" and "bd09" in letter["reason"]
    _no_trace(r, 140)


def test_int002_refused_change_at_start_middle_end_leaves_no_trace(redis_url: str,
                                                                   r: redis.Redis) -> None:
    """A key an operator broke makes Redis refuse that one change: dead-lettered as
    store_error, the rest of the batch applied, and nothing of it written."""
    ingest = _ingest(redis_url)
    batch = _events(9)
    for bad in ("ev-0", "ev-4", "ev-8"):
        r.set(f"cc:timeline:{bad}", "not a list")
    ingest.handle(batch)
    assert ingest.counters.store_errors == 3 and ingest.counters.accepted == 6
    letters = [json.loads(x) for x in r.lrange("cc:deadletter", 0, -1)]
    assert sorted(json.loads(x["raw"])["id"] for x in letters) == ["ev-0", "ev-4", "ev-8"]
    assert {x["code"] for x in letters} == {"store_error"}
    assert all("timeline" in x["reason"] for x in letters)
    _no_trace(r, 6)
    assert r.scard("cc:events:open") == 6 and not r.sismember("cc:events:open", "ev-4")
    assert r.zcard("cc:events:ts") == 6 and r.zcard("cc:geo:event") == 6
    assert r.hget(f"cc:stat:{day_of(TS)}", "total") == "6"
    assert r.hget("cc:count:event", "reported") == "6"
    assert r.hlen("cc:meta:event") == 6
    # The next batch goes on from the log's last id.
    ingest.handle(_events(2, prefix="later"))
    _no_trace(r, 8)
    ingest.store.close_apply()  # type: ignore[union-attr]


class _Garbled(Change):
    """A change whose arguments do not add up: the server refuses the whole batch."""

    def args(self) -> tuple[str | int | float, ...]:
        return super().args()[:-1]


def _change(i: int, cls: type[Change] = Change) -> Change:
    record = json.dumps({"id": f"w-{i}", "lon": 120.0, "lat": 36.7, "ts": TS})
    return cls("worker", f"w-{i}", TS, "0", record, "on_duty", 120.0, 36.7)


def test_int003_refused_batch_is_applied_in_halves(redis_url: str, r: redis.Redis) -> None:
    """A batch the server refuses whole is split until the change at fault stands alone."""
    store = Store(redis.Redis.from_url(redis_url), "cc:")
    for bad in (0, 7, 15):
        changes = [_change(i, _Garbled if i == bad else Change) for i in range(16)]
        r.flushall()
        outcomes = store.apply_isolating(changes)
        assert [o.code for o in outcomes] == [REFUSED if i == bad else APPLIED
                                              for i in range(16)]
        assert "arguments" in outcomes[bad].reason
        _no_trace(r, 15)
        assert r.hget("cc:state:worker", f"w-{bad}") is None and r.hlen("cc:state:worker") == 15
        assert r.hget("cc:count:worker", "on_duty") == "15"
    store.close_apply()


def test_int004_exact_repeat_is_a_duplicate_not_a_dead_letter(stack: Stack,
                                                               r: redis.Redis) -> None:
    stack.publish("event", an_event(ts=TS))
    stack.wait_seq(1)
    stack.publish("event", an_event(ts=TS, title="重发"))  # same (id, ts): a repeat
    stack.publish("event", an_event(ts=TS + 1000, status="dispatched"))
    stack.wait_seq(2)
    wait_for(lambda: stack.ingest.counters.duplicates == 1)
    assert r.llen("cc:deadletter") == 0
    assert stored(r, "event", "ev-1")["title"] == "仓库起火"  # type: ignore[index]
    # An older ts is still stale: the record moved on.
    stack.publish("event", an_event(ts=TS + 500))
    wait_for(lambda: r.llen("cc:deadletter") == 1)
    assert json.loads(r.lindex("cc:deadletter", 0))["code"] == "stale"
    # Feedback repeats (task, actor, stage, ts) are duplicates too.
    fb = {"task_id": "t-1", "event_id": "ev-1", "actor_id": "w-1", "stage": "accepted",
          "ts": TS + 2000}
    stack.publish("feedback", fb)
    stack.publish("feedback", fb)
    stack.publish("feedback", {**fb, "actor_id": "w-2"})  # another unit, the same moment
    stack.publish("feedback", {**fb, "stage": "arrived", "ts": TS + 3000})
    stack.wait_seq(5)
    wait_for(lambda: stack.ingest.counters.duplicates == 2)
    assert [f["k"] for _, f in r.xrange("cc:log")].count("feedback") == 3


def test_int005_future_ts_dead_lettered(redis_url: str, r: redis.Redis) -> None:
    ingest = _ingest(redis_url, max_future_s=60)
    now = int(time.time() * 1000)
    ingest.handle([("cc:event", json.dumps(an_event(id="year", ts=now + 365 * 86_400_000))),
                   ("cc:event", json.dumps(an_event(id="soon", ts=now + 30_000))),
                   ("cc:worker", json.dumps({"id": "w-9", "lon": 120.0, "lat": 36.7,
                                             "ts": now + 120_000}))])
    assert stored(r, "event", "soon") is not None
    assert stored(r, "event", "year") is None and stored(r, "worker", "w-9") is None
    codes = [json.loads(x)["code"] for x in r.lrange("cc:deadletter", 0, -1)]
    assert codes == ["future", "future"]
    assert r.hget("cc:deadletter:reasons", "future") == "2"
    ingest.store.close_apply()  # type: ignore[union-attr]


def test_int006_repair_clock_unfreezes_a_record(redis_url: str, r: redis.Redis) -> None:
    """A record stored with a ts a year ahead (before `future` existed) refuses every true
    update; `app.py repair-clock` is the documented way out."""
    store = Store(redis.Redis.from_url(redis_url), "cc:")
    now = int(time.time() * 1000)
    ahead = now + 365 * 86_400_000
    record = {"id": "w-1", "lon": 120.0, "lat": 36.7, "ts": ahead, "received": now - 5000,
              "status": "on_duty"}
    store.apply([Change("worker", "w-1", ahead, "0", json.dumps(record), "on_duty",
                        120.0, 36.7)])
    store.close_apply()
    ingest = _ingest(redis_url)
    update = ("cc:worker", json.dumps({"id": "w-1", "lon": 120.1, "lat": 36.7, "ts": now}))
    ingest.handle([update])
    assert json.loads(r.lindex("cc:deadletter", 0))["code"] == "stale"
    env = {"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"}
    dry = subprocess.run([sys.executable, "app.py", "repair-clock", "--dry-run"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "1 record(s) would be repaired" in dry.stdout
    assert r.hget("cc:meta:worker", "w-1").split("|")[1] == str(ahead)
    done = subprocess.run([sys.executable, "app.py", "repair-clock"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "worker w-1" in done.stdout, done.stderr
    assert r.hget("cc:meta:worker", "w-1").split("|")[1] == str(now - 5000)
    ingest.cache.clear()
    ingest.handle([("cc:worker", json.dumps({"id": "w-1", "lon": 120.2, "lat": 36.7,
                                             "ts": now + 1}))])
    assert stored(r, "worker", "w-1")["lon"] == 120.2  # type: ignore[index]
    assert any(json.loads(e["detail"]).get("ids") == ["worker:w-1"]
               for _, e in r.xrange("cc:audit"))
    ingest.store.close_apply()  # type: ignore[union-attr]


def test_int007_records_and_dead_letters_are_bounded(redis_url: str, r: redis.Redis) -> None:
    ingest = _ingest(redis_url)
    extras = {f"x{i}": "y" * 100 for i in range(50)}  # ~5.5 KB of unknown fields
    small = {"vendor_code": "A-17"}
    ingest.handle([("cc:event", json.dumps(an_event(id="fat", **extras))),
                   ("cc:event", json.dumps(an_event(id="thin", **small)))])
    assert "x0" not in stored(r, "event", "fat")  # type: ignore[operator]
    assert stored(r, "event", "thin")["vendor_code"] == "A-17"  # type: ignore[index]
    assert ingest.counters.extras_dropped == 1
    # Unknown fields piling up over many updates: the record is capped, the update kept.
    for k in range(20):
        fields = {f"k{k}_{i}": "z" * 300 for i in range(12)}  # ~3.9 KB each, under the cap
        ingest.handle([("cc:worker", json.dumps({"id": "w-1", "lon": 120.0, "lat": 36.7,
                                                 "ts": TS + k, **fields}))])
    assert len(r.hget("cc:state:worker", "w-1")) <= protocol.RECORD_MAX_BYTES
    assert r.hget("cc:deadletter:reasons", "too_large")
    # A list of oversized items is refused; a huge message keeps 4 KiB in its dead letter.
    ingest.handle([("cc:event", json.dumps(an_event(id="att", attachments=["a" * 3000] * 5))),
                   ("cc:event", "{" + "\"pad\": \"" + "好" * 30_000 + "\"}")])
    letters = [json.loads(x) for x in r.lrange("cc:deadletter", 0, 1)]
    big = next(x for x in letters if x["code"] == "too_large")
    assert big["truncated"] and big["size"] > 64 * 1024
    assert len(big["raw"].encode()) <= 4096
    assert any(x["code"] == "too_long" for x in letters)
    ingest.store.close_apply()  # type: ignore[union-attr]


def test_int008_snapshot_keeps_its_maximum_gravest_first(redis_url: str,
                                                         r: redis.Redis) -> None:
    ingest = _ingest(redis_url)
    n = SNAPSHOT_EVENTS_MAX + 500
    batch = [("cc:event", json.dumps(an_event(id=f"e-{i}", ts=TS + i,
                                              severity=1 if i % 100 == 0 else 4)))
             for i in range(n)]
    for k in range(0, n, 1000):
        ingest.handle(batch[k:k + 1000])
    parts = ingest.store.snapshot_parts(now_ms=TS + n)  # type: ignore[union-attr]
    events = [json.loads(e) for e in parts["events"]]
    assert len(events) == SNAPSHOT_EVENTS_MAX
    assert sum(e["severity"] == 1 for e in events) == n // 100  # every level I is there
    ingest.store.close_apply()  # type: ignore[union-attr]


def test_int009_ring_finds_the_mark_and_keeps_its_bounds() -> None:
    ring = Ring(seconds=10, max_bytes=20_000)  # 100 small messages take ~13 KB
    messages = [(b"cc:worker", f'{{"n":{i}}}'.encode()) for i in range(100)]
    ring.extend(messages[:50], now=0.0)
    ring.extend(messages[50:], now=5.0)
    mark = digest(messages[37:40])
    assert ring.since(mark, margin=0) == messages[40:]
    assert ring.since(mark, margin=5) == messages[35:]
    assert ring.since("not-there") == messages  # unknown mark: replay it all
    ring.trim(now=12.0)  # the first 50 are older than 10 s
    assert len(ring) == 50 and ring.since(None) == messages[50:]
    ring.extend([(b"cc:worker", b"x" * 15_000)], now=12.0)  # over the byte cap: oldest go
    assert ring.bytes <= 20_000 and ring.dropped > 0


def test_int010_standby_applies_what_the_active_did_not(redis_url: str,
                                                        r: redis.Redis) -> None:
    """The active applied the first 300 messages and died; the standby's ring holds all
    500: it applies the last 200, and the rest are duplicates, not dead letters."""
    feed = _events(300) + [("cc:worker", json.dumps({"id": f"w-{i}", "lon": 120.0,
                                                     "lat": 36.7, "ts": TS + i}))
                           for i in range(200)]
    active = _ingest(redis_url)
    for k in range(0, 300, 100):
        chunk = feed[k:k + 100]
        active.submit(chunk, mark=active.marker.after(chunk))
        active.drain()
    active.store.close_apply()  # type: ignore[union-attr]
    standby = _ingest(redis_url)
    standby.ring.extend(feed)
    standby._take_over()
    assert r.hlen("cc:state:event") == 300 and r.hlen("cc:state:worker") == 200
    assert standby.counters.accepted == 200 and r.llen("cc:deadletter") == 0
    assert standby.counters.duplicates == standby.counters.replayed - 200
    _no_trace(r, 500)
    # With no mark in its ring it replays everything: all repeats, still nothing lost.
    again = _ingest(redis_url)
    again.ring.extend(feed)
    r.delete("cc:ingest:mark")
    again._take_over()
    assert again.counters.duplicates == 500 and r.llen("cc:deadletter") == 0
    for ingest in (standby, again):
        ingest.store.close_apply()  # type: ignore[union-attr]


def test_int011_one_active_at_a_time_and_a_stop_hands_over(redis_url: str,
                                                           r: redis.Redis) -> None:
    settings = replace(Settings(), redis_url=redis_url)
    first, second = Ingest(settings, redis_url), Ingest(settings, redis_url)
    stops = [threading.Event(), threading.Event()]
    threads = [threading.Thread(target=ing.run, args=(stop,), daemon=True)
               for ing, stop in zip((first, second), stops, strict=True)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: first.active or second.active)
        time.sleep(LEASE_MS / 1000)
        assert first.active != second.active
        active, standby = (first, second) if first.active else (second, first)
        assert r.get("cc:ingest:lease") == active.instance
        wait_for(lambda: r.hget("cc:ingest:standby", "instance") == standby.instance)
        stops[0 if active is first else 1].set()
        started = time.monotonic()
        wait_for(lambda: standby.active, timeout=LEASE_MS / 1000 + 2)
        assert time.monotonic() - started < 2.0
        client = redis.Redis.from_url(redis_url)
        client.publish("cc:event", json.dumps(an_event(id="after-handover")))
        wait_for(lambda: stored(r, "event", "after-handover"))
        client.close()
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(5)


def test_int012_a_fresh_stack_starts_active(redis_url: str) -> None:
    with running_stack(redis_url) as live:
        wait_for(lambda: live.ingest.active)
        assert live.client.hget("cc:ingest:hb", "instance") == live.ingest.instance
