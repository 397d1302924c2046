"""The live wall with 42,000 cameras loaded: main-thread time per second of updates.

Starts the stack without the simulator, publishes 2,140 workers through the real ingest and
opens the wall (a display kiosk) at city scale. Three phases, one run, one browser:

  baseline  the wall with no cameras; the workers' normal moves (a fix every ~5 s each)
  cameras   42,000 camera records (the simulator's catalogue generator: Pingdu's towns, 60 %
            in the urban grids, GB/T 28181 ids, mjpeg/hls URLs on the demo video ports,
            headings/fov for fixed cameras) published through ingest and loaded by a
            reconnect's snapshot; the same worker moves plus a camera load of CAM_RATE
            messages a second (CAM_FLIP of them online/offline changes, the rest re-reports)
  icons     the same, zoomed into the old town where every camera is drawn as an icon

Each phase is measured two ways:
  live      the updates flow through the real pipeline (Redis → ingest → relay → websocket)
            for --seconds; main-thread busy ms per second = Chrome's TaskDuration
            (CDP Performance.getMetrics: every task on the renderer's main thread, parsing
            frames, applying them, canvas redraws, style, layout, paint) over the window.
  injected  bench/moves.py's method: each rep builds one second's updates as frames in the
            page (untimed) and times `applyFrame` up to the task after the next animation
            frame (busy_ms); the camera layer's deferred redraw (at most one a second) is
            added from its own timer (cc.cameras.stats().totalMs), so a rep is one second's
            whole cost.

    python -m bench.cameras_wall [--seconds 20] [--reps 20]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
import zlib
from typing import Any

import redis

from bench.browser import kiosk_url
from bench.latency import OUT, browser, exit_on_sigterm, load, stack, wait_for
from bench.moves import MEASURE_JS, WORKERS, publish_workers
from dashboard.city import load_city
from feeds.sim.text import Text
from feeds.sim.world import build_world

CAMERAS = 42_000
CAM_RATE = 300  # camera messages a second: re-reports and state changes
CAM_FLIP = 60  # of which online ↔ offline changes
WORKER_RATE = WORKERS // 5  # every worker reports every ~5 s (the simulator's cadence)
VIDEO_PORT, VIDEO_SPREAD = 8060, 4  # docs/VIDEO.md: the demo video server's ports
ICON_ZOOM = 16


def camera_records(n: int = CAMERAS, seed: int = 7) -> list[dict[str, Any]]:
    """n camera messages as the platform would send them, from the simulator's generator."""
    world = build_world(load_city(), Text(seed), random.Random(f"{seed}:world"), workers=0,
                        cameras=n)
    now = int(time.time() * 1000)
    out = []
    for c in world.cameras:
        port = VIDEO_PORT + zlib.crc32(c.id.encode()) % VIDEO_SPREAD
        url = None
        if c.stream_type == "mjpeg":
            url = f"http://127.0.0.1:{port}/video/{c.id}.mjpg"
        elif c.stream_type == "hls":
            url = f"http://127.0.0.1:{port}/video/{c.id}/index.m3u8"
        msg: dict[str, Any] = {"id": c.id, "name": c.name, "lon": round(c.lon, 6),
                               "lat": round(c.lat, 6), "stream_type": c.stream_type,
                               "stream_url": url, "online": True, "ptz": c.ptz,
                               "range_m": c.range_m, "ts": now}
        if c.heading is not None:
            msg["heading"], msg["fov"] = c.heading, c.fov
        out.append(msg)
    return out


def publish_cameras(client: redis.Redis, cams: list[dict[str, Any]], prefix: str = "cc:") -> None:
    wait_for(lambda: dict(client.pubsub_numsub(f"{prefix}camera")).get(
        f"{prefix}camera".encode(), 0) >= 1, 60, "the ingest to subscribe")
    for i in range(0, len(cams), 2000):
        pipe = client.pipeline(transaction=False)
        for msg in cams[i:i + 2000]:
            pipe.publish(f"{prefix}camera", json.dumps(msg, ensure_ascii=False))
        pipe.execute()
        time.sleep(0.2)  # let ingest keep up: pub/sub drops nothing, but its buffer is finite
    wait_for(lambda: client.hlen(f"{prefix}state:camera") >= len(cams), 180,
             f"ingest to store {len(cams)} cameras")


