"""Cockpit figures over a million archived events (issue 5).

    python -m bench.cockpit [--events 1000000] [--reps 5]

On an embedded Valkey: `--events` archived events spread over the last 12 months, written
as the archive's columns directly (with ids and compressed JSON chunks shaped like the
archiver's, so the memory is real), plus a live day of events through the apply script.
Then, in the same run:

- figures without cache: `Figures.figures` for the city and for one town, a fresh reader
  each time (nothing memoised), median of `--reps`;
- with cache: `GET /api/stats` through the Flask app (session check included), median of
  200 hits;
- baseline: the naive path — the same events as JSON records in a hash, HVALS + json.loads
  of each into a DataFrame + the same counts — on a 100,000 subset, scaled to `--events`;
- the real archiver moving 20,000 closed live events (events/s);
- `MEMORY USAGE` of the archive per million events (columns, ids, JSON), and of the naive
  hash for comparison.

Results: bench/results/cockpit.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import redis

from dashboard.archive.events import COLUMNS, Archive, Codes, compress_chunk
from dashboard.archive.stats import Figures
from dashboard.city import load_city
from dashboard.config import Settings
from dashboard.models import EVENT_TYPES, SOURCES
from dashboard.store import Change, Store, day_of
from feeds.redis_server import EmbeddedRedis

OUT = Path(__file__).parent / "results" / "cockpit.json"
CHUNK = 1000  # rows per JSON chunk, as one archive batch
NAIVE_N = 100_000
REAL_ARCHIVE_N = 20_000


def _record(i: int, report: int, typ: str, src: str, grid: str, comm: str, town: str,
            sev: int, status: str, times: list[int]) -> dict[str, Any]:
    """A record shaped like the archiver's JSON line: event, task, timeline."""
    eid = f"E{report // 1000}-{i:07d}"
    event = {"id": eid, "type": typ, "severity": sev, "lon": 119.95 + (i % 997) * 1e-4,
             "lat": 36.78 + (i % 991) * 1e-4, "ts": report, "received": report + 40,
             "title": "群众反映路面积水", "description": "现场有积水约20厘米，影响通行",
             "address": "平度市凤台街道海口路12号", "source": src, "grid_id": grid,
             "community_id": comm, "town_id": town, "category": EVENT_TYPES.get(typ, "other"),
             "status": status, "first_ts": report, "status_ts": times[4] or report}
    task = None
    if times[1]:
        task = {"id": f"T{i:08d}", "event_id": eid, "plan_id": None,
                "assignees": [{"id": f"W{i % 2140:04d}", "kind": "worker", "eta_s": 240,
                               "stage": "closed"}], "stage": "closed", "by": "zhihui",
                "ts": times[1], "note": "",
                "history": [{"ts": times[1], "stage": "dispatched", "by": "zhihui", "note": ""},
                            {"ts": times[2], "stage": "arrived", "by": "W", "note": ""},
                            {"ts": times[3], "stage": "handled", "by": "W", "note": ""},
                            {"ts": times[4], "stage": "closed", "by": "zhiban", "note": ""}]}
    timeline = [{"ts": report, "status": "reported"}]
    if times[1]:
        timeline += [{"ts": times[1], "status": "dispatched"},
                     {"ts": times[3], "status": "handled"}]
    timeline.append({"ts": times[4], "status": status})
    return {"event": event, "task": task, "tasks": [task] if task else [],
            "timeline": timeline}


