"""The demo video server's CPU for a 16-tile wall, against not rendering at all.

Starts `python -m feeds.sim.video` (4 ports, the default fps, no Redis) and lets 16 clients
read 16 cameras' MJPEG streams for `--seconds`, measuring the server process's CPU (psutil)
and the frames delivered. The baseline, in the same run: the same server with `--static`,
streaming one pre-encoded JPEG (HTTP, threads and sockets, no drawing or encoding). Then
the renderer alone, in this process: ms per frame (draw, encode) over 16 cameras.

    python -m bench.video_render [--seconds 20] [--clients 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from dashboard.config import Settings
from feeds.redis_server import free_port
from feeds.sim.scene import Renderer, encode

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "video_render.json"
SPREAD = 4
T0 = 1_779_069_600.0


def _free_run(n: int) -> int:
    """A first port with n free ports after it."""
    for _ in range(50):
        first = free_port()
        try:
            socks = []
            for port in range(first, first + n):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports")


def _reader(port: int, cam: str, stop: threading.Event, counts: list[int], i: int) -> None:
    """Reads one MJPEG stream to the end, counting frames (parts)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET /video/{cam}.mjpg HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        tail = b""
        while not stop.is_set():
            chunk = sock.recv(65536)
            if not chunk:
                break
            data = tail + chunk
            counts[i] += data.count(b"Content-Type: image/jpeg")
            tail = data[-32:]
            counts[i] -= tail.count(b"Content-Type: image/jpeg")


def serve_and_measure(seconds: float, clients: int, fps: float, static: bool) -> dict[str, Any]:
    first = _free_run(SPREAD)
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    argv = [sys.executable, "-m", "feeds.sim.video", "--port", str(first), "--spread",
            str(SPREAD), "--fps", str(fps)] + (["--static"] if static else [])
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", first), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        ps = psutil.Process(proc.pid)
        stop = threading.Event()
        counts = [0] * clients
        cams = [f"3702830100131{i:07d}" for i in range(clients)]
        threads = [threading.Thread(target=_reader, args=(first + i % SPREAD, cam, stop, counts,
                                                           i), daemon=True)
                   for i, cam in enumerate(cams)]
        for th in threads:
            th.start()
        time.sleep(2.0)  # warm-up: backgrounds drawn, connections up
        c0, n0, w0 = ps.cpu_times(), sum(counts), time.monotonic()
        time.sleep(seconds)
        c1, n1, w1 = ps.cpu_times(), sum(counts), time.monotonic()
        stop.set()
        wall = w1 - w0
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        return {"cpu_percent_of_one_core": round(100 * cpu / wall, 1),
                "cpu_s_per_s": round(cpu / wall, 4), "frames_per_s": round((n1 - n0) / wall, 1),
                "expected_frames_per_s": round(clients * fps, 1),
                "rss_mb": round(ps.memory_info().rss / 2**20, 1)}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def render_ms(frames: int = 600, cameras: int = 16, fps: float = 6.0) -> dict[str, float]:
    """In-process: ms per frame to draw and to encode, backgrounds already cached."""
    renderer = Renderer(Settings().timezone)
    cams = [f"3702830100131{i:07d}" for i in range(cameras)]
    for cam in cams:
        renderer.jpeg(cam, "平度市凤台街道-人民路与杭州路路口-球机", T0)
    draw, enc = [], []
    for i in range(frames):
        cam = cams[i % cameras]
        t0 = time.perf_counter()
        img = renderer.frame(cam, "平度市凤台街道-人民路与杭州路路口-球机", T0 + i / fps)
        t1 = time.perf_counter()
        encode(img, renderer.quality)
        t2 = time.perf_counter()
        draw.append((t1 - t0) * 1000)
        enc.append((t2 - t1) * 1000)
    total = [a + b for a, b in zip(draw, enc, strict=True)]
    t0 = time.perf_counter()
    for i in range(20):
        renderer.background(f"bg{i}", "平度市凤台街道-人民路与杭州路路口-球机", False)
    background = (time.perf_counter() - t0) / 20 * 1000
    return {"frame_ms_median": round(statistics.median(total), 3),
            "frame_ms_p99": round(sorted(total)[int(len(total) * 0.99)], 3),
            "draw_ms_median": round(statistics.median(draw), 3),
            "encode_ms_median": round(statistics.median(enc), 3),
            "background_ms": round(background, 2)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m bench.video_render",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=16)
    args = ap.parse_args(argv)
    fps = Settings.from_env().sim_video_fps
    print(f"baseline: one pre-encoded frame, {args.clients} clients × {fps:g} fps, "
          f"{args.seconds:g} s", flush=True)
    static = serve_and_measure(args.seconds, args.clients, fps, static=True)
    print(f"  {static}", flush=True)
    print("rendered street scenes", flush=True)
    rendered = serve_and_measure(args.seconds, args.clients, fps, static=False)
    print(f"  {rendered}", flush=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, {platform.system()} "
                   f"{platform.release()}, Python {platform.python_version()}",
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "clients": args.clients, "fps": fps, "seconds": args.seconds,
        "baseline_static": static, "rendered": rendered,
        "cpu_ratio": round(rendered["cpu_s_per_s"] / max(1e-6, static["cpu_s_per_s"]), 2),
        "render": render_ms(fps=fps),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result), flush=True)
    return result


def summary(result: dict[str, Any]) -> str:
    s, r, m = result["baseline_static"], result["rendered"], result["render"]
    return (f"video {result['clients']} MJPEG clients at {result['fps']:g} fps: server CPU "
            f"{r['cpu_percent_of_one_core']} % of a core rendering ({r['frames_per_s']} "
            f"frames/s) vs {s['cpu_percent_of_one_core']} % streaming one pre-encoded frame "
            f"(×{result['cpu_ratio']}); a frame {m['frame_ms_median']} ms median "
            f"(draw {m['draw_ms_median']}, encode {m['encode_ms_median']}), p99 "
            f"{m['frame_ms_p99']} ms; load avg {result['load_avg']}")


if __name__ == "__main__":
    main()
