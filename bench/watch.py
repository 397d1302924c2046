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
- feedback: the real ingest and watch running in threads; `--feedbacks` tasks, each sent an
  `accepted` on `cc:feedback`; time from PUBLISH until the wall's channel (`cc:ui`) carries
  the task at its new stage. Baseline in the same run: until `cc:ui` carries the feedback
  frame itself (ingest's part), so the difference is the watch and the Desk.

Results: bench/results/watch.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary, plan_from_dict
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.store import Store
from feeds.ingest import Ingest
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


ONE_WORKER_PLAN = {
    "id": "P-BENCH-ONE", "name": {"zh-CN": "基准预案", "en": "Bench plan"}, "level": 3,
    "applies_to": {"types": ["fire"], "severities": [1, 2, 3, 4]},
    "steps": [{"order": 1, "role": "commander", "action": {"zh-CN": "调度", "en": "Send"},
               "limit_min": 5}],
    "resources": [{"kind": "worker", "count": 1, "max_eta_s": 3600}],
}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def bench_feedback(r: redis.Redis, url: str, settings: Settings, n: int) -> dict[str, Any]:
    r.flushall()
    stop = threading.Event()
    now = int(time.time() * 1000)
    ingest, watch = Ingest(settings, url), Watch(settings, url)
    threads = [threading.Thread(target=ingest.run, args=(stop,), daemon=True),
               threading.Thread(target=watch.run, args=(stop,), daemon=True)]
    for thread in threads:
        thread.start()
    try:
        while not r.exists("cc:watch:hb") or not r.pubsub_numsub("cc:feedback")[0][1]:
            time.sleep(0.02)
        for i in range(n):  # events 2 km apart, each with its own worker 50 m away
            lon = 119.5 + (i % 30) * 0.025
            lat = 36.5 + (i // 30) * 0.02
            r.publish("cc:event", json.dumps({"id": f"E{i}", "type": "fire", "severity": 3,
                                              "lon": lon, "lat": lat, "ts": now}))
            r.publish("cc:worker", json.dumps({"id": f"W{i}", "lon": lon + 0.0005, "lat": lat,
                                               "ts": now, "status": "on_duty"}))
        while int(r.get("cc:seq") or 0) < 2 * n:
            time.sleep(0.02)
        desk = Desk(Store(r), PlanLibrary([plan_from_dict(ONE_WORKER_PLAN)]),
                    Deadlines.load(), settings)
        tasks = [desk.dispatch(f"E{i}", by="bench", key=f"k{i}", assignees=None,
                               plan_id=None)[0] for i in range(n)]
        sub = r.pubsub(ignore_subscribe_messages=True)
        sub.subscribe("cc:ui")
        while not sub.subscribed:
            sub.get_message(timeout=0.05)
        ingest_s, total_s = [], []
        for task in tasks:
            actor = task["assignees"][0]["id"]
            t0 = time.perf_counter()
            r.publish("cc:feedback", json.dumps({
                "task_id": task["id"], "event_id": task["event_id"], "actor_id": actor,
                "stage": "accepted", "ts": int(time.time() * 1000)}))
            seen_feedback = None
            deadline = t0 + 10
            while True:
                # None also comes back for an ignored subscribe confirmation: keep waiting
                message = sub.get_message(timeout=1)
                if message is None:
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"no task frame for {task['id']}")
                    continue
                for frame in json.loads(message["data"]):
                    data = frame["data"]
                    if frame["kind"] == "feedback" and data.get("task_id") == task["id"]:
                        seen_feedback = time.perf_counter() - t0
                    if frame["kind"] == "task" and data.get("id") == task["id"] and \
                            data.get("stage") == "accepted":
                        total_s.append(time.perf_counter() - t0)
                if len(total_s) > len(ingest_s) and seen_feedback is not None:
                    ingest_s.append(seen_feedback)
                    break
        sub.close()
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    watch_part = [t - i for t, i in zip(total_s, ingest_s, strict=True)]
    return {"feedbacks": n,
            "to_task_frame_ms": {"p50": _pct(total_s, 0.5), "p99": _pct(total_s, 0.99)},
            "baseline_to_feedback_frame_ms": {"p50": _pct(ingest_s, 0.5),
                                              "p99": _pct(ingest_s, 0.99)},
            "watch_and_desk_ms": {"p50": _pct(watch_part, 0.5), "p99": _pct(watch_part, 0.99)},
            "errors": watch.counters["errors"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.watch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--feedbacks", type=int, default=200)
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
                "feedback": bench_feedback(r, server.url, settings, args.feedbacks),
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
