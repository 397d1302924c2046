"""Tracks: bytes per unit-day and the time to read a day back (issue 5,
dashboard/archive/tracks.py).

    python -m bench.tracks [--reps 21]

On an embedded Valkey, one local day of fixes every 5 s (17,280) for four units:

- a grid worker walking the whole 24 h (1.3 m/s: every fix moves ~6.5 m, so thinning keeps
  nearly all — the worst case the task names);
- a grid worker's ordinary day: an 8-hour patrol (walks of 10 min, stops of 5 min) and 16 h
  standing, with GPS jitter (σ 1.5 m) on every fix;
- a vehicle (ambulance) driving 30 km/h for half the day in 20-minute runs, parked between;
- a depot-like unit that never moves (jitter only).

Each day goes through the real `Thinner` and `Tracks.write` (a pipeline per 500 log entries,
as the watch flushes a block) and is measured with `MEMORY USAGE` while appended and after
the watch's daily compaction. Baseline in the same run:
the same 17,280 fixes as JSON objects in a Redis list (`{"ts":…,"lat":…,"lon":…}`, RPUSH),
and the kept fixes alone as JSON (so the format's share and the thinning's share show
separately). Reading: `Tracks.read` of the whole day (GET + decode + the API's list of
lists) against LRANGE + json.loads of the JSON list, median of `--reps`.

Results: bench/results/tracks.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis
from redis.client import NEVER_DECODE

from dashboard.archive.tracks import Fix, Thinner, Tracks, decode, midnight_ms
from feeds.redis_server import EmbeddedRedis

OUT = Path(__file__).parent / "results" / "tracks.json"
TZ = "Asia/Shanghai"
DAY = "2026-11-22"
EVERY_MS = 5_000
N = 86_400_000 // EVERY_MS  # 17,280 fixes a day
BLOCK = 500
LAT0, LON0 = 36.78, 119.95
M_PER_DEG_LAT = 111_320.0


def _offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (lat + north_m / M_PER_DEG_LAT,
            lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat))))


def _route(moving: np.ndarray, speed_ms: float, rng: np.random.Generator,
           jitter_m: float) -> list[tuple[float, float]]:
    """Positions every 5 s: a random walk of headings while `moving[i]`, still otherwise,
    plus GPS jitter."""
    lat, lon = LAT0, LON0
    heading = rng.uniform(0, 2 * math.pi)
    out = []
    for i in range(N):
        if moving[i]:
            heading += rng.normal(0, 0.15)  # streets bend; a turn now and then
            if rng.random() < 0.01:
                heading += rng.choice([-1, 1]) * math.pi / 2
            step = speed_ms * EVERY_MS / 1000
            lat, lon = _offset(lat, lon, step * math.sin(heading), step * math.cos(heading))
        jl, jo = _offset(lat, lon, rng.normal(0, jitter_m), rng.normal(0, jitter_m)) \
            if jitter_m else (lat, lon)
        out.append((jl, jo))
    return out


def scenarios(rng: np.random.Generator) -> dict[str, tuple[str, list[tuple[float, float]]]]:
    idx = np.arange(N)
    minute = idx * EVERY_MS // 60_000
    walking_all = np.ones(N, dtype=bool)
    shift = (minute >= 8 * 60) & (minute < 16 * 60)
    patrol = shift & ((minute % 15) < 10)  # 10 min walking, 5 min standing
    driving = (minute % 40) < 20  # 20-minute runs, 20 minutes parked
    return {
        "worker walking 24 h": ("worker", _route(walking_all, 1.3, rng, 0.0)),
        "worker, 8 h patrol + 16 h standing, GPS jitter": (
            "worker", _route(patrol, 1.3, rng, 1.5)),
        "vehicle, driving half the day, GPS jitter": (
            "resource", _route(driving, 30 / 3.6, rng, 1.5)),
        "unit that never moves, GPS jitter": (
            "resource", _route(np.zeros(N, dtype=bool), 0.0, rng, 1.5)),
    }


def _mem(r: redis.Redis, key: str) -> int:
    return int(r.memory_usage(key, samples=0) or 0)


def _median_ms(fn: Any, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(reps: int = 21) -> dict[str, Any]:
    rng = np.random.default_rng(20261123)
    start = midnight_ms(DAY, TZ)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedRedis(Path(folder), persist=False).start()
        try:
            r = redis.Redis.from_url(server.url, decode_responses=True)
            tracks = Tracks(r, "bench:", TZ)
            for n, (name, (kind, route)) in enumerate(scenarios(rng).items()):
                unit = f"U{n}"
                fixes = [Fix(start + i * EVERY_MS, round(lat, 6), round(lon, 6))
                         for i, (lat, lon) in enumerate(route)]
                thinner = Thinner()
                kept: list[Fix] = []
                for b in range(0, N, BLOCK):  # one flush per block, as the watch does
                    block = [f for fix in fixes[b:b + BLOCK]
                             for f in thinner.offer(kind, unit, fix)]
                    tracks.write(kind, unit, block)
                    kept += block
                key = tracks.key(kind, unit, DAY)
                base_key, kept_key = f"bench:json:{unit}", f"bench:jsonkept:{unit}"
                for b in range(0, N, 5000):
                    r.rpush(base_key, *(json.dumps({"ts": f.ts, "lat": f.lat, "lon": f.lon})
                                        for f in fixes[b:b + 5000]))
                if kept:
                    r.rpush(kept_key, *(json.dumps({"ts": f.ts, "lat": f.lat, "lon": f.lon})
                                        for f in kept))
                stored, base, base_kept = _mem(r, key), _mem(r, base_key), _mem(r, kept_key)
                cursor = -1
                while cursor != 0:  # the watch's daily compaction of a finished day
                    cursor, _ = tracks.compact_step(DAY, max(cursor, 0))
                compacted = _mem(r, key)
                read_ms = _median_ms(
                    lambda k=kind, u=unit: tracks.read(k, u, start, start + 86_399_999), reps)
                base_read_ms = _median_ms(
                    lambda k=base_key: [json.loads(x) for x in r.lrange(k, 0, -1)], reps)
                decode_ms = _median_ms(lambda k=key: decode(
                    r.execute_command("GET", k, **{NEVER_DECODE: True}), DAY, TZ), reps)
                got = tracks.read(kind, unit, start, start + 86_399_999)
                assert got["total"] == len(kept), (got["total"], len(kept))
                rows.append({
                    "scenario": name, "fixes": N, "kept": len(kept),
                    "strlen": r.strlen(key), "memory_bytes_appending": stored,
                    "memory_bytes": compacted,
                    "baseline_json_list_bytes": base, "kept_as_json_list_bytes": base_kept,
                    "ratio_vs_baseline": round(base / compacted, 1) if compacted else None,
                    "get_decode_ms": round(decode_ms, 3), "read_day_ms": round(read_ms, 2),
                    "baseline_read_ms": round(base_read_ms, 2),
                    "read_speedup": round(base_read_ms / read_ms, 1) if read_ms else None,
                    "points_returned": len(got["points"]), "thinned": got["thinned"],
                })
            # every one of the 17,280 fixes stored (no thinning): the format's own read cost
            full = [Fix(start + i * EVERY_MS, LAT0 + i * 1e-6, LON0) for i in range(N)]
            tracks.write("worker", "FULL", full)
            key = tracks.key("worker", "FULL", DAY)
            unthinned = {
                "fixes": N, "memory_bytes": _mem(r, key),
                "get_decode_ms": round(_median_ms(lambda: decode(
                    r.execute_command("GET", key, **{NEVER_DECODE: True}), DAY, TZ), reps), 3),
                "read_day_ms": round(_median_ms(
                    lambda: tracks.read("worker", "FULL", start, start + 86_399_999), reps), 2),
            }
            r.close()
        finally:
            server.stop()
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, {platform.system()} "
                   f"{platform.release()}, Python {platform.python_version()}",
        "reps": reps, "rows": rows, "unthinned_day": unthinned,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return result


def table(result: dict[str, Any]) -> str:
    lines = ["| one local day, a fix every 5 s (17,280) | kept | while appended | compacted "
             "(MEMORY USAGE) | JSON list of all fixes | JSON list of kept fixes | ratio | "
             "GET + decode | read a day (API answer) | JSON read |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(
            f"| {row['scenario']} | {row['kept']:,} | {row['memory_bytes_appending']:,} B | "
            f"{row['memory_bytes']:,} B | "
            f"{row['baseline_json_list_bytes']:,} B | {row['kept_as_json_list_bytes']:,} B | "
            f"{row['ratio_vs_baseline']}× | {row['get_decode_ms']} ms | {row['read_day_ms']} ms | "
            f"{row['baseline_read_ms']} ms |")
    full = result["unthinned_day"]
    lines.append(f"\nAll {full['fixes']:,} fixes of a day stored (no thinning): "
                 f"{full['memory_bytes']:,} B, GET + decode {full['get_decode_ms']} ms, "
                 f"read (API answer) {full['read_day_ms']} ms.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=21)
    args = parser.parse_args()
    result = run(args.reps)
    print(f"{result['date']} · {result['machine']}")
    print(table(result))


if __name__ == "__main__":
    main()
