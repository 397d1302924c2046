"""The browser's CPU for the 16-tile video wall (/video) playing the demo MJPEG streams.

Starts the stack without the simulator (`app.py --no-demo`), the demo video server
(`python -m feeds.sim.video`, 4 ports, its default fps) and 16 cameras streaming from it,
then opens /video in headless Chromium as a kiosk. One page, three phases interleaved
`--rounds` times, each `--seconds` long after a short settle, switched live through the
wall's own API (a `video`/wall frame):

* `empty` — the baseline: the same page with 16 empty tiles (clock, socket, stats frames);
* `tiles4` — four MJPEG tiles;
* `tiles16` — sixteen MJPEG tiles.

Per phase: CPU of every Chromium process (browser, renderer, GPU/compositor; psutil, in % of
one core), the page's main-thread busy time (CDP `Performance.getMetrics` TaskDuration, in
ms per second), the video server's CPU, and how many tiles say `playing`.

    python -m bench.videowall [--seconds 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime
from typing import Any

import psutil
import redis

from bench.browser import browser, chromium_procs, cpu_seconds, kiosk_url, page_metrics
from bench.latency import OUT, ROOT, exit_on_sigterm, load, stack, wait_for
from dashboard.store import Store
from dashboard.video.wall import VideoWall
from feeds.redis_server import free_port

CAMERAS = 16
SPREAD = 4
SETTLE_S = 4.0
PHASES = ("empty", "tiles4", "tiles16")


def start_video_server(port: int, redis_url: str) -> subprocess.Popen[bytes]:
    env = {"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"}
    argv = [sys.executable, "-m", "feeds.sim.video", "--host", "127.0.0.1", "--port",
            str(port), "--spread", str(SPREAD)]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    import urllib.request

    wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
             .status == 200, 30, "the demo video server")
    return proc


def publish_cameras(redis_url: str, port: int) -> list[str]:
    """16 online MJPEG cameras, spread over the server's ports as the simulator spreads them."""
    client = redis.Redis.from_url(redis_url)
    ids = [f"BENCH-CAM-{i:02d}" for i in range(CAMERAS)]

    def publish() -> bool:
        # ingest may not be listening yet: publish again until all are stored
        now = int(time.time() * 1000)
        for i, cid in enumerate(ids):
            p = port + zlib.crc32(cid.encode()) % SPREAD
            client.publish("cc:camera", json.dumps({
                "id": cid, "lon": 119.95 + i * 0.001, "lat": 36.78, "ts": now,
                "name": f"测试路口{i + 1}", "online": True, "stream_type": "mjpeg",
                "stream_url": f"http://127.0.0.1:{p}/video/{cid}.mjpg"}, ensure_ascii=False))
        time.sleep(1.0)
        return client.hlen("cc:state:camera") == CAMERAS

    try:
        wait_for(publish, 60, "ingest to store the cameras", every=0.1)
    finally:
        client.close()
    return ids


def measure(driver: Any, server: psutil.Process, seconds: float) -> dict[str, float]:
    def task_seconds() -> float:
        return page_metrics(driver)["TaskDuration"]

    procs = chromium_procs(driver)
    c0, s0, t0, w0 = cpu_seconds(procs), cpu_seconds([server]), task_seconds(), \
        time.monotonic()
    time.sleep(seconds)
    procs = chromium_procs(driver)
    c1, s1, t1, w1 = cpu_seconds(procs), cpu_seconds([server]), task_seconds(), \
        time.monotonic()
    wall = w1 - w0
    playing = driver.execute_script(
        "return document.querySelectorAll('.cc-vw-screen[data-state=\"playing\"]').length")
    return {"chromium_cpu_pct": round(100 * (c1 - c0) / wall, 1),
            "main_thread_ms_per_s": round(1000 * (t1 - t0) / wall, 1),
            "video_server_cpu_pct": round(100 * (s1 - s0) / wall, 1),
            "playing": playing}


def run(seconds: float, rounds: int) -> dict[str, Any]:
    video_port = free_port()
    while any(_busy(video_port + i) for i in range(SPREAD)):
        video_port = free_port()
    # the wall's CSP lets camera pictures in from CC_MEDIA_SOURCES only: this server's ports
    os.environ["CC_MEDIA_SOURCES"] = " ".join(f"http://127.0.0.1:{video_port + i}"
                                              for i in range(SPREAD))
    # the `empty` baseline is 16 tiles showing nothing: no tour filling the unpinned ones
    os.environ["CC_VIDEO_TOUR_S"] = "0"
    with stack(demo=False) as (url, redis_url):
        server = start_video_server(video_port, redis_url)
        driver = None
        try:
            ids = publish_cameras(redis_url, video_port)
            client = redis.Redis.from_url(redis_url, decode_responses=True)
            wall = VideoWall(Store(client))
            wall.set_wall({"grid": 16, "tiles": [], "follow": False}, "bench")
            driver = browser(kiosk_url(url + "video", redis_url))
            driver.execute_cdp_cmd("Performance.enable", {})
            wait_for(lambda: driver.execute_script(
                "return window.ccwall && ccwall.connected && ccwall.state.cameras") == CAMERAS,
                60, "the video wall with 16 cameras")
            tiles = {"empty": [], "tiles4": ids[:4], "tiles16": ids}
            samples: dict[str, list[dict[str, float]]] = {p: [] for p in PHASES}
            load_before = load()
            for _ in range(rounds):
                for phase in PHASES:
                    wall.set_wall({"grid": 16, "tiles": tiles[phase]}, "bench")
                    want = len(tiles[phase])
                    wait_for(lambda want=want: driver.execute_script(
                        "return document.querySelectorAll("
                        "'.cc-vw-screen[data-state=\"playing\"]').length") == want, 30,
                        f"{want} tiles playing")
                    time.sleep(SETTLE_S)
                    samples[phase].append(measure(driver, psutil.Process(server.pid), seconds))
            client.close()
        finally:
            if driver is not None:
                driver.quit()
            server.terminate()
            server.wait(10)
    summary = {p: {k: round(statistics.median(s[k] for s in samples[p]), 1)
                   for k in samples[p][0]} for p in PHASES}
    base = summary["empty"]
    for p in ("tiles4", "tiles16"):
        summary[p]["chromium_cpu_ratio"] = round(
            summary[p]["chromium_cpu_pct"] / max(base["chromium_cpu_pct"], 0.1), 1)
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "cpus": psutil.cpu_count(),
                        "python": platform.python_version()},
            "seconds": seconds, "rounds": rounds, "load_before": load_before,
            "load_after": load(), "samples": samples, "summary": summary}


def _busy(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def report(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = ["| phase | Chromium CPU (% of a core) | × empty | main thread ms/s | "
             "video server CPU % | tiles playing |", "|---|---|---|---|---|---|"]
    for p in PHASES:
        row = s[p]
        lines.append(f"| {p} | {row['chromium_cpu_pct']} | {row.get('chromium_cpu_ratio', 1.0)}"
                     f" | {row['main_thread_ms_per_s']} | {row['video_server_cpu_pct']} | "
                     f"{row['playing']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m bench.videowall",
                                 description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    exit_on_sigterm()
    result = run(args.seconds, args.rounds)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "videowall.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(report(result))
    print(f"load before {result['load_before']}, after {result['load_after']}")
    return result


if __name__ == "__main__":
    main()