class Load:
    """Publishes the update load through Redis from a thread, in 100 ms ticks."""

    def __init__(self, client: redis.Redis, cams: list[dict[str, Any]],
                 workers: list[dict[str, Any]], seed: int = 11, flips: int = CAM_FLIP) -> None:
        self.client, self.cams, self.workers = client, cams, workers
        self.rng = random.Random(seed)
        self.flips = flips
        self.stop = threading.Event()
        self.sent = {"camera": 0, "worker": 0}
        self.thread: threading.Thread | None = None

    def _tick(self) -> None:
        rng, now = self.rng, int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=False)
        if self.cams:
            for k in range(CAM_RATE // 10):
                cam = self.cams[rng.randrange(len(self.cams))]
                if k < self.flips // 10:
                    cam["online"] = not cam["online"]
                cam["ts"] = now
                pipe.publish("cc:camera", json.dumps(cam, ensure_ascii=False))
                self.sent["camera"] += 1
        for _ in range(WORKER_RATE // 10):
            w = self.workers[rng.randrange(len(self.workers))]
            w["lon"] = round(w["lon"] + rng.uniform(-1e-4, 1e-4), 6)
            w["lat"] = round(w["lat"] + rng.uniform(-1e-4, 1e-4), 6)
            w["ts"] = now
            pipe.publish("cc:worker", json.dumps(w))
            self.sent["worker"] += 1
        pipe.execute()

    def _run(self) -> None:
        nxt = time.monotonic()
        while not self.stop.is_set():
            self._tick()
            nxt += 0.1
            self.stop.wait(max(0.0, nxt - time.monotonic()))

    def __enter__(self) -> Load:
        self.thread = threading.Thread(target=self._run, daemon=True, name="load")
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join(5)


def stored_workers(client: redis.Redis) -> list[dict[str, Any]]:
    keep = ("id", "lon", "lat", "status", "speed", "heading", "battery")
    return [{k: rec[k] for k in keep if k in rec}
            for rec in (json.loads(v) for v in client.hvals("cc:state:worker"))]


def metrics(driver: Any) -> dict[str, float]:
    got = driver.execute_cdp_cmd("Performance.getMetrics", {})
    return {m["name"]: m["value"] for m in got["metrics"]}


def layer_stats(driver: Any) -> dict[str, Any]:
    return driver.execute_script("return ccwall.cameras.stats()")


# Frames the wall receives, by type (a snapshot mid-run would be a relay resync).
COUNT_JS = """
if (!window.__frameCount) {
  window.__frameCount = {};
  var orig = ccwall.store.applyFrame;
  ccwall.store.applyFrame = function (f) {
    var t = (f && f.type) || '?';
    window.__frameCount[t] = (window.__frameCount[t] || 0) + 1;
    return orig.apply(this, arguments);
  };
}
return Object.assign({}, window.__frameCount);
"""


def live(driver: Any, loader: Load, seconds: float) -> dict[str, Any]:
    """Main-thread busy ms per second over `seconds` of updates through the pipeline."""
    with loader:
        time.sleep(2.0)  # the pipeline reaches its steady state first
        per_s: list[float] = []
        f0 = driver.execute_script(COUNT_JS)
        s0 = layer_stats(driver)
        m0 = metrics(driver)
        t0 = time.monotonic()
        prev, tprev = m0, t0
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            m, t = metrics(driver), time.monotonic()
            per_s.append(1000 * (m["TaskDuration"] - prev["TaskDuration"]) / (t - tprev))
            prev, tprev = m, t
        m1, s1 = prev, layer_stats(driver)
        f1 = driver.execute_script(COUNT_JS)
        elapsed = tprev - t0
    xs = sorted(per_s)
    return {
        "seconds": round(elapsed, 1),
        "busy_ms_per_s": round(1000 * (m1["TaskDuration"] - m0["TaskDuration"]) / elapsed, 1),
        "script_ms_per_s": round(1000 * (m1["ScriptDuration"] - m0["ScriptDuration"]) / elapsed,
                                 1),
        "busy_p90_ms": round(xs[min(len(xs) - 1, round(0.9 * (len(xs) - 1)))], 1),
        "busy_max_ms": round(xs[-1], 1),
        "layer_draws_per_s": round((s1["draws"] - s0["draws"]) / elapsed, 2),
        "layer_draw_ms_per_s": round(((s1.get("totalMs") or 0) - (s0.get("totalMs") or 0))
                                     / elapsed, 2),
        "heap_mb": round(m1["JSHeapUsedSize"] / 2**20, 1),
        "sent": dict(loader.sent),
        "frames": {k: v - f0.get(k, 0) for k, v in f1.items()},
        "loadavg": load()["loadavg"],
    }


# arguments: camera updates, of which flips, worker moves, sign. One second's updates as the
# relay frames them (workers: one batch of moves; cameras: one delta each), built untimed.
INJECT_JS = """
var done = arguments[arguments.length - 1];
var nCam = arguments[0], nFlip = arguments[1], nW = arguments[2], d = 0.0001 * arguments[3];
var frames = [], items = [], now = Date.now();
var wids = [];
ccwall.store.each('worker', function (rec) { wids.push(rec.id); });
for (var i = 0; i < nW && wids.length; i++) {
  var rec = ccwall.store.get('worker', wids[(Math.random() * wids.length) | 0]);
  var data = Object.assign({}, rec);
  data.lon = Math.round((rec.lon + d) * 1e6) / 1e6;
  data.lat = Math.round((rec.lat + d) * 1e6) / 1e6;
  data.ts = now;
  items.push({kind: 'worker', op: 'move', data: data});
}
frames.push({type: 'batch', items: items});
if (!window.__camIds || window.__camIds.length !== ccwall.state.cameras) {
  window.__camIds = [];
  ccwall.store.each('camera', function (rec) { window.__camIds.push(rec.id); });
}
var cids = window.__camIds;
for (var j = 0; j < nCam && cids.length; j++) {
  var c = ccwall.store.get('camera', cids[(Math.random() * cids.length) | 0]);
  if (!c) continue;
  var cd = Object.assign({}, c);
  if (j < nFlip) cd.online = c.online === false;
  cd.ts = now;
  frames.push({type: 'delta', kind: 'camera', op: 'upsert', data: cd});
}
var text = frames.map(function (f) { return JSON.stringify(f); });
var parsed = text.map(function (t) { return JSON.parse(t); });
var s0 = ccwall.cameras.stats();
setTimeout(function () {
  __ccMeasure(function () {
    for (var k = 0; k < parsed.length; k++) ccwall.applyFrame(parsed[k]);
  }, function (r) {
    // the layer's own redraw comes up to a second later: wait for it, then add its time
    setTimeout(function () {
      var s1 = ccwall.cameras.stats();
      r.redraw_ms = (s1.totalMs || 0) - (s0.totalMs || 0);
      r.redraws = s1.draws - s0.draws;
      r.total_ms = r.busy_ms + r.redraw_ms;
      r.frames = parsed.length;
      done(r);
    }, 1150);
  });
}, 50);
"""


def injected(driver: Any, reps: int, cams: bool, warmup: int = 2) -> dict[str, Any]:
    rows = []
    for i in range(warmup + reps):
        r = driver.execute_async_script(INJECT_JS, CAM_RATE if cams else 0,
                                        CAM_FLIP if cams else 0, WORKER_RATE,
                                        1 if i % 2 == 0 else -1)
        if i >= warmup:
            rows.append(r)

    def st(key: str) -> dict[str, float]:
        xs = sorted(r[key] for r in rows)
        return {"median": round(statistics.median(xs), 1),
                "p90": round(xs[min(len(xs) - 1, round(0.9 * (len(xs) - 1)))], 1),
                "max": round(xs[-1], 1)}

    return {"reps": reps, "busy_ms": st("busy_ms"), "redraw_ms": st("redraw_ms"),
            "total_ms": st("total_ms"), "span_ms": st("span_ms"),
            "redraws_per_rep": round(statistics.mean(r["redraws"] for r in rows), 2)}


def set_view(driver: Any, lon: float, lat: float, zoom: float) -> dict[str, Any]:
    before = layer_stats(driver)["draws"]
    driver.execute_script(
        "var m = ccwall.mapview.map(); m.setView(ccwall.latLng(arguments[0], arguments[1]),"
        " arguments[2], {animate: false});", lon, lat, zoom)
    wait_for(lambda: layer_stats(driver)["draws"] > before, 10, "the camera layer to redraw")
    time.sleep(1.0)
    return layer_stats(driver)


def run(seconds: float, reps: int, n_cams: int = CAMERAS) -> dict[str, Any]:
    out: dict[str, Any] = {"camera_count": n_cams, "workers": WORKERS,
                           "load_per_s": {"camera": CAM_RATE, "camera_flips": CAM_FLIP,
                                          "worker": WORKER_RATE},
                           "seconds": seconds, "reps": reps}
    with stack(demo=False) as (wall_url, redis_url):
        client = redis.Redis.from_url(redis_url)
        publish_workers(redis_url)
        wait_for(lambda: client.hlen("cc:state:worker") >= WORKERS, 60, "the workers")
        workers = stored_workers(client)
        driver = browser(kiosk_url(wall_url, redis_url))
        try:
            # CPU time of the main thread: on a shared 2-core machine wall-clock task times
            # also count the time other processes held the core
            driver.execute_cdp_cmd("Performance.enable", {"timeDomain": "threadTicks"})
            wait_for(lambda: driver.execute_script(
                f"return window.ccwall && ccwall.state.workers >= {WORKERS}"
                " && !!ccwall.mapview.map() && ccwall.connected"), 120, "the wall")
            time.sleep(3.0)  # the initial fit and boundary layers settle
            out["page"] = driver.execute_script(MEASURE_JS)
            out["load_before"] = load()

            print("baseline: no cameras", flush=True)
            out["baseline"] = {"live": live(driver, Load(client, [], workers), seconds),
                               "injected": injected(driver, reps, cams=False)}

            print(f"publishing {n_cams} cameras", flush=True)
            cams = camera_records(n_cams)
            publish_cameras(client, cams)
            # a reconnect with no `since` brings them in one snapshot, as a wall opening now
            t0 = time.monotonic()
            driver.execute_script("ccwall.store.resetSeq(); ccwall.socket.drop();")
            wait_for(lambda: driver.execute_script(
                f"return ccwall.state.cameras >= {n_cams} && ccwall.connected"), 120,
                "the snapshot with every camera")
            out["snapshot_s"] = round(time.monotonic() - t0, 2)
            time.sleep(2.0)
            city = layer_stats(driver)
            out["city_view"] = {k: city[k] for k in ("mode", "zoom", "clusters", "clustered",
                                                     "icons", "lastMs", "cell")}
            print("cameras: city view", flush=True)
            # the cost of having them: the same worker moves, no camera updates
            out["static"] = {"live": live(driver, Load(client, [], workers), seconds)}
            out["cameras"] = {"live": live(driver, Load(client, cams, workers), seconds),
                              "injected": injected(driver, reps, cams=True)}

            lon, lat = load_city().towns[0].centroid
            icons = set_view(driver, lon, lat, ICON_ZOOM)
            out["icon_view"] = {k: icons[k] for k in ("mode", "zoom", "icons", "offlineIcons",
                                                      "sectors", "rings", "lastMs")}
            print(f"cameras: zoom {ICON_ZOOM}, {icons['icons']} icons", flush=True)
            # the same zoom without camera updates: the street view costs more by itself
            # (finer boundary layers), so the icon phase is compared with this
            out["static_icons"] = {"live": live(driver, Load(client, [], workers), seconds)}
            out["icons"] = {"live": live(driver, Load(client, cams, workers), seconds),
                            "injected": injected(driver, reps, cams=True)}
            out["load_after"] = load()
            out["state_after"] = driver.execute_script("return ccwall.state")
        finally:
            driver.quit()
            client.close()
    base = out["baseline"]
    out["static"]["ratio_live"] = round(out["static"]["live"]["busy_ms_per_s"]
                                        / base["live"]["busy_ms_per_s"], 2) \
        if base["live"]["busy_ms_per_s"] else None
    for phase in ("cameras", "icons"):
        p = out[phase]
        p["ratio_live"] = round(p["live"]["busy_ms_per_s"] / base["live"]["busy_ms_per_s"], 2) \
            if base["live"]["busy_ms_per_s"] else None
        # what the camera updates add over the same view with the cameras loaded but quiet
        quiet = out["static" if phase == "cameras" else "static_icons"]["live"]
        p["camera_updates_ms_per_s"] = round(p["live"]["busy_ms_per_s"]
                                             - quiet["busy_ms_per_s"], 1)
        p["ratio_injected"] = round(p["injected"]["total_ms"]["median"]
                                    / base["injected"]["total_ms"]["median"], 2) \
            if base["injected"]["total_ms"]["median"] else None
        p["within_30ms"] = {"live": p["live"]["busy_ms_per_s"] <= 30,
                            "injected": p["injected"]["total_ms"]["median"] <= 30}
    out["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return out


def summary(r: dict[str, Any]) -> str:
    lines = [f"cameras_wall ({r['camera_count']} cameras, {r['workers']} workers; per second "
             f"{r['load_per_s']})  main-thread ms per second of updates"]
    st, si = r["static"]["live"], r["static_icons"]["live"]
    lines.append(f"  static   live {st['busy_ms_per_s']} (p90 {st['busy_p90_ms']}) with "
                 f"{r['camera_count']} cameras loaded and no camera updates, "
                 f"x{r['static']['ratio_live']}; at zoom {ICON_ZOOM}: {si['busy_ms_per_s']}")
    for phase in ("baseline", "cameras", "icons"):
        p = r[phase]
        lv, inj = p["live"], p["injected"]
        extra = "" if phase == "baseline" else (
            f"  ratio x{p['ratio_live']} / x{p['ratio_injected']}  camera updates add "
            f"{p['camera_updates_ms_per_s']}  <=30: {p['within_30ms']}")
        lines.append(f"  {phase:8} live {lv['busy_ms_per_s']} (p90 {lv['busy_p90_ms']}, "
                     f"draw {lv['layer_draw_ms_per_s']})  injected total "
                     f"{inj['total_ms']['median']} / p90 {inj['total_ms']['p90']} "
                     f"(apply {inj['busy_ms']['median']} + redraw {inj['redraw_ms']['median']})"
                     + extra)
    lines.append(f"  snapshot {r['snapshot_s']} s; city view {r['city_view']}; "
                 f"icon view {r['icon_view']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.cameras_wall",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--cameras", type=int, default=CAMERAS)
    args = parser.parse_args(argv)
    exit_on_sigterm()
    result = run(args.seconds, args.reps, args.cameras)
    OUT.mkdir(exist_ok=True)
    (OUT / "cameras_wall.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    print(summary(result), flush=True)
    return result


if __name__ == "__main__":
    main()
