"""Tracks on a real Redis: the stored format, thinning, local days, TTL, the cap, the watch
writing them from the change log, and the HTTP API's answers and refusals (feature trk)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from redis.client import NEVER_DECODE

from dashboard.archive.tracks import (
    MAX_SPAN_MS,
    RECORD_SIZE,
    STILL_KEEP_MS,
    Fix,
    Thinner,
    Tracks,
    decode,
    distance_m,
    encode,
    packed_length,
    track_key,
)
from dashboard.city import load_city
from dashboard.config import Settings
from dashboard.errors import Refused
from dashboard.store import Store
from feeds.watch import Watch

from ..auth_util import make_user
from ..cockpit_util import Clock
from ..units_util import LAT0, LON0, TS, east, put

TZ = "Asia/Shanghai"
DAY = "2026-11-22"  # TS is 2026-11-22 10:00 +08:00
MIDNIGHT = int(datetime(2026, 11, 22, tzinfo=ZoneInfo(TZ)).timestamp() * 1000)


def walk(n: int, start: int = TS, every_ms: int = 5_000, step_m: float = 10.0) -> list[Fix]:
    """`n` fixes walking east `step_m` metres every `every_ms` (10 m: past MIN_MOVE_M)."""
    out = []
    for i in range(n):
        lon, lat = east(i * step_m)
        out.append(Fix(start + i * every_ms, lat, lon))
    return out


def test_trk001_encode_decode_round_trip() -> None:
    fixes = [Fix(MIDNIGHT, 36.123456, 119.654321), Fix(MIDNIGHT + 86_399_999, -0.5, -179.999999),
             Fix(TS, LAT0, LON0)]
    blob = encode(fixes, DAY, TZ)
    assert len(blob) == 3 * RECORD_SIZE == 36
    ts, lat, lon = decode(blob, DAY, TZ)
    assert ts.tolist() == [f.ts for f in fixes]
    assert [round(x, 6) for x in lat.tolist()] == [f.lat for f in fixes]
    assert [round(x, 6) for x in lon.tolist()] == [f.lon for f in fixes]
    # a torn tail (never written by APPEND) is ignored, not misread
    assert decode(blob + b"\x01\x02", DAY, TZ)[0].tolist() == [f.ts for f in fixes]


def test_trk002_thinning_skips_standing_and_keeps_walking() -> None:
    thin = Thinner()
    # standing still, a fix every 5 s for 10 minutes: the first, then one per STILL_KEEP_MS
    standing = [Fix(TS + i * 5_000, LAT0, LON0) for i in range(121)]
    kept = [f for fix in standing for f in thin.offer("worker", "W1", fix)]
    assert [f.ts for f in kept] == [TS, TS + STILL_KEEP_MS, TS + 2 * STILL_KEEP_MS]
    # stands 45 s, then walks off 10 m: the pause's last fix is written first
    thin2 = Thinner()
    thin2.offer("worker", "W2", Fix(TS, LAT0, LON0))
    for i in range(1, 10):  # less than STILL_KEEP_MS
        assert thin2.offer("worker", "W2", Fix(TS + i * 5_000, LAT0, LON0)) == []
    lon, lat = east(10.0)
    moved = thin2.offer("worker", "W2", Fix(TS + 50_000, lat, lon))
    assert [f.ts for f in moved] == [TS + 45_000, TS + 50_000]
    assert distance_m(LAT0, LON0, lat, lon) == pytest.approx(10.0, abs=0.05)
    # a jitter of 3 m is standing; older or equal times are never stored
    lon3, lat3 = east(13.0)
    assert thin2.offer("worker", "W2", Fix(TS + 55_000, lat3, lon3)) == []
    assert thin2.offer("worker", "W2", Fix(TS + 50_000, LAT0, LON0)) == []
    # a slow walk, 6.5 m every 5 s: every other fix, 13 m apart, and no pause in between
    thin3 = Thinner()
    slow = [f for fix in walk(21, step_m=6.5) for f in thin3.offer("worker", "W3", fix)]
    assert [f.ts for f in slow] == [TS + i * 10_000 for i in range(11)]
    # memory is bounded
    small = Thinner(cap=3)
    for i in range(10):
        small.offer("worker", f"W{i}", Fix(TS, LAT0, LON0))
    assert len(small) == 3


def test_trk003_days_are_local_days_and_a_span_reads_across_two(r: redis.Redis) -> None:
    tracks = Tracks(r, "cc:", TZ, keep_days=30)
    # 23:59:50 to 00:00:10 local (15:59:50 UTC): two keys, named by the local day
    start = MIDNIGHT + 86_400_000 - 10_000
    fixes = walk(5, start=start)
    assert tracks.write("worker", "W1", fixes) == 5
    first, second = track_key("cc:", "worker", "W1", DAY), track_key("cc:", "worker", "W1",
                                                                      "2026-11-23")
    assert r.strlen(first) == 2 * RECORD_SIZE and r.strlen(second) == 3 * RECORD_SIZE
    got = tracks.read("worker", "W1", start - 1000, start + 60_000)
    assert [p[0] for p in got["points"]] == [f.ts for f in fixes]
    assert got["points"][2] == [fixes[2].ts, round(fixes[2].lat, 6), round(fixes[2].lon, 6)]
    assert got["thinned"] is False and got["total"] == 5
    # only the asked span, inclusive, in time order even when appended out of order
    tracks.write("worker", "W1", [Fix(start - 5_000, LAT0, LON0)])
    got = tracks.read("worker", "W1", start - 5_000, start + 5_000)
    assert [p[0] for p in got["points"]] == [start - 5_000, start, start + 5_000]
    # the same fix appended twice (a watch restarting mid-block) is read once
    tracks.write("worker", "W1", fixes[:1])
    assert tracks.read("worker", "W1", start, start + 60_000)["total"] == 5
    # another zone's day boundary moves the keys
    utc = Tracks(r, "cc:", "UTC")
    utc.write("resource", "R1", walk(2, start=MIDNIGHT))  # 16:00 UTC on the 21st
    assert r.exists(track_key("cc:", "resource", "R1", "2026-11-21"))


def test_trk004_ttl_and_span_limits(r: redis.Redis) -> None:
    tracks = Tracks(r, "cc:", TZ, keep_days=3)
    tracks.write("resource", "R1", walk(3))
    key = track_key("cc:", "resource", "R1", DAY)
    assert 3 * 86_400 - 5 < r.ttl(key) <= 3 * 86_400
    with pytest.raises(Refused) as bad:
        tracks.read("camera", "C1", TS, TS + 1)
    assert bad.value.code == "bad_kind"
    with pytest.raises(Refused) as bad:
        tracks.read("worker", "W1", TS, TS)
    assert bad.value.code == "bad_span"
    with pytest.raises(Refused) as bad:
        tracks.read("worker", "W1", TS, TS + MAX_SPAN_MS + 1)
    assert bad.value.code == "span_too_long"
    assert tracks.read("worker", "nobody", TS, TS + MAX_SPAN_MS)["points"] == []


def test_trk005_past_the_cap_an_even_sample_says_so(r: redis.Redis) -> None:
    tracks = Tracks(r, "cc:", TZ)
    fixes = walk(1000, every_ms=1_000)
    tracks.write("worker", "W1", fixes)
    got = tracks.read("worker", "W1", TS, TS + 3_600_000, max_points=100)
    assert got["thinned"] is True and got["total"] == 1000 and len(got["points"]) == 100
    ts = [p[0] for p in got["points"]]
    assert ts[0] == fixes[0].ts and ts[-1] == fixes[-1].ts and ts == sorted(ts)
    gaps = {b - a for a, b in itertools.pairwise(ts)}
    assert gaps <= {10_000, 11_000}  # evenly spread over the 999 s


def test_trk006_the_watch_writes_tracks_from_the_log(r: redis.Redis) -> None:
    store = Store(r)
    # a worker walks 20 fixes (moves), stands 10 (skipped), walks again; a vehicle drives;
    # a camera is no track, nor an off-duty worker
    for i in range(20):
        put(store, "worker", "W1", *east(i * 10.0), ts=TS + i * 5_000, status="on_duty")
    for i in range(20, 30):
        put(store, "worker", "W1", *east(190.0), ts=TS + i * 5_000, status="on_duty")
    put(store, "worker", "W1", *east(200.0), ts=TS + 30 * 5_000, status="busy")
    for i in range(5):
        put(store, "resource", "R1", *east(i * 60.0), ts=TS + i * 5_000, kind="ambulance")
    put(store, "camera", "C1", LON0, LAT0, ts=TS)
    for i in range(3):  # off duty: not followed
        put(store, "worker", "W2", *east(i * 50.0), ts=TS + i * 5_000, status="off_duty")
    # a phone whose clock runs an hour ahead: that fix is dropped, the true ones kept
    put(store, "worker", "W3", LON0, LAT0, ts=TS, status="on_duty")
    lon, lat = east(50.0)
    store.emit("worker", "move", {"id": "W3", "lon": lon, "lat": lat, "ts": TS + 3_600_000,
                                  "received": TS + 5_000, "status": "on_duty"})
    put(store, "worker", "W3", *east(20.0), ts=TS + 10_000, status="on_duty")
    watch = Watch(Settings(), "", clock=Clock(TS))
    watch.attach(r)
    while watch.process(limit=7):  # small blocks: several flushes
        pass
    tracks = Tracks(r, "cc:", TZ)
    worker = tracks.read("worker", "W1", TS, TS + 3_600_000)
    # 20 walking + the pause's last fix + the first fix walking on (an upsert: busy)
    want = [TS + i * 5_000 for i in range(20)] + [TS + 29 * 5_000, TS + 30 * 5_000]
    assert [p[0] for p in worker["points"]] == want
    assert worker["points"][5][2] == pytest.approx(east(50.0)[0], abs=1e-6)
    vehicle = tracks.read("resource", "R1", TS, TS + 3_600_000)
    assert len(vehicle["points"]) == 5
    assert sorted(r.keys("cc:track:*")) == [track_key("cc:", "resource", "R1", DAY),
                                            track_key("cc:", "worker", "W1", DAY),
                                            track_key("cc:", "worker", "W3", DAY)]
    assert [p[0] for p in tracks.read("worker", "W3", TS, TS + 7_200_000)["points"]] == \
        [TS, TS + 10_000]
    assert 0 < r.ttl(track_key("cc:", "worker", "W1", DAY)) <= 30 * 86_400
    # processing again (a restart from an old cursor) never duplicates what is read
    r.set("cc:watch:cursor", 0)
    watch.attach(r)
    while watch.process():
        pass
    again = tracks.read("worker", "W1", TS, TS + 3_600_000)
    assert again["points"] == worker["points"]


def test_trk009_a_finished_day_is_compacted_once_by_the_watch(r: redis.Redis) -> None:
    tracks = Tracks(r, "cc:", TZ, keep_days=30)
    for i in range(400):  # one fix per block: 400 APPENDs, as a slow day grows
        tracks.write("worker", "W1", walk(1, start=TS + i * 60_000))
    tracks.write("worker", "W2", walk(3))
    key = track_key("cc:", "worker", "W1", DAY)
    before, blob, ttl = r.memory_usage(key, samples=0), r.strlen(key), r.ttl(key)
    assert blob == 400 * RECORD_SIZE
    points = tracks.read("worker", "W1", TS, TS + 86_400_000)["points"]
    # the watch's tick on the next day compacts yesterday's keys, and only once
    watch = Watch(dataclasses.replace(Settings(), watch_tick_s=0), "", clock=Clock(TS + 86_400_000))
    watch.attach(r)
    watch.tick()
    after = r.memory_usage(key, samples=0)
    assert after < before and r.strlen(key) < blob / 2, (before, after, blob)
    assert 0 < r.ttl(key) <= ttl
    assert tracks.read("worker", "W1", TS, TS + 86_400_000)["points"] == points
    assert tracks.read("worker", "W2", TS, TS + 86_400_000)["total"] == 3
    assert watch.tracks.compacted == DAY
    assert tracks.compact_step("2026-11-20") == (0, 0)  # no such day: nothing to do


def test_trk010_a_compacted_day_reads_the_same_and_takes_late_fixes(r: redis.Redis) -> None:
    tracks = Tracks(r, "cc:", TZ, keep_days=30)
    fixes = walk(500)
    tracks.write("worker", "W1", fixes)
    key = track_key("cc:", "worker", "W1", DAY)
    whole = tracks.read("worker", "W1", TS, TS + 86_399_999)
    raw = r.strlen(key)
    assert tracks.compact_step(DAY)[1] == 1
    packed = r.execute_command("GET", key, **{NEVER_DECODE: True})
    assert packed_length(packed) == len(packed) < raw / 2
    assert tracks.read("worker", "W1", TS, TS + 86_399_999) == whole
    assert tracks.compact_step(DAY)[1] == 0  # already compact: left alone
    # a late fix APPENDed after the compaction is read after the compressed part
    late = Fix(fixes[-1].ts + 60_000, fixes[-1].lat + 0.001, fixes[-1].lon)
    tracks.write("worker", "W1", [late])
    again = tracks.read("worker", "W1", TS, TS + 86_399_999)
    assert again["points"][:-1] == whole["points"]
    assert again["points"][-1] == [late.ts, round(late.lat, 6), round(late.lon, 6)]
    assert tracks.compact_step(DAY)[1] == 1  # and a later run folds it in
    assert tracks.read("worker", "W1", TS, TS + 86_399_999) == again
    # a raw string is never taken for a compressed one: its length is a multiple of 12
    assert all(packed_length(encode(fixes[:n], DAY, TZ)) == 0 for n in range(0, 40))


# -- the HTTP API -----------------------------------------------------------------------


def tracks_app(redis_url: str, now: int) -> Any:
    """The auth guard and the tracks route on a Flask app with its own clock."""
    from flask import Flask

    from callbacks.access.auth import install_auth
    from callbacks.api import install_error_handlers
    from callbacks.archive.tracks import create_tracks_api
    from dashboard.access.audit import Audit
    from dashboard.access.auth import Auth

    settings = dataclasses.replace(Settings(), redis_url=redis_url)
    server = Flask(__name__)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    install_auth(server, Auth(client, settings.prefix, settings), Audit(client, settings.prefix),
                 settings)
    server.register_blueprint(create_tracks_api(Store(client), settings, clock=lambda: now))
    install_error_handlers(server)
    return server


def client_for(app: Any, r: redis.Redis, role: str | None, scope: str | None = None) -> Any:
    client = app.test_client()
    if role:
        user, password = make_user(r, role, f"t-{role}-{scope}", scope=scope)
        res = client.post("/api/login", json={"username": user, "password": password})
        assert res.status_code == 200
    return client


def test_trk007_api_answers_roles_errors_and_scope(redis_url: str, r: redis.Redis) -> None:
    city = load_city()
    grid_a = city.grids[0]
    grid_b = next(g for g in city.grids if g.code[:9] != grid_a.code[:9])
    town_a, town_b = grid_a.code[:9], grid_b.code[:9]
    assert city.unit(town_a) is not None and city.unit(town_b) is not None
    store = Store(r)
    put(store, "worker", "W1", *grid_a.centroid, ts=TS, grid_id=grid_a.code)
    put(store, "resource", "R1", *grid_b.centroid, ts=TS, grid_id=grid_b.code,
        kind="fire_engine")
    tracks = Tracks(r, "cc:", TZ)
    tracks.write("worker", "W1", walk(30, start=TS - 3_000_000, every_ms=60_000))
    tracks.write("resource", "R1", walk(3, start=TS - 60_000))
    app = tracks_app(redis_url, TS)
    assert client_for(app, r, None).get("/api/tracks/worker/W1").status_code == 401
    res = client_for(app, r, "display").get("/api/tracks/worker/W1")
    assert res.status_code == 403 and res.is_json
    for role in ("commander", "duty_officer", "leader"):
        res = client_for(app, r, role).get("/api/tracks/worker/W1")
        assert res.status_code == 200, role
    body = client_for(app, r, "leader").get("/api/tracks/worker/W1").json
    # the default span: the two hours before now; 30 fixes a minute apart from 50 min ago
    assert body["kind"] == "worker" and body["id"] == "W1"
    assert body["to"] == TS and body["from"] == TS - 7_200_000
    assert len(body["points"]) == 30 and body["thinned"] is False
    assert body["points"][0][0] == TS - 3_000_000
    # a chosen span
    res = client_for(app, r, "leader").get(
        f"/api/tracks/worker/W1?from={TS - 3_000_000}&to={TS - 2_880_000}")
    assert [p[0] for p in res.json["points"]] == [TS - 3_000_000, TS - 2_940_000, TS - 2_880_000]
    commander = client_for(app, r, "commander")
    for path, status, code in [
        ("/api/tracks/camera/C1", 400, "bad_kind"),
        (f"/api/tracks/worker/W1?from={TS}&to={TS - 1}", 400, "bad_span"),
        (f"/api/tracks/worker/W1?from=0&to={MAX_SPAN_MS + 1}", 400, "span_too_long"),
        ("/api/tracks/worker/W1?from=yesterday", 400, "bad_time"),
        ("/api/tracks/worker/W1?to=-5", 400, "bad_time"),
        ("/api/tracks/worker/" + "x" * 65, 400, "bad_id"),
        ("/api/tracks/worker/nobody", 404, "unknown_unit"),
        ("/api/tracks/resource/W1", 404, "unknown_unit"),
    ]:
        res = commander.get(path)
        assert (res.status_code, res.is_json, res.json["code"]) == (status, True, code), path
    # a town's officer: its own units only
    officer = client_for(app, r, "duty_officer", scope=town_a)
    assert officer.get("/api/tracks/worker/W1").status_code == 200
    res = officer.get("/api/tracks/resource/R1")  # as if unknown: ids do not leak
    assert res.status_code == 404 and res.json["code"] == "unknown_unit"
    assert "points" not in res.json
    other = client_for(app, r, "commander", scope=town_b)
    assert other.get("/api/tracks/resource/R1").json["points"][0][0] == TS - 60_000
    assert other.get("/api/tracks/worker/W1").status_code == 404


def test_trk008_create_app_serves_the_route(redis_url: str, r: redis.Redis) -> None:
    from app import create_app

    app = create_app(dataclasses.replace(Settings(), redis_url=redis_url))
    put(Store(r), "worker", "W1", LON0, LAT0, ts=TS)
    res = client_for(app.server, r, "commander").get("/api/tracks/worker/W1")
    assert res.status_code == 200 and res.json["points"] == []
