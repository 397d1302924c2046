"""Page rotation on a kiosk (docs/ROTATION.md): what a browser keeps as pages come and go.

Starts the real stack (`python app.py --no-demo`: no simulator, so no level I/II event holds
the rotation; 300 events published to give the pages something to draw), signs a commander
in, and measures three ways of showing wall → cockpit → video, 5 s each:

- rotation: `/rotate?p=wall:5,cockpit:5,video:5`, the frames of docs/ROTATION.md, for
  `--swaps` page changes;
- navigation (baseline for sockets): the same pages opened one after another in the window
  itself, every 5 s, as a rotation by navigation would (each way in a browser of its own);
- static (baseline for memory): the wall alone, open for as long as the rotation ran.

Sampled after each page change (rotation, navigation) or every 6.5 s (static): the relay's
open sockets (`/api/health`, `relay.clients`, written every second), and after a forced
garbage collection the browser's JS heap (`Performance.getMetrics` JSHeapUsedSize, the
page and its same-origin frames) and DOM counters (documents, nodes, listeners). Figures
are ratios of the last samples to the first after one warm-up cycle, against the baseline.

    python -m bench.rotate [--swaps 30]
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis

from bench.browser import browser
from bench.dispatch_click import set_session
from bench.latency import exit_on_sigterm, load, stack, wait_for

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"
CITY = json.loads((ROOT / "data" / "pingdu" / "city.json").read_text(encoding="utf-8"))
PAGES = ("", "cockpit", "video")
SLIDE_S = 5


def sockets(base: str) -> int:
    with urllib.request.urlopen(base + "api/health", timeout=5) as res:
        return int(json.loads(res.read())["relay"]["clients"])


def memory(driver: Any) -> dict[str, float]:
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    metrics = {m["name"]: m["value"]
               for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    dom = driver.execute_cdp_cmd("Memory.getDOMCounters", {})
    return {"heap_mb": metrics["JSHeapUsedSize"] / 2**20, "documents": dom["documents"],
            "nodes": dom["nodes"], "listeners": dom["jsEventListeners"]}


def sample(driver: Any, base: str) -> dict[str, float]:
    return {**memory(driver), "sockets": sockets(base)}


def publish_events(redis_url: str, n: int) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for i in range(n):
            grid = CITY["grids"][(i * 7) % len(CITY["grids"])]
            lon, lat = grid["centroid"]
            client.publish("cc:event", json.dumps({
                "id": f"BENCH-R{i:04d}", "type": "garbage", "severity": 3 + i % 2, "lon": lon,
                "lat": lat, "ts": int(time.time() * 1000), "title": f"轮播测试 {i}",
                "source": "hotline"}))
    finally:
        client.close()


def rotation(driver: Any, base: str, swaps: int) -> list[dict[str, float]]:
    spec = ",".join(f"{p or 'wall'}:{SLIDE_S}" for p in PAGES)
    driver.get(base + "rotate?p=" + spec)
    state = "return window.ccwall.rotate ? window.ccwall.rotate.state() : {}"
    wait_for(lambda: driver.execute_script(state).get("swaps", 0) >= 1, 30, "the first page")
    samples = []
    for n in range(1, swaps + 1):
        wait_for(lambda n=n: (s := driver.execute_script(state)).get("swaps", 0) > n and
                 not s.get("loading"), 30, f"swap {n}", every=0.1)
        time.sleep(1.2)  # the relay's figure is written every second
        samples.append(sample(driver, base))
        print(f"rotation {n}: {samples[-1]}", flush=True)
    return samples


def navigation(driver: Any, base: str, swaps: int) -> list[dict[str, float]]:
    samples = []
    for n in range(swaps):
        driver.get(base + PAGES[n % len(PAGES)])
        time.sleep(SLIDE_S)
        samples.append(sample(driver, base))
        print(f"navigation {n + 1}: {samples[-1]}", flush=True)
    return samples


def static(driver: Any, base: str, seconds: float, every: float) -> list[dict[str, float]]:
    driver.get(base)
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(every)
        samples.append(sample(driver, base))
        print(f"static: {samples[-1]}", flush=True)
    return samples


def fresh(url: str, redis_url: str, way: Any) -> tuple[list[dict[str, float]], float]:
    """`way` in a browser of its own, signed in: pages a navigation leaves in the browser's
    back/forward cache keep their sockets (measured: none closed within 120 s), so one way
    must not count the last one's. Returns its samples and how long it ran."""
    driver = browser(url + "api/health")
    try:
        set_session(driver, url, redis_url)
        driver.execute_cdp_cmd("Performance.enable", {})
        t0 = time.monotonic()
        samples = way(driver)
        return samples, time.monotonic() - t0
    finally:
        driver.quit()
        wait_for(lambda: sockets(url) == 0, 60, "the browser's sockets to close")


def growth(samples: list[dict[str, float]], period: int, skip: int,
           seconds: float) -> dict[str, float]:
    """How the figures moved from the first sample after `skip` warm-up samples to the last,
    between samples of the same page (`period` samples apart: the rotation's and the
    navigation's pages differ in size), per minute of the run."""
    last = len(samples) - 1
    first = skip + (last - skip) % period
    minutes = seconds * (last - first) / len(samples) / 60 or 1.0
    a, b = samples[first], samples[last]
    return {"from_sample": first, "minutes": round(minutes, 2),
            "heap_kb_per_min": round((b["heap_mb"] - a["heap_mb"]) * 1024 / minutes, 1),
            "heap_ratio": round(b["heap_mb"] / a["heap_mb"], 4),
            "documents": [a["documents"], b["documents"]], "nodes": [a["nodes"], b["nodes"]],
            "listeners": [a["listeners"], b["listeners"]],
            "sockets": [a["sockets"], b["sockets"]]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.rotate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=30, help="page changes per way")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    before = load()
    with stack(demo=False) as (url, redis_url):
        publish_events(redis_url, 300)
        rot, ran = fresh(url, redis_url, lambda d: rotation(d, url, args.swaps))
        nav, nav_s = fresh(url, redis_url, lambda d: navigation(d, url, args.swaps))
        still, still_s = fresh(url, redis_url, lambda d: static(d, url, ran, ran / args.swaps))
    warm, n = len(PAGES), len(PAGES)
    rot_g, nav_g = growth(rot, n, warm, ran), growth(nav, n, warm, nav_s)
    still_g = growth(still, 1, warm, still_s)
    result = {
        "swaps": args.swaps, "slide_s": SLIDE_S, "rotation_s": round(ran, 1),
        "rotation": {"max_sockets": max(s["sockets"] for s in rot[warm:]),
                     "max_documents": max(s["documents"] for s in rot[warm:]),
                     "growth": rot_g, "last": rot[-1]},
        "navigation": {"max_sockets": max(s["sockets"] for s in nav[warm:]),
                       "max_documents": max(s["documents"] for s in nav[warm:]),
                       "growth": nav_g, "last": nav[-1]},
        "static": {"growth": still_g, "last": still[-1]},
        "ratios": {
            "sockets_rotation_vs_navigation": round(
                max(s["sockets"] for s in rot[warm:]) / max(s["sockets"] for s in nav[warm:]),
                3),
            "heap_growth_rotation_vs_static": round(
                rot_g["heap_kb_per_min"] / still_g["heap_kb_per_min"], 2)
            if still_g["heap_kb_per_min"] else None,
        },
        "load_before": before, "load_after": load(),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "rotate.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
