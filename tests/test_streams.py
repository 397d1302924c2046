"""At-least-once input on Redis Streams: the consumer group, claims, trimming, and ingest."""

from __future__ import annotations

import json
import time

import redis

from dashboard.models import KINDS
from feeds.streams import StreamInput

from .conftest import start_stack
from .test_ingest import TS, an_event, stored, wait_for


def _input(redis_url: str, consumer: str, **kwargs: int) -> StreamInput:
    return StreamInput(redis.Redis.from_url(redis_url), "cc:", KINDS, consumer, **kwargs)


def test_str001_entries_added_before_any_reader_are_read_in_order(redis_url: str,
                                                                   r: redis.Redis) -> None:
    ids = [r.xadd("cc:in:event", {"m": json.dumps(an_event(id=f"e{i}"))}) for i in range(3)]
    r.xadd("cc:in:worker", {"other": "x"})  # no field m
    streams = _input(redis_url, "a")
    streams.ensure_groups()
    streams.ensure_groups()  # again: the group is kept, not an error
    got = streams.read(100)
    events = [e for e in got if e.kind == "event"]
    assert [e.entry_id for e in events] == ids
    assert [json.loads(e.data)["id"] for e in events] == ["e0", "e1", "e2"]  # type: ignore[arg-type]
    assert {e.channel for e in events} == {"cc:in:event"}
    (worker,) = [e for e in got if e.kind == "worker"]
    assert worker.data is None
    assert streams.read(100) == []  # read once; non-blocking when nothing is new


def test_str002_a_dead_readers_pending_entries_are_claimed(redis_url: str,
                                                           r: redis.Redis) -> None:
    dead, alive = _input(redis_url, "dead", claim_idle_ms=50), _input(redis_url, "alive",
                                                                        claim_idle_ms=50)
    dead.ensure_groups()
    for i in range(5):
        r.xadd("cc:in:camera", {"m": f'{{"n":{i}}}'})
    assert len(dead.read(100)) == 5  # read, never acknowledged: the reader died
    assert alive.claim(100) == []  # not idle long enough yet
    time.sleep(0.1)
    claimed = alive.claim(100)
    assert [e.data for e in claimed] == [f'{{"n":{i}}}'.encode() for i in range(5)]
    alive.ack(claimed)
    assert r.xpending("cc:in:camera", "ingest")["pending"] == 0


def test_str003_trim_keeps_unread_and_pending(redis_url: str, r: redis.Redis) -> None:
    streams = _input(redis_url, "a")
    streams.ensure_groups()
    for i in range(10):
        r.xadd("cc:in:event", {"m": str(i)})
    first = streams.read(6)
    streams.ack(first[:4])  # 4 done, 2 pending, 4 unread
    assert streams.trim() == 4 and r.xlen("cc:in:event") == 6
    streams.ack(first[4:])
    assert streams.trim() == 2 and r.xlen("cc:in:event") == 4  # the unread stay
    assert [e.data for e in streams.read(100)] == [str(i).encode() for i in range(6, 10)]


def test_str004_groups_come_back_after_redis_lost_them(redis_url: str,
                                                       r: redis.Redis) -> None:
    streams = _input(redis_url, "a")
    streams.ensure_groups()
    r.flushall()  # a Redis that restarted empty
    r.xadd("cc:in:event", {"m": "x"})  # added after the restart, before the group is back
    assert [e.data for e in streams.read(10)] == [b"x"]
    r.xadd("cc:in:event", {"m": "y"})
    assert [e.data for e in streams.read(10)] == [b"y"]


def test_str005_idle_consumers_without_pending_are_forgotten(redis_url: str,
                                                             r: redis.Redis) -> None:
    old, busy, me = (_input(redis_url, name) for name in ("old", "busy", "me"))
    me.ensure_groups()
    r.xadd("cc:in:event", {"m": "1"})
    busy.read(10)  # keeps one pending
    old.read(10)  # reads nothing, pending none
    time.sleep(0.05)
    me.forget_consumers(idle_ms=10)
    names = {c["name"] for c in r.xinfo_consumers("cc:in:event", "ingest")}
    assert "busy" in names and "old" not in names


def test_str006_ingest_stores_what_was_added_while_it_was_down(redis_url: str,
                                                               r: redis.Redis) -> None:
    """Producers XADD with no ingest running; once one starts, every entry is stored and
    acknowledged, and an entry without its field is dead-lettered, not lost."""
    for i in range(50):
        r.xadd("cc:in:event", {"m": json.dumps(an_event(id=f"s{i}", ts=TS + i))})
    r.xadd("cc:in:worker", {"x": "no m"})
    live, stop, threads = start_stack(redis_url)
    try:
        wait_for(lambda: r.hlen("cc:state:event") == 50)
        wait_for(lambda: r.llen("cc:deadletter") == 1)
        letter = json.loads(r.lindex("cc:deadletter", 0))
        assert letter["code"] == "missing_field" and letter["channel"] == "cc:in:worker"
        wait_for(lambda: r.xpending("cc:in:event", "ingest")["pending"] == 0)
        assert r.xpending("cc:in:worker", "ingest")["pending"] == 0
        # Live entries too, alongside pub/sub.
        r.xadd("cc:in:event", {"m": json.dumps(an_event(id="live", ts=TS + 999))})
        live.publish("event", an_event(id="pubsub", ts=TS + 1000))
        wait_for(lambda: stored(r, "event", "live") and stored(r, "event", "pubsub"))
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        live.client.close()


def test_str007_a_broken_stream_key_stops_neither_input(redis_url: str,
                                                        r: redis.Redis) -> None:
    """A string where a stream should be: that stream is left out (logged), the other
    streams and pub/sub go on."""
    r.set("cc:in:camera", "not a stream")
    live, stop, threads = start_stack(redis_url)
    try:
        r.xadd("cc:in:event", {"m": json.dumps(an_event(id="via-stream"))})
        live.publish("event", an_event(id="via-pubsub", ts=TS + 1))
        wait_for(lambda: stored(r, "event", "via-stream") and stored(r, "event", "via-pubsub"))
        assert live.ingest.active
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        live.client.close()
