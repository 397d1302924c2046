"""Fuzz: over 10,000 generated messages on every channel, valid, near-valid and junk.

Whatever arrives, ingest keeps going and accounts for every message exactly once (applied,
dead-lettered with a reason, or a duplicate), the log and `seq` agree, and each valid entity
holds what its newest valid message said.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.config import Settings
from dashboard.store import Store
from feeds.ingest import Ingest

NOW = int(time.time() * 1000)
LON, LAT = 119.96, 36.78  # Pingdu
CHANNELS = ("event", "worker", "resource", "camera", "feedback")
BATCHES, BATCH = 60, 200  # 12,000 messages

junk = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=2))
ids = st.sampled_from([f"id-{i}" for i in range(12)])  # few ids: updates, repeats, stale
ts = st.integers(min_value=NOW - 600_000, max_value=NOW)
near = st.floats(min_value=-0.05, max_value=0.05)


@st.composite
def valid(draw: Any) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(CHANNELS))
    lon, lat = LON + draw(near), LAT + draw(near)
    base: dict[str, Any] = {"ts": draw(ts)}
    if kind == "feedback":
        base.update(task_id=draw(ids), event_id=draw(ids), actor_id="W1",
                    stage=draw(st.sampled_from(["accepted", "arrived", "handled"])))
    else:
        base.update(id=draw(ids), lon=lon, lat=lat)
    if kind == "event":
        base.update(type=draw(st.sampled_from(["fire", "dispute", "ufo"])),
                    severity=draw(st.integers(1, 4)), title=draw(st.text(max_size=40)))
    elif kind == "resource":
        base["kind"] = "patrol_car"
    if kind != "feedback" and draw(st.booleans()):
        base["crs"] = draw(st.sampled_from(["gcj02", "bd09", "wgs84"]))
    if draw(st.integers(0, 9)) == 0:
        base["vendor_extra"] = draw(st.text(max_size=20))
    return kind, base


@st.composite
def broken(draw: Any) -> tuple[str, dict[str, Any]]:
    """A valid message with one thing wrong."""
    kind, msg = draw(valid())
    how = draw(st.sampled_from(["junk", "drop", "bd09_edge", "polar", "future", "past",
                                "fat", "list"]))
    if how == "junk":
        msg[draw(st.sampled_from(sorted(msg)))] = draw(junk)
    elif how == "drop":
        msg.pop(draw(st.sampled_from(sorted(msg))))
    elif how == "bd09_edge" and kind != "feedback":
        msg.update(crs="bd09", lon=draw(st.sampled_from([-180, 180, -179.999])),
                   lat=draw(st.floats(-90, 90)))
    elif how == "polar" and kind != "feedback":
        msg["lat"] = draw(st.floats(85.06, 90))
    elif how == "future":
        msg["ts"] = NOW + draw(st.integers(301_000, 10**12))
    elif how == "past":
        msg["ts"] = draw(st.integers(0, 946_684_799_999))
    elif how == "fat":
        msg.update({f"x{i}": "y" * 200 for i in range(30)})
    else:
        msg["tags"] = ["t" * 500] * draw(st.integers(17, 120))
    return kind, msg


def _raw(msg: Any) -> bytes:
    return json.dumps(msg, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


garbage = st.one_of(
    st.binary(max_size=60),
    st.just(b"\xff\xfe{\"id\":1}"),
    st.just(b"[" * 2000 + b"]" * 2000),  # nesting deeper than any parser's limit
    # orjson reads 1,024 levels but writes only 254: in between it once ended ingest
    st.sampled_from([255, 300, 1024]).map(
        lambda depth: b'{"id":"d","lon":120,"lat":36,"ts":1,"x":' + b"[" * depth
        + b"]" * depth + b"}"),
    st.sampled_from([b"[]", b"42", b'"text"', b"null", b"{}"]),
    st.just(b'{"id":"x","pad":"' + b"a" * 70_000 + b'"}'),  # over 64 KiB
)

message = st.one_of(
    valid().map(lambda km: (km[0], _raw(km[1]))),
    broken().map(lambda km: (km[0], _raw(km[1]))),
    st.tuples(st.sampled_from((*CHANNELS, "weather")), garbage),
)


@pytest.mark.slow  # seconds of real work: not in make test-fast
@settings(max_examples=BATCHES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(batch=st.lists(message, min_size=BATCH, max_size=BATCH))
def test_fuzz001_every_message_is_accounted_for(redis_url: str, batch: list[Any]) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.flushall()
    ingest = Ingest(replace(Settings()), redis_url)
    ingest.store = Store(redis.Redis.from_url(redis_url), "cc:")
    try:
        half = len(batch) // 2
        for part in (batch[:half], batch[half:]):
            ingest.handle([(f"cc:{kind}", raw) for kind, raw in part])
        c = ingest.counters
        assert c.accepted + c.rejected + c.duplicates == len(batch)
        assert int(r.get("cc:deadletter:count") or 0) == c.rejected
        assert r.xlen("cc:log") == c.accepted
        last = r.xrevrange("cc:log", count=1)
        assert int(r.get("cc:seq") or 0) == (int(last[0][0].split("-")[0]) if last else 0)
        for letter in r.lrange("cc:deadletter", 0, -1):
            entry = json.loads(letter)
            assert entry["code"] and entry["reason"] and len(entry["raw"].encode()) <= 4096
        # Each entity holds the ts of its newest stored message (newer wins, nothing else).
        for kind in ("event", "worker", "resource", "camera"):
            for raw in r.hvals(f"cc:state:{kind}"):
                record = json.loads(raw)
                assert -180 <= record["lon"] <= 180 and -90 <= record["lat"] <= 90
                meta = r.hget(f"cc:meta:{kind}", record["id"])
                assert meta is not None and int(meta.split("|")[1]) == record["ts"]
    finally:
        ingest.store.close_apply()
        r.close()


def test_fuzz002_nesting_that_loads_but_cannot_be_dumped_is_dead_lettered(
        redis_url: str, r: redis.Redis) -> None:
    """Found by fuzzing: a message nested 255-1,024 deep parsed, then failed to be written."""
    ingest = Ingest(Settings(), redis_url)
    ingest.store = Store(redis.Redis.from_url(redis_url), "cc:")
    valid_event = {"id": "ok", "type": "fire", "severity": 2, "lon": LON, "lat": LAT,
                   "ts": NOW}
    def nested(fields: dict[str, Any], key: str, depth: int) -> str:
        return json.dumps(fields)[:-1] + f', "{key}": ' + "[" * depth + "]" * depth + "}"

    feedback = {"task_id": "t", "event_id": "e", "actor_id": "a", "stage": "accepted",
                "ts": NOW}
    deep = [(f"cc:{kind}", nested(feedback if kind == "feedback" else
                                  {**valid_event, "kind": "other"}, "x", depth))
            for kind in CHANNELS for depth in (255, 300, 1024)]
    deep.append(("cc:event", nested({**valid_event, "id": "deep"}, "attachments", 300)))
    try:
        ingest.handle([*deep, ("cc:event", json.dumps(valid_event))])
    finally:
        ingest.store.close_apply()
    assert int(r.get("cc:deadletter:count") or 0) == len(deep)
    assert r.hexists("cc:state:event", "ok") and r.get("cc:seq") == "1"
