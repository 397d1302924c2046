"""Where ingest's time goes: the same message mix as `bench.ingest_throughput`, fed straight
into `Ingest.submit`/`drain` in this process (no pub/sub), so the Python CPU per message and
the server's CPU per message (Lua) can be read apart.

    python -m bench.ingest_profile [--messages N] [--batch N] [--cprofile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import threading
import time
from pathlib import Path

import redis

from bench.ingest_throughput import make_messages
from dashboard.config import Settings
from dashboard.store import Store
from feeds.ingest import BATCH_MAX, Ingest
from feeds.redis_server import EmbeddedRedis


def _server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run(n: int, batch: int, profile: bool) -> dict[str, float]:
    messages = [(ch.encode(), data.encode()) for ch, data in make_messages(n)]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persist=False) as server:
        client = redis.Redis.from_url(server.url)
        ingest = Ingest(Settings.from_env(), server.url)
        ingest.city.locate(*ingest.city.centroid)
        ingest.store = Store(client, ingest.prefix, ingest.settings.log_maxlen,
                             ingest.settings.deadletter_max)
        ui = client.pubsub()
        ui.subscribe(f"{ingest.prefix}ui")  # someone listens, as the relay does
        stop = threading.Event()

        def read_ui() -> None:  # keep the subscriber's buffer drained, like the relay
            while not stop.is_set():
                ui.get_message(timeout=0.1)

        reader = threading.Thread(target=read_ui, daemon=True)
        reader.start()
        profiler = cProfile.Profile() if profile else None
        cpu0, srv0, wall0 = time.process_time(), _server_cpu(client), time.perf_counter()
        if profiler:
            profiler.enable()
        for i in range(0, n, batch):
            ingest.submit(messages[i:i + batch])
            ingest.drain(keep=1)
        ingest.drain()
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - wall0
        cpu, srv = time.process_time() - cpu0, _server_cpu(client) - srv0
        stop.set()
        reader.join()
        assert int(client.get("cc:seq") or 0) == n, "every message should be applied"
        ingest.store.close_apply()
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return {"messages": n, "batch": batch, "per_s": n / wall,
            "python_us_per_msg": cpu / n * 1e6, "server_us_per_msg": srv / n * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=BATCH_MAX)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.messages, args.batch, args.cprofile), indent=1))


if __name__ == "__main__":
    main()
