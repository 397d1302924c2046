"""Soak: memory of every process (and the wall in a browser) under the simulator at 10×.

Starts the real stack (`python app.py`) with CC_SIM_RATE, opens the wall in headless
Chromium, and samples every process's RSS and the page's JS heap. "Flat after warm-up" is
judged by comparing the mean of the last fifth of samples with the fifth after warm-up.
Each sample also says which ingest applies and how many takeovers it has made, so a step in
an ingest's memory can be told apart from growth (a standby that takes over fills its
merge cache); the stack's own output goes to bench/results/soak.log.

    python -m bench.soak [--minutes 120] [--rate 10] [--warmup 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import redis

from bench.browser import browser
from bench.latency import terminate
from dashboard.access.keyfile import REDIS_PASSWORD, secret_path
from feeds.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"


def roles(app: psutil.Process) -> dict[str, psutil.Process]:
    """Every process of the stack by role; the two ingests as ingest-1 and ingest-2 (in pid
    order: which one applies can change), the web server's processes as web-1, web-2…"""
    found = {"app": app}
    ingests = webs = 0
    for child in sorted(app.children(recursive=True), key=lambda p: p.pid):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:  # a child that just ended (a zombie until reaped): not ours to judge
            continue
        if "feeds.ingest" in cmd:
            ingests += 1
            found[f"ingest-{ingests}"] = child
        if "gunicorn" in cmd:  # the HTTP side: gunicorn's master, then its workers
            webs += 1
            found[f"web-{webs}"] = child
        for name in ("relay", "watch", "simulator", "sim.video"):
            if f"feeds.{name}" in cmd:
                found[name.replace("sim.", "")] = child
        if "valkey-server" in cmd or "redis-server" in cmd:
            found["redis"] = child
    return found


def redis_port(procs: dict[str, psutil.Process]) -> int | None:
    """The embedded server's port: the one it listens on (its title hides its arguments)."""
    server = procs.get("redis")
    if server is None:
        return None
    ports = [c.laddr.port for c in server.net_connections("tcp") if c.status == "LISTEN"]
    return ports[0] if ports else None


def ingest_roles(client: redis.Redis, procs: dict[str, psutil.Process]) -> dict[str, Any]:
    """Which ingest applies (its instance name carries its pid) and its takeovers so far."""
    hb = client.hgetall("cc:ingest:hb")
    instance = hb.get(b"instance", b"").decode()
    pid = instance.split(":")[1] if instance.count(":") >= 2 else ""
    active = next((name for name, p in procs.items()
                   if name.startswith("ingest-") and str(p.pid) == pid), None)
    return {"active": active, "takeovers": int(hb.get(b"takeovers", 0) or 0),
            "accepted": int(hb.get(b"accepted", 0) or 0)}


def run(minutes: float, rate: float, warmup: float, every: float) -> dict[str, Any]:
    port, ws_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data:
        # no demo history (docs/DEMO.md): memory over time starts from an empty store
        env = {**os.environ, "CC_SIM_RATE": str(rate), "CC_DATA_DIR": data,
               "CC_DEMO_HISTORY_DAYS": "0"}
        env.pop("REDIS_URL", None)
        OUT.mkdir(exist_ok=True)
        log = (OUT / "soak.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), "--ws-port", str(ws_port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        driver = None
        samples: list[dict[str, Any]] = []
        try:
            time.sleep(8)
            # the demo's kiosk token (app.py keeps it in the data folder)
            token_file = Path(data) / "demo-kiosk-token"
            for _ in range(120):
                if token_file.exists() and token_file.read_text().strip():
                    break
                time.sleep(0.5)
            token = token_file.read_text().strip()
            driver = browser(f"http://127.0.0.1:{port}/?display={token}")
            app = psutil.Process(proc.pid)
            client: redis.Redis | None = None
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < minutes * 60:
                procs = roles(app)
                row: dict[str, Any] = {"t_s": round(elapsed)}
                for name, p in procs.items():
                    try:
                        row[f"{name}_rss_mb"] = round(p.memory_info().rss / 2**20, 1)
                    except psutil.Error:
                        row[f"{name}_rss_mb"] = None
                try:
                    if client is None and (rport := redis_port(procs)):
                        # the embedded Valkey requires the data folder's password
                        password = secret_path(data, REDIS_PASSWORD).read_text().strip()
                        client = redis.Redis(port=rport, password=password, socket_timeout=5)
                    if client is not None:
                        row.update(ingest_roles(client, procs))
                except (redis.RedisError, psutil.Error) as exc:
                    row["redis_error"] = str(exc)[:100]
                try:
                    heap = driver.execute_script(
                        "return performance.memory ? performance.memory.usedJSHeapSize : null")
                    row["browser_heap_mb"] = round(heap / 2**20, 1) if heap else None
                    row["wall_state"] = driver.execute_script(
                        "return window.ccwall ? window.ccwall.state : null")
                except Exception as exc:
                    row["browser_error"] = str(exc)[:100]
                samples.append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
                time.sleep(every)
        finally:
            if driver is not None:
                driver.quit()
            terminate(proc, 20)
            log.close()
    return summarise(samples, warmup * 60)


def summarise(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    after = [s for s in samples if s["t_s"] >= warmup_s] or samples
    fifth = max(1, len(after) // 5)
    head, tail = after[:fifth], after[-fifth:]
    summary: dict[str, Any] = {"samples": samples, "flatness": {}}
    keys = [k for k in samples[0] if k.endswith("_mb")] if samples else []
    for key in keys:
        a = [s[key] for s in head if s.get(key) is not None]
        b = [s[key] for s in tail if s.get(key) is not None]
        if a and b:
            early, late = sum(a) / len(a), sum(b) / len(b)
            summary["flatness"][key] = {"after_warmup": round(early, 1), "end": round(late, 1),
                                        "growth_pct": round((late - early) / early * 100, 1)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=10, help="minutes before judging")
    parser.add_argument("--every", type=float, default=15, help="seconds between samples")
    args = parser.parse_args()
    result = run(args.minutes, args.rate, args.warmup, args.every)
    OUT.mkdir(exist_ok=True)
    (OUT / "soak.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    print(json.dumps(result["flatness"], indent=1))


if __name__ == "__main__":
    main()
