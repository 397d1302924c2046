"""The watch service's cost: following the change log, and one deadline tick.

    python -m bench.watch [--entries 100000] [--events 2000]

On an embedded Valkey (no other load):

- log: `--entries` log entries shaped like the simulator's (mostly worker moves, some status
  changes, a few events, a few level I/II) read by `Watch.process` until caught up. Baseline
  in the same run: only reading the same log in the same blocks (`Store.log_since`), so the
  ratio is what the watch adds to reading.
- tick: `--events` open events, no tasks; the first tick raises the due cards, then steady
  ticks (everything already raised). Baseline: reading the open set and the events
  (SMEMBERS + HMGET), which any tick must do.

Results: bench/results/watch.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from dashboard.config import Settings
from dashboard.store import Store
from feeds.redis_server import EmbeddedRedis
from feeds.watch import BLOCK, Watch

OUT = Path(__file__).parent / "results" / "watch.json"
TS = 1_795_312_800_000


def fill_log(r: redis.Redis, entries: int) -> None:
    """Entries as ingest writes them: XADD `{seq}-0` with k/o/d, and `Pseq`."""
    pipe = r.pipeline(transaction=False)
    for seq in range(1, entries + 1):
        roll = seq % 100
        if roll == 0:
            kind, op = "event", "upsert"
            data = {"id": f"E{seq}", "type": "fire", "severity": 1 + (seq // 100) % 4,
                    "lon": 119.9, "lat": 36.7, "ts": TS + seq, "status": "reported",
                    "title": "测试事件"}
        else:
            kind, op = "worker", "move" if roll > 4 else "upsert"
            data = {"id": f"W{seq % 2140}", "name": "李强", "lon": 119.9 + roll * 1e-4,
                    "lat": 36.7, "ts": TS + seq, "status": "busy" if roll == 1 else "on_duty",
                    "grid_id": "370283001001", "battery": 80}
        pipe.xadd("cc:log", {"k": kind, "o": op, "d": json.dumps(data, ensure_ascii=False)},
                  id=f"{seq}-0")
        if seq % 5000 == 0:
            pipe.execute()
    pipe.set("cc:seq", entries)
    pipe.execute()


def bench_log(r: redis.Redis, url: str, settings: Settings, entries: int) -> dict[str, Any]:
    fill_log(r, entries)
    store = Store(r)
    t0 = time.perf_counter()
    cursor = 0
    while batch := store.log_since(cursor, BLOCK):
        cursor = batch[-1][0]
    baseline = time.perf_counter() - t0
    watch = Watch(settings, url, clock=lambda: TS)
    watch.attach(r)
    t0 = time.perf_counter()
    while watch.process():
        pass
    took = time.perf_counter() - t0
    return {"entries": entries, "baseline_read_s": round(baseline, 3),
            "watch_s": round(took, 3), "watch_per_s": round(entries / took),
            "ratio": round(took / baseline, 2), "alerts": watch.counters["alerts"]}


def bench_tick(r: redis.Redis, url: str, settings: Settings, events: int) -> dict[str, Any]:
    r.flushall()
    pipe = r.pipeline(transaction=False)
    for i in range(events):
        event = {"id": f"E{i}", "type": "dispute", "severity": 4, "lon": 119.9, "lat": 36.7,
                 "ts": TS, "first_ts": TS, "status": "reported", "category": "grid_governance",
                 "title": "矛盾纠纷"}
        pipe.hset("cc:state:event", event["id"], json.dumps(event, ensure_ascii=False))
        pipe.hset("cc:meta:event", event["id"], f"1|{TS}|reported")
        pipe.sadd("cc:events:open", event["id"])
    pipe.execute()
    baseline = []
    for _ in range(10):
        t0 = time.perf_counter()
        ids = sorted(r.smembers("cc:events:open"))
        for start in range(0, len(ids), BLOCK):
            r.hmget("cc:state:event", ids[start:start + BLOCK])
        baseline.append(time.perf_counter() - t0)
    watch = Watch(settings, url, clock=lambda: TS + 7 * 86_400_000)  # a week on: all due
    watch.attach(r)
    t0 = time.perf_counter()
    raised = watch.tick()
    first = time.perf_counter() - t0
    steady = []
    for _ in range(10):
        t0 = time.perf_counter()
        assert watch.tick() == 0
        steady.append(time.perf_counter() - t0)
    base_ms, steady_ms = statistics.median(baseline) * 1000, statistics.median(steady) * 1000
    return {"events": events, "raised": raised, "first_tick_ms": round(first * 1000, 1),
            "steady_tick_ms": round(steady_ms, 1), "baseline_read_ms": round(base_ms, 1),
            "steady_ratio": round(steady_ms / base_ms, 2)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.watch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), persist=False).start()
        try:
            r = redis.Redis.from_url(server.url, decode_responses=True)
            settings = dataclasses.replace(Settings(), redis_url=server.url)
            result = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                "python": platform.python_version(),
                "log": bench_log(r, server.url, settings, args.entries),
                "tick": bench_tick(r, server.url, settings, args.events),
            }
            r.close()
        finally:
            server.stop()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
