"""Ingest failover: messages lost and takeover time across a SIGKILL of the active ingest.

Real processes on loopback: one Valkey (AOF, as `make run`), `python -m feeds.ingest` twice,
and a paced publisher in this process sending new worker records (one unique id a message,
so every loss shows) at a steady rate. Midway the ingest holding `cc:ingest:lease` is killed
with SIGKILL. Baseline in the same run: the same drill with ONE ingest (what a single
subscriber loses: everything published until its restart). Also the standby's cost: CPU and
memory of the standby against the active over a steady stretch at each rate.

    python -m bench.failover [--rates 200,2000,20000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import redis

from feeds.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "failover.json"
_LOG = open(os.environ.get("CC_BENCH_LOG", os.devnull), "ab")  # noqa: SIM115 - the ingests' log


def _ingest(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "feeds.ingest"], env=env, cwd=ROOT,
                            stdout=_LOG, stderr=_LOG)


def _publisher(url: str, rate: int, seconds: float, tag: str, sent: list[int],
               stop: threading.Event) -> None:
    """`rate` new worker records a second, in 10 ms ticks, each with its own id."""
    client = redis.Redis.from_url(url)
    start, i = time.perf_counter(), 0
    while not stop.is_set():
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        if due > i:
            pipe = client.pipeline(transaction=False)
            ts = int(time.time() * 1000)
            for k in range(i, due):
                pipe.publish("cc:worker", json.dumps({
                    "id": f"{tag}-{k}", "lon": 119.9 + (k % 1000) * 1e-4,
                    "lat": 36.7 + (k // 1000 % 1000) * 1e-4, "ts": ts}))
            pipe.execute()
            i = due
        time.sleep(0.01)
    sent[0] = i
    client.close()


def _holder_pid(client: redis.Redis) -> int | None:
    lease = client.get("cc:ingest:lease")
    return int(lease.decode().split(":")[1]) if lease else None


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def drill(rate: int, seconds: float, standby: bool) -> dict[str, Any]:
    """One run: steady load, SIGKILL the active ingest midway, count what was stored."""
    with tempfile.TemporaryDirectory() as tmp, \
            EmbeddedRedis(Path(tmp), persist=True) as server:
        client = redis.Redis.from_url(server.url)
        procs = [_ingest(server.url) for _ in range(2 if standby else 1)]
        try:
            _wait(lambda: _holder_pid(client) is not None
                  and (not standby or client.exists("cc:ingest:standby")), 30)
            time.sleep(0.5)
            sent, stop = [0], threading.Event()
            tag = f"r{rate}"
            pub = threading.Thread(target=_publisher,
                                   args=(server.url, rate, seconds, tag, sent, stop))
            pub.start()
            time.sleep(seconds / 2)
            victim_pid = _holder_pid(client)
            victim = next(p for p in procs if p.pid == victim_pid)
            # what the active had applied at the kill
            killed_at = time.monotonic()
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(5)
            # A supervisor restarts it (feeds/supervisor.py's Child waits 0.5 s first): it comes
            # back as a standby, or with a single ingest as the one that applies.
            time.sleep(0.5)
            procs[procs.index(victim)] = _ingest(server.url)
            taken = _wait(lambda: (_holder_pid(client) or victim_pid) != victim_pid, 15)
            takeover_s = time.monotonic() - killed_at if taken else None
            pub.join()
            n = sent[0]

            def settled() -> bool:
                return client.hlen("cc:state:worker") + int(
                    client.get("cc:deadletter:count") or 0) >= n

            _wait(settled, 20)
            stored = client.hlen("cc:state:worker")
            hb = {k.decode(): v.decode() for k, v in client.hgetall("cc:ingest:hb").items()}
            return {"rate": rate, "standby": standby, "sent": n, "stored": stored,
                    "lost": n - stored, "dead_letters": int(client.get("cc:deadletter:count")
                                                            or 0),
                    "takeover_s": round(takeover_s, 3) if takeover_s is not None else None,
                    "last_takeover": json.loads(hb["last_takeover"])
                    if hb.get("last_takeover") else None}
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(5)
            client.close()


def cost(rate: int, seconds: float) -> dict[str, Any]:
    """CPU and memory of the active and the standby under a steady `rate`."""
    with tempfile.TemporaryDirectory() as tmp, \
            EmbeddedRedis(Path(tmp), persist=True) as server:
        client = redis.Redis.from_url(server.url)
        procs = [_ingest(server.url) for _ in range(2)]
        try:
            _wait(lambda: _holder_pid(client) is not None
                  and client.exists("cc:ingest:standby"), 30)
            time.sleep(1.0)
            active_pid = _holder_pid(client)
            roles = {p.pid: ("active" if p.pid == active_pid else "standby") for p in procs}
            handles = {pid: psutil.Process(pid) for pid in roles}
            sent, stop = [0], threading.Event()
            pub = threading.Thread(target=_publisher,
                                   args=(server.url, rate, seconds, "c", sent, stop))
            pub.start()
            time.sleep(1.0)  # past the first second's warm-up
            before = {pid: h.cpu_times() for pid, h in handles.items()}
            t0 = time.perf_counter()
            time.sleep(seconds - 2.0)
            wall = time.perf_counter() - t0
            out: dict[str, Any] = {"rate": rate}
            for pid, h in handles.items():
                now = h.cpu_times()
                busy = (now.user - before[pid].user) + (now.system - before[pid].system)
                out[roles[pid]] = {"cpu_pct": round(100 * busy / wall, 1),
                                   "rss_mb": round(h.memory_info().rss / 2**20, 1)}
            ring = client.hget("cc:ingest:standby", "ring")
            out["standby"]["ring_messages"] = int(ring or 0)
            pub.join()
            return out
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(5)
            client.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.failover",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="200,2000,20000")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    rates = [int(x) for x in args.rates.split(",")]
    result: dict[str, Any] = {"load_avg_before": os.getloadavg(), "drills": [], "cost": []}
    for rate in rates:
        for standby in (False, True):
            row = drill(rate, args.seconds, standby)
            print(json.dumps(row), flush=True)
            result["drills"].append(row)
    for rate in rates:
        row = cost(rate, args.seconds)
        print(json.dumps(row), flush=True)
        result["cost"].append(row)
    result["load_avg_after"] = os.getloadavg()
    OUT.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
