"""A wall's snapshot: bytes and build time for Pingdu and for a Bao'an-sized city.

The city is filled through the real path: the simulator's world and messages (Pingdu's map;
the Bao'an-sized run asks for 4,866 workers — one per grid, as Bao'an's 4,866 grids have —
and 42,000 cameras; the simulator places at most 2,719 workers on Pingdu's grids, so the
cameras, which are most of the bytes, carry the difference) handed to an in-process ingest on a fresh embedded Valkey, until every
unit is stored. Then, each the median of `--reps`:

- read: `Store.snapshot_parts` (one Lua call, raw records);
- frame: `feeds.fanout.snapshot_frame`, city-wide and cut to one town;
- baseline in the same run: the naive frame (every record parsed and the whole snapshot
  dumped as one JSON object), which the splicing of raw records avoids;
- deflate: what permessage-deflate would send (zlib level 6) and its time, per wall.

The relay reads and encodes once per snapshot for all walls that ask together
(feeds/relay.py), so a reconnect storm of N walls costs about one read + one frame, not N.

    python -m bench.snapshot [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import redis

from bench.latency import OUT, load
from dashboard.city import load_city
from dashboard.config import Settings
from dashboard.store import Store
from feeds.fanout import snapshot_frame
from feeds.ingest import Ingest
from feeds.redis_server import EmbeddedRedis
from feeds.sim.engine import Simulator

CITIES = (("Pingdu", 2140, 3000), ("Bao'an-sized", 4866, 42_000))
TOWN = "370283001"  # one town of Pingdu, for the scoped cut


def _fill(url: str, workers: int, cameras: int) -> Store:
    settings = Settings()
    ingest = Ingest(settings, url)
    ingest.store = Store(redis.Redis.from_url(url), "cc:")
    sim = Simulator(load_city(), workers=workers, cameras=cameras, settings=settings,
                    video_base="http://127.0.0.1:8060")
    r = redis.Redis.from_url(url)
    pending = sim.warm_up()
    start = t = sim.s
    while True:
        for i in range(0, len(pending), 2000):
            ingest.handle(pending[i:i + 2000])
        if (r.hlen("cc:state:worker") >= len(sim.world.workers)
                and r.hlen("cc:state:camera") >= len(sim.world.cameras)):
            break
        t += 60.0
        if t - start > 3600:
            raise RuntimeError("the simulator did not report every unit in an hour")
        pending = sim.advance(t)
    ingest.store.close_apply()
    return Store(r, "cc:")


def _median_ms(fn: Any, reps: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1), out


def _naive(parts: dict[str, Any]) -> bytes:
    body = {name: [json.loads(x) for x in parts[name]]
            for name in ("events", "workers", "resources", "cameras", "tasks", "alerts")}
    return json.dumps({"type": "snapshot", "seq": parts["seq"], **body},
                      ensure_ascii=False).encode()


def run(reps: int) -> dict[str, Any]:
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "load_before": load(),
                              "cities": []}
    for name, workers, cameras in CITIES:
        with tempfile.TemporaryDirectory() as tmp, \
                EmbeddedRedis(Path(tmp), persist=False) as server:
            store = _fill(server.url, workers, cameras)
            read_ms, parts = _median_ms(store.snapshot_parts, reps)
            frame_ms, frame = _median_ms(lambda p=parts: snapshot_frame(p, None, None, {}, 0),
                                         reps)
            town_ms, town = _median_ms(lambda p=parts: snapshot_frame(p, TOWN, None, {}, 0),
                                       reps)
            naive_ms, naive = _median_ms(lambda p=parts: _naive(p), reps)
            deflate_ms, deflated = _median_ms(lambda f=frame: zlib.compress(f, 6), reps)
            row = {"city": name, "workers": len(parts["workers"]),
                   "resources": len(parts["resources"]), "cameras": len(parts["cameras"]),
                   "events": len(parts["events"]), "bytes": len(frame),
                   "deflated_bytes": len(deflated), "town_bytes": len(town),
                   "read_ms": read_ms, "frame_ms": frame_ms, "town_frame_ms": town_ms,
                   "naive_frame_ms": naive_ms, "naive_bytes": len(naive),
                   "naive_over_frame": round(naive_ms / frame_ms, 2) if frame_ms else None,
                   "deflate_ms_per_wall": deflate_ms}
            print(json.dumps(row, ensure_ascii=False), flush=True)
            result["cities"].append(row)
    result["load_after"] = load()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "snapshot.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return result


def summary(result: dict[str, Any]) -> str:
    lines = ["snapshot: city  bytes (deflated)  read / frame / town / naive ms  deflate ms"]
    for c in result["cities"]:
        lines.append(f"  {c['city']:>13}  {c['bytes'] / 1e6:.2f} MB "
                     f"({c['deflated_bytes'] / 1e6:.2f})"
                     f"  {c['read_ms']} / {c['frame_ms']} / {c['town_frame_ms']} / "
                     f"{c['naive_frame_ms']}  {c['deflate_ms_per_wall']}")
    lines.append(f"  load {result['load_before']['loadavg']} → {result['load_after']['loadavg']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.snapshot",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    result = run(parser.parse_args(argv).reps)
    print(summary(result))
    return result


if __name__ == "__main__":
    main()
