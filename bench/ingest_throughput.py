"""Ingest throughput: valid messages/s through one `python -m feeds.ingest` process.

Baseline in the same run: the same server's raw PUBLISH rate from one Python connection
(pipelined like the load generator). Messages are a realistic mix — mostly worker moves,
then resources, cameras and events — all valid, all for Pingdu.

    python -m bench.ingest_throughput [--messages N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from dashboard.city import load_city
from feeds.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
TS0 = int(time.time() * 1000)


def make_messages(n: int, seed: int = 1) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    city = load_city()
    grids = city.grids
    out: list[tuple[str, str]] = []
    for i in range(n):
        grid = grids[rng.randrange(len(grids))]
        lon, lat = grid.centroid
        lon += rng.uniform(-0.002, 0.002)
        lat += rng.uniform(-0.002, 0.002)
        roll = rng.random()
        if roll < 0.80:
            msg = {"id": f"w{rng.randrange(2140):04d}", "lon": lon, "lat": lat, "ts": TS0 + i,
                   "status": "on_duty", "speed": 1.2, "heading": 90, "battery": 80}
            kind = "worker"
        elif roll < 0.90:
            msg = {"id": f"r{rng.randrange(300):03d}", "kind": "patrol_car", "lon": lon,
                   "lat": lat, "ts": TS0 + i, "status": "available", "name": "巡逻车"}
            kind = "resource"
        elif roll < 0.95:
            msg = {"id": f"3702830000132{rng.randrange(3000):07d}", "lon": lon, "lat": lat,
                   "name": "路口球机", "online": True, "stream_type": "mjpeg",
                   "ts": TS0 + i}  # a re-report in the same ms would be a duplicate
            kind = "camera"
        else:
            msg = {"id": f"ev{i}", "type": "illegal_parking", "severity": 4, "lon": lon,
                   "lat": lat, "ts": TS0 + i, "title": "违章停车", "source": "video_ai",
                   "address": "平度市人民路88号"}
            kind = "event"
        out.append((f"cc:{kind}", json.dumps(msg, ensure_ascii=False)))
    return out


def publish_all(client: redis.Redis, messages: list[tuple[str, str]], batch: int = 1000) -> float:
    start = time.perf_counter()
    for i in range(0, len(messages), batch):
        pipe = client.pipeline(transaction=False)
        for channel, data in messages[i:i + batch]:
            pipe.publish(channel, data)
        pipe.execute()
    return time.perf_counter() - start


def run(n: int, cprofile: str = "") -> dict[str, float]:
    messages = make_messages(n)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persist=False) as server:
        client = redis.Redis.from_url(server.url)
        raw_s = publish_all(client, messages)  # nobody subscribed yet: the raw rate
        env = {**os.environ, "REDIS_URL": server.url, "PYTHONPATH": str(ROOT)}
        profile = ["-m", "cProfile", "-o", cprofile] if cprofile else []
        proc = subprocess.Popen([sys.executable, *profile, "-m", "feeds.ingest"], env=env,
                                cwd=ROOT)
        try:
            while dict(client.pubsub_numsub("cc:worker")).get(b"cc:worker", 0) < 1:
                time.sleep(0.05)
            time.sleep(1.0)  # let it load the city index before the clock starts
            start = time.perf_counter()
            publish_all(client, messages)
            deadline = time.monotonic() + 600
            while True:
                done = int(client.get("cc:seq") or 0) + int(client.get("cc:deadletter:count") or 0)
                if done >= n:
                    break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"ingest stalled at {done} of {n} messages")
                time.sleep(0.005)
            ingest_s = time.perf_counter() - start
            rejected = int(client.get("cc:deadletter:count") or 0)
            time.sleep(1.2)  # one more heartbeat, for the conflict count
            conflicts = int(client.hget("cc:ingest:hb", "conflicts") or 0)
        finally:
            proc.terminate()
            proc.wait(5)
    return {
        "messages": n,
        "raw_publish_per_s": n / raw_s,
        "ingest_per_s": n / ingest_s,
        "ratio": (n / ingest_s) / (n / raw_s),
        "rejected": rejected,
        "conflict_retries": conflicts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--cprofile", default="", metavar="PATH",
                        help="run ingest under cProfile and write its stats to PATH")
    args = parser.parse_args()
    result = run(args.messages, args.cprofile)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
