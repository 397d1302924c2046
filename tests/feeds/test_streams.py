"""feeds.streams: at-least-once stream input, against the real Valkey the tests start."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from dashboard.models import KINDS
from feeds.streams import StreamEntry, StreamInput

from ..conftest import running_stack
from .test_ingest import TS, an_event, stored, wait_for

PREFIX = "cc:"
EVENTS = f"{PREFIX}in:event"
IDLE_MS = 50
PAST_IDLE_S = 0.12  # comfortably past IDLE_MS on a busy machine


# Ingest's client is bytes; the class must also work with decoded replies and RESP3.
@pytest.fixture(params=[{}, {"decode_responses": True}, {"protocol": 3}],
                ids=["bytes", "decoded", "resp3"])
def client(redis_url: str, request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    # A read that blocked would hit the socket timeout and fail instead of hanging the run.
    c = redis.Redis.from_url(redis_url, socket_timeout=2, **request.param)
    yield c
    c.close()


def stream_input(client: redis.Redis, consumer: str) -> StreamInput:
    return StreamInput(client, PREFIX, KINDS, consumer, claim_idle_ms=IDLE_MS)


def b(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def ids(entries: list[StreamEntry]) -> list[bytes | None]:
    return [b(e.entry_id) for e in entries]


def stored_ids(client: redis.Redis, stream: str = EVENTS) -> list[bytes | None]:
    return [b(entry_id) for entry_id, _ in client.xrange(stream)]


def pending_count(client: redis.Redis, stream: str = EVENTS) -> int:
    return int(client.xpending(stream, StreamInput.GROUP)["pending"])


def test_str001_entries_added_before_any_group_are_read_in_order(client: redis.Redis) -> None:
    added = [client.xadd(EVENTS, {"m": f'{{"id":"E{i}"}}'}) for i in range(3)]
    bare = client.xadd(EVENTS, {"x": "no m field"})
    worker = client.xadd(f"{PREFIX}in:worker", {"m": '{"id":"W1"}'})
    assert client.exists(f"{PREFIX}in:camera") == 0

    inp = stream_input(client, "A")
    inp.ensure_groups()
    inp.ensure_groups()  # BUSYGROUP is fine: re-callable
    assert all(client.xinfo_groups(f"{PREFIX}in:{kind}") for kind in KINDS)
    got = inp.read(100)

    events = [e for e in got if e.kind == "event"]
    assert ids(events) == [b(i) for i in [*added, bare]]
    assert [b(e.data) for e in events] == [b'{"id":"E0"}', b'{"id":"E1"}', b'{"id":"E2"}',
                                           None]
    assert {e.channel for e in events} == {EVENTS}
    workers = [e for e in got if e.kind == "worker"]
    assert [(e.channel, b(e.data), b(e.entry_id)) for e in workers] == [
        (f"{PREFIX}in:worker", b'{"id":"W1"}', b(worker))]
    assert len(got) == 5
    assert inp.read(100) == []  # delivered once; now pending, not new
    assert pending_count(client) == 4


def test_str002_read_is_non_blocking_and_covers_every_kind(client: redis.Redis) -> None:
    inp = stream_input(client, "A")
    inp.ensure_groups()
    started = time.monotonic()
    assert inp.read(10) == []
    assert time.monotonic() - started < 0.5

    for kind in KINDS:
        for n in range(3):
            client.xadd(f"{PREFIX}in:{kind}", {"m": f"{kind}-{n}"})
    got = inp.read(2)  # count is per stream
    assert len(got) == 2 * len(KINDS)
    assert {e.kind for e in got} == set(KINDS)
    assert all(e.channel == f"{PREFIX}in:{e.kind}" for e in got)
    assert [b(e.data) for e in got if e.kind == "camera"] == [b"camera-0", b"camera-1"]
    rest = inp.read(10)
    assert sorted(b(e.data) or b"" for e in rest) == sorted(f"{k}-2".encode() for k in KINDS)
    assert inp.read(10) == []


def test_str003_a_dead_consumers_entries_are_claimed_after_idle(client: redis.Redis) -> None:
    dead, alive = stream_input(client, "A"), stream_input(client, "B")
    dead.ensure_groups()
    added = [client.xadd(EVENTS, {"m": f"e{i}"}) for i in range(3)]
    assert ids(dead.read(10)) == [b(i) for i in added]  # A dies before acking

    assert alive.claim(10) == []  # not idle long enough yet
    time.sleep(PAST_IDLE_S)
    first = alive.claim(1)  # count bounds what is taken
    assert ids(first) == [b(added[0])]
    assert [b(e.data) for e in first] == [b"e0"] and first[0].kind == "event"
    rest = alive.claim(10)  # the entry just claimed is no longer idle
    assert ids(rest) == [b(i) for i in added[1:]]
    owners = client.xpending(EVENTS, StreamInput.GROUP)["consumers"]
    assert [(b(o["name"]), int(o["pending"])) for o in owners] == [(b"B", 3)]

    assert alive.ack(first + rest) == 3
    assert pending_count(client) == 0
    time.sleep(PAST_IDLE_S)
    assert alive.claim(10) == []


def test_str004_trim_deletes_only_acknowledged_entries(client: redis.Redis) -> None:
    inp = stream_input(client, "A")
    inp.ensure_groups()
    added = [b(client.xadd(EVENTS, {"m": f"e{i}"})) for i in range(6)]
    read = inp.read(4)  # e4 and e5 stay unread
    assert inp.ack([read[0], read[2]]) == 2  # e1 and e3 stay pending

    # e2 is acked but sits behind the pending e1: the floor is the oldest pending entry.
    assert inp.trim() == 1
    assert stored_ids(client) == added[1:]
    assert pending_count(client) == 2

    inp.ack([read[1]])
    assert inp.trim() == 2
    assert stored_ids(client) == added[3:]

    inp.ack([read[3]])  # nothing pending: only the unread e4, e5 remain
    assert inp.trim() == 1
    assert stored_ids(client) == added[4:]
    assert inp.trim() == 0

    assert inp.ack(inp.read(10)) == 2
    assert inp.trim() == 2
    assert client.xlen(EVENTS) == 0


def test_str005_read_after_redis_restarted_empty_recreates_groups(client: redis.Redis) -> None:
    inp = stream_input(client, "A")
    inp.ensure_groups()
    client.xadd(EVENTS, {"m": "before"})
    before = inp.read(10)
    client.flushall()  # what a restarted empty Redis looks like

    assert inp.ack(before) == 0  # the lost group answers 0, no error
    assert inp.claim(10) == []
    assert inp.trim() == 0
    assert inp.forget_consumers(idle_ms=0) == 0
    # Producers keep writing; their streams come back without groups.
    added = b(client.xadd(EVENTS, {"m": "after"}))
    assert inp.trim() == 0  # no group yet: every entry is unread
    got = inp.read(10)
    assert [(b(e.data), b(e.entry_id)) for e in got] == [(b"after", added)]
    assert all(client.xinfo_groups(f"{PREFIX}in:{kind}") for kind in KINDS)

    client.flushall()
    assert inp.read(10) == []  # an empty restart: groups back, nothing to read
    assert all(client.xinfo_groups(f"{PREFIX}in:{kind}") for kind in KINDS)


def test_str006_forget_consumers_keeps_pending_and_active_ones(client: redis.Redis) -> None:
    me, old, busy = (stream_input(client, name) for name in ("me", "old", "busy"))
    me.ensure_groups()
    client.xadd(EVENTS, {"m": "e0"})
    assert len(busy.read(10)) == 1  # busy now holds e0 unacked
    old.read(10)  # joins every group, holds nothing
    me.read(10)
    assert me.forget_consumers() == 0  # nobody idle for an hour
    time.sleep(PAST_IDLE_S)
    fresh = stream_input(client, "fresh")
    fresh.read(10)

    # old goes from all five groups; busy only where it holds nothing; me is never removed.
    assert me.forget_consumers(idle_ms=IDLE_MS) == len(KINDS) + len(KINDS) - 1
    for kind in KINDS:
        names = {b(c["name"]) for c in client.xinfo_consumers(f"{PREFIX}in:{kind}",
                                                              StreamInput.GROUP)}
        assert names == ({b"me", b"fresh", b"busy"} if kind == "event" else {b"me", b"fresh"})
    assert pending_count(client) == 1


def test_str007_claim_skips_deleted_entries_and_follows_the_cursor(client: redis.Redis) -> None:
    dead, alive = stream_input(client, "A"), stream_input(client, "B")
    dead.ensure_groups()
    added = [client.xadd(EVENTS, {"m": f"e{i}"}) for i in range(6)]
    dead.read(10)
    client.xdel(EVENTS, *added[:3])  # deleted while pending, e.g. by an operator
    time.sleep(PAST_IDLE_S)

    got = alive.claim(2)
    assert ids(got) == [b(i) for i in added[3:5]]
    assert [b(e.data) for e in got] == [b"e3", b"e4"]
    assert pending_count(client) == 3  # the server dropped the deleted ones itself
    assert alive.ack(got + alive.claim(10)) == 3
    assert pending_count(client) == 0


def test_str008_trim_keeps_what_another_group_has_not_read(client: redis.Redis) -> None:
    inp = stream_input(client, "A")
    inp.ensure_groups()
    added = [b(client.xadd(EVENTS, {"m": f"e{i}"})) for i in range(3)]
    client.xgroup_create(EVENTS, "audit", id=added[0])  # audit has read e0 only
    assert inp.ack(inp.read(10)) == 3

    assert inp.trim() == 1
    assert stored_ids(client) == added[1:]
    assert client.xlen(f"{PREFIX}in:worker") == 0  # empty streams trim nothing


# -- through ingest: the loop, the acknowledgement, a broken key -------------------------


def test_str009_ingest_stores_what_was_added_while_it_was_down(redis_url: str,
                                                               r: redis.Redis) -> None:
    """Producers XADD with no ingest running; once one starts, every entry is stored and
    acknowledged, and an entry without its field is dead-lettered, not lost."""
    for i in range(50):
        r.xadd("cc:in:event", {"m": json.dumps(an_event(id=f"s{i}", ts=TS + i))})
    r.xadd("cc:in:worker", {"x": "no m"})
    with running_stack(redis_url) as live:
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


def test_str010_a_broken_stream_key_stops_neither_input(redis_url: str,
                                                        r: redis.Redis) -> None:
    """A string where a stream should be: that stream is left out (logged), the other
    streams and pub/sub go on."""
    r.set("cc:in:camera", "not a stream")
    with running_stack(redis_url) as live:
        r.xadd("cc:in:event", {"m": json.dumps(an_event(id="via-stream"))})
        live.publish("event", an_event(id="via-pubsub", ts=TS + 1))
        wait_for(lambda: stored(r, "event", "via-stream") and stored(r, "event", "via-pubsub"))
        assert live.ingest.active