def generate(r: redis.Redis, store: Store, settings: Settings, n: int, now_ms: int,
             seed: int = 7) -> dict[str, Any]:
    """`n` archived events over the last 365 days, written as columns; returns a sample of
    their JSON records for the naive baseline."""
    rng = np.random.default_rng(seed)
    city = load_city()
    codes = Codes(store, r)
    grids = city.grids
    g_idx = rng.integers(0, len(grids), n)
    grid_codes = np.asarray([codes.code("grid", g.code) for g in grids], dtype=np.uint16)
    comm_codes = np.asarray([codes.code("community", g.parent or "") for g in grids],
                            dtype=np.uint16)
    town_codes = np.asarray([codes.code("town", (g.parent or "")[:9]) for g in grids],
                            dtype=np.uint16)
    types = list(EVENT_TYPES)
    t_idx = rng.integers(0, len(types), n)
    type_codes = np.asarray([codes.code("type", t) for t in types], dtype=np.uint8)
    cat_codes = np.asarray([codes.code("cat", EVENT_TYPES[t]) for t in types], dtype=np.uint8)
    s_idx = rng.integers(0, len(SOURCES), n)
    src_codes = np.asarray([codes.code("src", s) for s in SOURCES], dtype=np.uint8)
    closed, cancelled = codes.code("status", "closed"), codes.code("status", "cancelled")
    now_s = now_ms // 1000
    report = np.sort(rng.integers(now_s - 365 * 86400, now_s - 2 * 86400, n)).astype(np.uint32)
    is_cancel = rng.random(n) < 0.05
    dispatch = report + rng.exponential(600, n).astype(np.uint32) + 20
    arrive = dispatch + rng.exponential(900, n).astype(np.uint32) + 60
    handle = arrive + rng.exponential(7200, n).astype(np.uint32) + 60
    close = handle + rng.exponential(20000, n).astype(np.uint32) + 60
    for col in (dispatch, arrive, handle):
        col[is_cancel] = 0
    close[is_cancel] = report[is_cancel] + 1800
    cols: dict[str, np.ndarray] = {
        "report": report, "dispatch": dispatch, "arrive": arrive, "handle": handle,
        "close": close, "sev": rng.choice([1, 2, 3, 4], n, p=[0.01, 0.04, 0.15, 0.8]),
        "cat": cat_codes[t_idx], "src": src_codes[s_idx], "type": type_codes[t_idx],
        "status": np.where(is_cancel, cancelled, closed), "flags": rng.choice(
            [0, 1, 3, 7], n, p=[0.8, 0.1, 0.06, 0.04]),
        "town": town_codes[g_idx], "community": comm_codes[g_idx], "grid": grid_codes[g_idx],
    }
    months = pd.to_datetime(report, unit="s", utc=True).tz_convert(settings.timezone) \
        .strftime("%Y-%m").to_numpy()
    sample: list[bytes] = []
    key = store.key
    pipe = r.pipeline(transaction=False)
    for month in sorted(set(months.tolist())):
        sel = np.flatnonzero(months == month)
        m = len(sel)
        chunk = (np.arange(m) // CHUNK + 1).astype(np.uint32)
        for name, dtype in COLUMNS:
            data = chunk if name == "chunk" else cols[name][sel]
            pipe.set(key(f"archive:{month}:{name}"), np.asarray(data).astype(dtype).tobytes())
        ids = [f"E{int(report[i])}-{i:07d}" for i in sel]
        pipe.set(key(f"archive:{month}:id"), "\n".join(ids) + "\n")
        for c in range(0, m, CHUNK):
            lines = []
            for j in sel[c:c + CHUNK]:
                times = [int(cols[k][j]) * 1000 for k in ("report", "dispatch", "arrive",
                                                          "handle", "close")]
                rec = orjson.dumps(_record(
                    int(j), times[0], types[t_idx[j]], SOURCES[s_idx[j]], grids[g_idx[j]].code,
                    grids[g_idx[j]].parent or "", (grids[g_idx[j]].parent or "")[:9],
                    int(cols["sev"][j]), "cancelled" if is_cancel[j] else "closed", times))
                lines.append(rec)
                if len(sample) < NAIVE_N and j % max(1, n // NAIVE_N) == 0:
                    sample.append(orjson.dumps(rec and orjson.loads(rec)["event"]))
            pipe.hset(key(f"archive:{month}:json"), c // CHUNK + 1, compress_chunk(lines))
        pipe.hset(key(f"archive:{month}:meta"), mapping={"rows": m, "chunks": -(-m // CHUNK)})
        pipe.sadd(key("archive:months"), month)
        pipe.execute()
    # At a city's everyday rate a batch is small: what a chunk of k records costs an event
    lines = [orjson.dumps(_record(i, now_ms - i * 60_000, types[i % len(types)],
                                  SOURCES[i % len(SOURCES)], grids[i].code,
                                  grids[i].parent or "", (grids[i].parent or "")[:9], 4,
                                  "closed", [now_ms - i * 60_000 + k * 600_000
                                             for k in range(5)])) for i in range(2000)]
    per_event = {}
    for k in (1, 7, 40, 1000):
        size = sum(len(compress_chunk(lines[j:j + k])) for j in range(0, 2000, k))
        plain = sum(len(zlib.compress(b"\n".join(lines[j:j + k]), 6))
                    for j in range(0, 2000, k))
        per_event[k] = {"dict": round(size / 2000), "plain_zlib": round(plain / 2000)}
    return {"sample": sample, "chunk_bytes_per_event": per_event,
            "raw_bytes_per_event": round(sum(map(len, lines)) / len(lines))}


def live_day(store: Store, now_ms: int, n: int, closed_ago_s: int = 0) -> None:
    """`n` events of today through the apply script (reported, some closed)."""
    city = load_city()
    changes = []
    for i in range(n):
        g = city.grids[i % len(city.grids)]
        ts = now_ms - (closed_ago_s * 1000) - (i % 36000) * 1000 - 1000
        status = "closed" if closed_ago_s or i % 3 == 0 else "reported"
        rec = {"id": f"L{closed_ago_s}-{i}", "type": "garbage", "severity": 4, "lon": g.centroid[0],
               "lat": g.centroid[1], "ts": ts, "source": "app", "grid_id": g.code,
               "community_id": g.parent, "town_id": (g.parent or "")[:9],
               "category": "grid_governance", "status": status, "first_ts": ts}
        changes.append(Change("event", rec["id"], ts, "0", json.dumps(rec), status,
                              rec["lon"], rec["lat"], "4", "grid_governance", "app",
                              day_of(ts)))
    for k in range(0, len(changes), 1000):
        store.apply(changes[k:k + 1000])


def memory(r: redis.Redis, pattern: str) -> tuple[int, dict[str, int]]:
    total, parts = 0, {"columns": 0, "id": 0, "json": 0, "other": 0}
    for k in r.scan_iter(match=pattern, count=1000):
        size = int(r.memory_usage(k, samples=0) or 0)
        total += size
        name = k.decode().rsplit(":", 1)[-1]
        part = ("json" if name == "json" else "id" if name == "id" else
                "columns" if name in dict(COLUMNS) else "other")
        parts[part] += size
    return total, parts


def naive(r: redis.Redis, sample: list[bytes]) -> dict[str, float]:
    """HVALS + json.loads of each record into a DataFrame + the same kinds of counts."""
    key = "naive:state:event"
    pipe = r.pipeline(transaction=False)
    for i, rec in enumerate(sample):
        pipe.hset(key, str(i), rec)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    t0 = time.perf_counter()
    rows = [json.loads(x) for x in r.hvals(key)]
    df = pd.DataFrame(rows)
    df["day"] = pd.to_datetime(df["ts"], unit="ms", utc=True).dt.tz_convert("Asia/Shanghai") \
        .dt.date
    df.groupby("category").size()
    df.groupby("source").size()
    df.groupby("town_id").size()
    df.groupby("day").size()
    (df["status"] == "closed").mean()
    seconds = time.perf_counter() - t0
    mem = int(r.memory_usage(key, samples=0) or 0)
    r.delete(key)
    return {"seconds": seconds, "rows": len(rows), "memory_bytes": mem}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.cockpit",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="cockpit-")), persist=False).start()
    try:
        return run(server.url, args.events, args.reps)
    finally:
        server.stop()


def run(url: str, events: int, reps: int) -> dict[str, Any]:
    settings = dataclasses.replace(Settings(), redis_url=url)
    r = redis.Redis.from_url(url)
    text = redis.Redis.from_url(url, decode_responses=True)
    store = Store(text, settings.prefix)
    now = int(time.time() * 1000)
    t0 = time.perf_counter()
    gen = generate(r, store, settings, events, now)
    gen_s = time.perf_counter() - t0
    print(f"generated {events} archived events in {gen_s:.1f}s", flush=True)
    live_day(store, now, 3000)
    arch_total, arch_parts = memory(r, f"{settings.prefix}archive:*")
    city = load_city()
    town = city.towns[0].code

    def uncached(scope: str | None) -> tuple[float, dict[str, Any]]:
        fig = Figures(store, city, settings)  # a fresh reader: nothing memoised
        t = time.perf_counter()
        out = fig.figures(scope, now)
        return time.perf_counter() - t, out

    city_s, town_s = [], []
    fig: dict[str, Any] = {}
    for _ in range(reps):
        s, fig = uncached(None)
        city_s.append(s)
        town_s.append(uncached(town)[0])
    # the app's case: one reader kept, new data arrived (the version moved) → a full re-read
    warm_reader = Figures(store, city, settings)
    warm_reader.figures(None, now)
    warm_s = []
    for _ in range(reps):
        text.incr(f"{settings.prefix}stats:ver")
        t = time.perf_counter()
        warm_reader.figures(None, now)
        warm_s.append(time.perf_counter() - t)
    print(f"uncached city {statistics.median(city_s) * 1000:.0f} ms, "
          f"town {statistics.median(town_s) * 1000:.0f} ms", flush=True)
    assert fig["periods"]["year"]["count"] + fig["periods"]["year"]["prev"] > 0

    from app import create_app
    from tests.auth_util import make_user  # the same sign-in the tests use

    application = create_app(settings)
    client = application.server.test_client()
    user, password = make_user(text, "leader", "bench-leader", settings.prefix)
    assert client.post("/api/login", json={"username": user, "password": password}).status_code \
        == 200
    first = client.get("/api/stats")
    assert first.status_code == 200
    hits = []
    for _ in range(200):
        t = time.perf_counter()
        res = client.get("/api/stats")
        hits.append(time.perf_counter() - t)
        assert res.status_code == 200
    hit_header = res.headers.get("X-Cache")
    hits.sort()
    print(f"cached p50 {statistics.median(hits) * 1000:.1f} ms "
          f"p99 {hits[int(len(hits) * 0.99) - 1] * 1000:.1f} ms ({hit_header})", flush=True)

    base = naive(text, gen["sample"])
    base_scaled = base["seconds"] * events / max(1, base["rows"])
    print(f"naive {base['rows']} records {base['seconds']:.2f}s → scaled {base_scaled:.1f}s",
          flush=True)

    # the real archiver: 20,000 events closed two days ago, moved in batches of 1000
    live_day(store, now, REAL_ARCHIVE_N, closed_ago_s=2 * 86400)
    archive = Archive(store, settings)
    t = time.perf_counter()
    moved = 0
    while (got := archive.run(now, 1000)):
        moved += got
    arch_s = time.perf_counter() - t
    print(f"archived {moved} live events in {arch_s:.2f}s", flush=True)

    per_m = 1_000_000 / events
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpu, "
                   f"Python {platform.python_version()}",
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "events": events,
        "uncached_city_ms": {"median": round(statistics.median(city_s) * 1000, 1),
                             "min": round(min(city_s) * 1000, 1),
                             "max": round(max(city_s) * 1000, 1)},
        "uncached_town_ms": {"median": round(statistics.median(town_s) * 1000, 1)},
        "uncached_city_kept_reader_ms": {"median": round(statistics.median(warm_s) * 1000, 1),
                                         "max": round(max(warm_s) * 1000, 1)},
        "response_bytes": len(first.get_data()),
        "cached_ms": {"p50": round(statistics.median(hits) * 1000, 2),
                      "p99": round(hits[int(len(hits) * 0.99) - 1] * 1000, 2),
                      "max": round(hits[-1] * 1000, 2)},
        "naive_baseline": {"rows": base["rows"], "seconds": round(base["seconds"], 3),
                           "scaled_seconds": round(base_scaled, 2),
                           "ratio_vs_uncached": round(base_scaled / statistics.median(city_s),
                                                      1),
                           "hash_mb_per_million": round(base["memory_bytes"] * 1_000_000
                                                        / max(1, base["rows"]) / 2**20, 1)},
        "archive_mb_per_million": {
            "total": round(arch_total * per_m / 2**20, 1),
            **{k: round(v * per_m / 2**20, 1) for k, v in arch_parts.items()}},
        "real_archiver": {"events": moved, "seconds": round(arch_s, 2),
                          "per_s": round(moved / arch_s) if arch_s else None},
        "json_bytes_per_event_by_chunk_size": gen["chunk_bytes_per_event"],
        "json_raw_bytes_per_event": gen["raw_bytes_per_event"],
        "generate_seconds": round(gen_s, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


def summary(result: dict[str, Any]) -> str:
    return ("cockpit " + json.dumps({k: result[k] for k in (
        "events", "uncached_city_ms", "cached_ms", "naive_baseline",
        "archive_mb_per_million")}, ensure_ascii=False))


if __name__ == "__main__":
    print(json.dumps(main(), indent=1, ensure_ascii=False))
