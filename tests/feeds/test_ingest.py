"""Ingest on a real Valkey: validation, merge, newer-wins, grids, dead letters, restart."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import redis

from dashboard.city import load_city
from dashboard.geo import wgs84_to_gcj02
from dashboard.store import day_of
from feeds.redis_server import EmbeddedRedis

from ..conftest import FIXTURES, Stack, start_stack

TS = 1_795_312_800_000  # 2026-11-22 10:00 +08:00


def wait_for(predicate: Any, timeout: float = 5.0, what: str = "condition not met") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


def an_event(**fields: Any) -> dict[str, Any]:
    city = load_city()
    lon, lat = city.grids[0].centroid
    base = {"id": "ev-1", "type": "fire", "severity": 2, "lon": lon, "lat": lat, "ts": TS,
            "title": "仓库起火", "source": "hotline"}
    base.update(fields)
    return base


def stored(r: redis.Redis, kind: str, entity_id: str) -> dict[str, Any] | None:
    raw = r.hget(f"cc:state:{kind}", entity_id)
    return json.loads(raw) if raw else None


def test_ing001_event_stored_logged_counted(stack: Stack, r: redis.Redis) -> None:
    stack.publish("event", an_event())
    stack.wait_seq(1)
    event = stored(r, "event", "ev-1")
    assert event is not None
    assert event["status"] == "reported" and event["category"] == "accident"
    assert event["first_ts"] == TS
    assert r.sismember("cc:events:open", "ev-1")
    entries = r.xrange("cc:log")
    assert [e[0] for e in entries] == ["1-0"]
    assert entries[0][1]["k"] == "event"
    day = r.hgetall(f"cc:stat:{day_of(TS)}")
    assert day["total"] == "1" and day["sev:2"] == "1" and day["cat:accident"] == "1"
    assert day["src:hotline"] == "1"
    assert r.geopos("cc:geo:event", "ev-1")[0] is not None


def test_ing002_bad_input_dead_lettered_and_stream_goes_on(stack: Stack, r: redis.Redis) -> None:
    bad = json.loads((FIXTURES / "bad_messages.json").read_text(encoding="utf-8"))
    bad = [case for case in bad if case["kind"] != "weather"]
    for case in bad:
        stack.publish(case["kind"], case["raw"])
    stack.publish("event", an_event(id="ev-after"))
    stack.wait_seq(1)
    assert stored(r, "event", "ev-after") is not None
    wait_for(lambda: int(r.get("cc:deadletter:count") or 0) >= len(bad))
    letters = [json.loads(x) for x in r.lrange("cc:deadletter", 0, -1)]
    assert len(letters) == len(bad)
    raws = {letter["raw"] for letter in letters}
    assert raws == {case["raw"] for case in bad}  # nothing lost: every raw message kept
    assert all(letter["reason"] and letter["code"] for letter in letters)


def test_ing003_newer_wins_and_updates_merge(stack: Stack, r: redis.Redis) -> None:
    stack.publish("event", an_event(description="三楼冒烟", ts=TS))
    stack.publish("event", an_event(title=None, status="dispatched", ts=TS + 60_000))
    stack.wait_seq(2)
    event = stored(r, "event", "ev-1")
    assert event is not None
    assert event["status"] == "dispatched"
    assert event["description"] == "三楼冒烟"  # absent in the update: kept
    assert event["title"] is None  # explicit null in the update: cleared
    assert event["first_ts"] == TS and event["ts"] == TS + 60_000
    # An older report does not overwrite newer state; it is kept as a stale dead letter.
    stack.publish("event", an_event(status="reported", ts=TS + 30_000))
    wait_for(lambda: r.llen("cc:deadletter") == 1)
    letter = json.loads(r.lindex("cc:deadletter", 0))
    assert letter["code"] == "stale"
    assert stored(r, "event", "ev-1")["status"] == "dispatched"  # type: ignore[index]
    # A status-less update does not reset the status either.
    stack.publish("event", an_event(severity=3, ts=TS + 90_000))
    stack.wait_seq(3)
    assert stored(r, "event", "ev-1")["status"] == "dispatched"  # type: ignore[index]
    assert r.hget("cc:count:event", "dispatched") == "1"
    assert r.hget("cc:count:event", "reported") == "0"
    timeline = [json.loads(x)["status"] for x in r.lrange("cc:timeline:ev-1", 0, -1)]
    assert timeline == ["reported", "dispatched"]


def test_ing004_datum_converted_and_grid_assigned(stack: Stack, r: redis.Redis) -> None:
    city = load_city()
    grid = city.grids[100]
    lon, lat = grid.centroid
    glon, glat = wgs84_to_gcj02(lon, lat)
    stack.publish("event", an_event(id="ev-gcj", lon=glon, lat=glat, crs="gcj02"))
    stack.publish("event", an_event(id="ev-given", grid_id="X123"))
    stack.wait_seq(2)
    event = stored(r, "event", "ev-gcj")
    assert event is not None
    assert abs(event["lon"] - lon) < 2e-6 and abs(event["lat"] - lat) < 2e-6
    assert event["src_crs"] == "gcj02"
    assert event["grid_id"] == grid.code
    town, community = city.parents(grid.code)[:2]
    assert event["town_id"] == town.code and event["community_id"] == community.code
    assert stored(r, "event", "ev-given")["grid_id"] == "X123"  # type: ignore[index]


def test_ing005_worker_moves_keep_identity(stack: Stack, r: redis.Redis) -> None:
    city = load_city()
    home = city.grids[5]
    lon, lat = home.centroid
    stack.publish("worker", {"id": "w-1", "name": "王芳", "grid_id": home.code, "lon": lon,
                             "lat": lat, "ts": TS, "status": "on_duty"})
    # A tracker that only sends positions must not erase the name or assigned grid.
    stack.publish("worker", {"id": "w-1", "lon": lon + 0.0001, "lat": lat, "ts": TS + 5000})
    stack.wait_seq(2)
    worker = stored(r, "worker", "w-1")
    assert worker is not None
    assert worker["name"] == "王芳" and worker["grid_id"] == home.code
    assert worker["status"] == "on_duty"
    ops = [fields["o"] for _, fields in r.xrange("cc:log")]
    assert ops == ["upsert", "move"]
    assert r.hget("cc:count:worker", "on_duty") == "1"


def test_ing006_survives_redis_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    live, stop, threads = start_stack(server.url)
    try:
        live.publish("event", an_event(id="before"))
        live.wait_seq(1)
        server.stop()
        time.sleep(0.5)
        server = EmbeddedRedis(tmp_path / "redis", port=server.port, persist=True).start()
        client = redis.Redis.from_url(server.url, decode_responses=True)

        def resubscribed() -> bool:
            return dict(client.pubsub_numsub("cc:event")).get("cc:event", 0) >= 1

        wait_for(resubscribed, timeout=15)
        client.publish("cc:event", json.dumps(an_event(id="after", ts=TS + 1000)))
        wait_for(lambda: client.hget("cc:state:event", "after"), timeout=5)
        assert client.hget("cc:state:event", "before")  # persisted across the restart
        hb = wait_for(lambda: client.hgetall("cc:ingest:hb").get("degraded") and
                      client.hgetall("cc:ingest:hb"))
        assert int(hb["reconnects"]) >= 1
        assert json.loads(hb["last_outage"])["to"] >= json.loads(hb["last_outage"])["from"]
        client.close()
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        server.stop()


def test_ing007_batch_of_many_messages(stack: Stack, r: redis.Redis) -> None:
    pipe = stack.client.pipeline(transaction=False)
    for i in range(2000):
        pipe.publish("cc:worker", json.dumps({"id": f"w-{i % 100}", "lon": 119.9 + i * 1e-5,
                                             "lat": 36.7, "ts": TS + i}))
    pipe.execute()
    stack.wait_seq(2000, timeout=20)
    assert r.hlen("cc:state:worker") == 100
    last = stored(r, "worker", "w-99")
    assert last is not None and last["ts"] == TS + 1999
    assert r.llen("cc:deadletter") == 0


def test_ing008_threads_stop_promptly(redis_url: str) -> None:
    live, stop, threads = start_stack(redis_url)
    started = time.monotonic()
    stop.set()
    for thread in threads:
        thread.join(5)
    assert not [t.name for t in threads if t.is_alive()]  # names the one that hung
    assert time.monotonic() - started < 5
    assert isinstance(threading.active_count(), int)
    live.client.close()


def test_ing009_pipelined_batches_keep_order(redis_url: str, r: redis.Redis) -> None:
    """Batches in flight together, the same units in each: nothing stale, nothing conflicting."""
    from dashboard.config import Settings
    from dashboard.store import Store
    from feeds.ingest import Ingest

    ingest = Ingest(Settings(), redis_url)
    ingest.store = Store(redis.Redis.from_url(redis_url), "cc:")
    for batch in range(20):
        ingest.submit([("cc:worker", json.dumps({"id": f"w-{i}", "lon": 119.9 + batch * 1e-4,
                                                 "lat": 36.7, "ts": TS + batch}))
                       for i in range(50)])
        ingest.drain(keep=1)  # one batch stays in flight while the next is built
    ingest.drain()
    assert r.llen("cc:deadletter") == 0
    assert ingest.counters.conflicts == 0
    assert int(r.get("cc:seq")) == 1000
    assert all(json.loads(v)["ts"] == TS + 19 for v in r.hvals("cc:state:worker"))
    assert ingest.cache[("worker", "w-0")][1] == "20"
    ingest.store.close_apply()


def test_ing010_closed_events_leave_the_merge_cache(stack: Stack, r: redis.Redis) -> None:
    stack.publish("event", an_event(id="ev-c", ts=TS))
    stack.publish("event", an_event(id="ev-c", status="closed", ts=TS + 1000))
    stack.wait_seq(2)
    wait_for(lambda: ("event", "ev-c") not in stack.ingest.cache)
    # A late update of a closed event still merges with what Redis holds.
    stack.publish("event", an_event(id="ev-c", title=None, status="verified", ts=TS + 2000))
    stack.wait_seq(3)
    event = stored(r, "event", "ev-c")
    assert event is not None and event["status"] == "verified"
    assert event["first_ts"] == TS and event["source"] == "hotline"


def test_ing011_polar_latitude_does_not_fail_the_batch(redis_url: str, r: redis.Redis) -> None:
    """GEOADD refuses |lat| > 85.05: that point goes unindexed, the rest of the batch applies."""
    from dashboard.config import Settings
    from dashboard.store import Store
    from feeds.ingest import Ingest

    ingest = Ingest(Settings(), redis_url)
    ingest.store = Store(redis.Redis.from_url(redis_url), "cc:")
    ingest.handle([("cc:worker", json.dumps({"id": "w-1", "lon": 120.0, "lat": 36.7, "ts": TS})),
                   ("cc:worker", json.dumps({"id": "w-2", "lon": 120.0, "lat": 89.0, "ts": TS})),
                   ("cc:event", json.dumps(an_event(id="ev-p", lat=88.0)))])
    ingest.handle([("cc:worker", json.dumps({"id": "w-1", "lon": 120.0, "lat": 36.8,
                                             "ts": TS + 1}))])
    assert r.get("cc:seq") == "4" and r.xlen("cc:log") == 4
    assert r.zcard("cc:geo:worker") == 1 and r.zcard("cc:geo:event") == 0
    assert r.sismember("cc:events:open", "ev-p")
    w2 = stored(r, "worker", "w-2")
    assert w2 is not None and w2["lat"] == 89.0
    ingest.store.close_apply()


def test_ing012_messages_read_with_the_close_are_kept(redis_url: str,
                                                       r: redis.Redis) -> None:
    """A dying server's last messages arrive just before its connection closes: they are
    returned with the error, not dropped with it (both ingests would drop the same ones,
    after PUBLISH had counted them delivered)."""
    from feeds.ingest import Ingest

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("cc:event")
    wait_for(lambda: r.pubsub_numsub("cc:event")[0][1] == 1)
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    for i in range(3):
        assert r.publish("cc:event", f"m{i}") == 1
    time.sleep(0.1)  # on the subscriber's socket, then the connection closes behind them
    r.client_kill_filter(_type="pubsub")
    batch, closed = Ingest._read_batch(pubsub)
    assert [data for _, data in batch] == [b"m0", b"m1", b"m2"]
    assert isinstance(closed, redis.ConnectionError)
    pubsub.close()
    client.close()


def test_ing013_batches_in_flight_at_a_close_are_applied_again(
        redis_url: str, r: redis.Redis, caplog: Any) -> None:
    """Sent but never confirmed when the connection closed: the batch is kept and applied
    again once connected, even to the same server (where the last seconds' replay of a new
    server does not run)."""
    from dashboard.config import Settings
    from dashboard.store import Store
    from feeds.ingest import Ingest

    ingest = Ingest(Settings(), redis_url)
    ingest.store = Store(redis.Redis.from_url(redis_url), "cc:")
    events = [("cc:event", json.dumps(an_event(id=f"ev-u{i}"))) for i in range(5)]
    r.execute_command("CLIENT", "PAUSE", "5000", "WRITE")  # holds the batch's script unrun
    try:
        ingest.submit(events)
        time.sleep(0.1)
        r.client_kill_filter(_type="normal", skipme=True)
        try:
            ingest.drain()
        except redis.ConnectionError:
            pass
        else:
            raise AssertionError("the connection was not closed under the batch")
    finally:
        r.execute_command("CLIENT", "UNPAUSE")
    assert not ingest.in_flight
    assert [data for _, data in ingest._unsettled] == [data for _, data in events]
    assert not r.hlen("cc:state:event")  # never run: lost, unless applied again
    ingest.store.close_apply()

    stop = threading.Event()
    thread = threading.Thread(target=ingest.run, args=(stop,), daemon=True)
    with caplog.at_level("WARNING", logger="feeds.ingest"):
        thread.start()
        try:
            wait_for(lambda: all(stored(r, "event", f"ev-u{i}") for i in range(5)), 10)
            wait_for(lambda: not ingest._unsettled, 5)
        finally:
            stop.set()
            thread.join(5)
    assert "applying again the 5 messages Redis had not confirmed" in caplog.text


def test_ing014_unread_messages_are_kept_when_another_connection_fails(
        redis_url: str, r: redis.Redis) -> None:
    """A frozen primary's last messages wait on the pub/sub socket while the loop waits out a
    command on its other connection: when that fails, they are kept — rung by a standby,
    applied again on the next server by the active — not closed away with the socket."""
    from dashboard.config import Settings
    from feeds.ingest import Ingest

    for active in (False, True):
        ingest = Ingest(Settings(), redis_url)
        ingest.active = active
        client = redis.Redis.from_url(redis_url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe("cc:event")
        pubsub.get_message(timeout=1)  # the subscription's confirmation
        for i in range(3):
            r.publish("cc:event", f"m{i}")
        time.sleep(0.1)
        ingest._keep_unread(pubsub)
        kept = ingest.applied.since(None) if active else ingest.ring.since(None)
        assert [data for _, data in kept] == [b"m0", b"m1", b"m2"]
        assert [data for _, data in ingest._unsettled] == ([b"m0", b"m1", b"m2"]
                                                           if active else [])
        pubsub.close()
        client.close()


def test_ing015_a_standby_told_of_a_new_active_applies_what_is_still_on_its_socket(
        redis_url: str, r: redis.Redis) -> None:
    """After a failover the standby may be the only one subscribed for a moment, and busy
    (replaying its own last seconds) while the other process subscribes and takes the lease.
    The new epoch tells it to apply what only it got: that includes what still waits unread
    on its socket, not just what its ring already holds (the drill lost such events)."""
    from dashboard.config import Settings
    from dashboard.store import Store
    from feeds.failover import Lease
    from feeds.ingest import Ingest

    ingest = Ingest(Settings(), redis_url)
    client = redis.Redis.from_url(redis_url)
    ingest.store = Store(client, "cc:")
    ingest.lease = Lease(client, "cc:ingest:lease", ingest.instance)
    r.set("cc:ingest:lease", "the-other-process", px=60_000)
    ingest._subscribed_at = time.monotonic() - 60  # not young: it does not defer
    ingest._epoch = b"before"
    pubsub = ingest._pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("cc:event")
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    r.publish("cc:event", json.dumps(an_event(id="ev-only-here")))
    time.sleep(0.1)  # on the socket, unread
    r.set("cc:ingest:epoch", "after")  # the other process subscribed and took the lease
    ingest._lease_tick()
    assert ingest._epoch == b"after"
    assert stored(r, "event", "ev-only-here") is not None
    # and what it reads in the next moment is applied too (the server may not have written
    # it out yet when the epoch was read)
    r.publish("cc:event", json.dumps(an_event(id="ev-next")))
    batch, closed = Ingest._read_batch(pubsub)
    assert closed is None and len(batch) == 1
    assert ingest._epoch_tail_until > time.monotonic()
    pubsub.close()
    ingest.store.close_apply()
    client.close()


def test_ing016_after_a_takeover_an_older_move_is_a_duplicate_not_a_dead_letter(
        redis_url: str, r: redis.Redis) -> None:
    """The standby replays its ring when the new active takes over, and may store a unit's
    later positions before the new active reads the earlier ones live: those are repeats,
    not stale reports to dead-letter. A fresh process's first takeover is strict as ever."""
    from dashboard.config import Settings
    from dashboard.store import Store
    from feeds.failover import Lease
    from feeds.ingest import Ingest

    def move(ts: int) -> list[tuple[str, str]]:
        return [("cc:worker", json.dumps({"id": "w-1", "lon": 119.9, "lat": 36.7, "ts": ts}))]

    for after_failover, dead in ((True, 0), (False, 1)):
        r.flushdb()
        ingest = Ingest(Settings(), redis_url)
        client = redis.Redis.from_url(redis_url)
        ingest.store = Store(client, "cc:")
        ingest.lease = Lease(client, "cc:ingest:lease", ingest.instance)
        ingest._server = "the-old-primary" if after_failover else ""
        ingest._take_over()
        ingest.handle(move(TS + 5000))  # what the standby's replay stored first
        ingest.handle(move(TS))  # read live by the new active a moment later
        assert r.llen("cc:deadletter") == dead
        assert ingest.counters.duplicates == 1 - dead
        ingest.store.close_apply()
        client.close()
