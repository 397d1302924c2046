"""Situation replay: the history's bytes per day and the time to the first picture, for
Pingdu and a Bao'an-sized city (issue 16, dashboard/replay/, docs/REPLAY.md).

    python -m bench.replay [--minutes 12] [--moments 20] [--city pingdu|bao] [--no-browser]
                           [--profile]

Each city on a fresh embedded Valkey, filled as bench.snapshot fills it (the simulator's
world through an in-process ingest until every unit is stored); then `--minutes` of the
simulator's demo load at ×1 (every worker, vehicle and camera reporting as in the demo,
events, feedback) go through the real ingest and the real watch service, both on the
simulation's clock (the ingest's `received` is the simulated time), in 5-second steps. The
watch records the history as it does in production (keyframes every 10 minutes, thinned
minute chunks). Then:

- bytes: `MEMORY USAGE` of every `Preplay:*` key, split into minute chunks, keyframe heads
  and blocks; per day = the chunks' bytes a minute × 1,440 + a keyframe's new blocks × 144
  + the cameras' blocks × 24 (taken anew hourly; counted as if all changed) (the blocks of
  the first keyframe are counted once: what did not change is shared).
  Baseline in the same run: the change log's own bytes for the same minutes (every entry's
  fields as the log holds them, unthinned, uncompressed): what keeping the log would cost;
- the first picture: `History.wall_at` + the JSON the route sends, at `--moments` random
  moments of the recorded span, city-wide and for one town; baseline: the live wall's
  snapshot read (`Store.snapshot_parts`) and frame at the end of the run;
- playback: entries kept a minute (at ×60 the wall applies that many a second) and the
  time to read 15 minutes of changes (one `/api/replay/changes` request);
- in the browser (every city; `--no-browser` skips it): `python app.py --no-demo` on the same
  Valkey, the wall in headless Chromium signed in as a commander, `ccwall.replay.seek` to
  random recorded moments (time to the picture painted: the request, the JSON, the store,
  the map and panels), then 10 s of play at ×1 (the baseline) and 10 s at ×60 from a minute
  in (animation frames a second, the longest frame, the main thread's long tasks, the
  history played, and the CPU every Chromium process spent, per second and per frame: on a
  busy host frames a second alone mislead). The simulation is run 20 minutes longer ago
  than it lasts, so its whole record lies in the past. `--profile` also writes a CPU profile
  of the ×60 play (bench/results/replay-play.cpuprofile, for Chrome's DevTools) and lists
  the heaviest functions and the page's layout and style counters.

Results: bench/results/replay.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import redis

import feeds.ingest
import feeds.sim.engine
from bench.browser import browser, chromium_procs, cpu_seconds, page_metrics
from bench.latency import OUT, ROOT, load, terminate, wait_for
from bench.snapshot import TOWN
from dashboard.access.auth import Auth
from dashboard.city import load_city
from dashboard.config import Settings
from dashboard.replay import history as h
from dashboard.replay.reader import History
from dashboard.store import Store
from feeds.fanout import snapshot_frame
from feeds.ingest import Ingest
from feeds.redis_server import EmbeddedRedis, free_port
from feeds.sim.engine import Simulator
from feeds.watch import Watch

CITIES = (("Pingdu", 2140, 3000), ("Bao'an-sized", 4866, 42_000))
STEP_S = 5.0


class SimTime:
    """The ingest's `time` module, reading the simulation's clock (time.time only)."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def _fill(url: str, settings: Settings, workers: int, cameras: int, minutes: int
          ) -> tuple[Simulator, Ingest]:
    ingest = Ingest(settings, url)
    ingest.store = Store(redis.Redis.from_url(url), "cc:", settings.log_maxlen)
    sim = Simulator(load_city(), workers=workers, cameras=cameras, settings=settings,
                    video_base="http://127.0.0.1:8060")
    r = redis.Redis.from_url(url)
    # the simulation runs far enough in the past that its whole record lies behind now when
    # it is done, so the browser may ask for any of it at once
    past = SimTime()
    past.now = time.time() - (minutes + 20) * 60
    real_time, feeds.sim.engine.time = feeds.sim.engine.time, past  # type: ignore[assignment]
    try:
        pending = sim.warm_up()
    finally:
        feeds.sim.engine.time = real_time  # type: ignore[assignment]
    t = sim.s
    while True:
        for i in range(0, len(pending), 2000):
            ingest.handle(pending[i:i + 2000])
        if (r.hlen("cc:state:worker") >= len(sim.world.workers)
                and r.hlen("cc:state:camera") >= len(sim.world.cameras)):
            return sim, ingest
        t += 60.0
        pending = sim.advance(t)


def _log_bytes(r: redis.Redis, after: int) -> tuple[int, int, int]:
    """Bytes and count of the log's entries after `after`; the last seq."""
    total = n = 0
    last = after
    while True:
        got = r.xrange("cc:log", min=f"({last}-0", max="+", count=5000)
        if not got:
            return total, n, last
        for entry_id, fields in got:
            total += sum(len(k) + len(v) for k, v in fields.items())
            n += 1
            last = int(entry_id.split(b"-")[0])


def _memory(r: redis.Redis, pattern: str) -> int:
    return sum(int(r.memory_usage(k) or 0) for k in r.scan_iter(pattern, count=1000))


def _ms(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def _stats(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"median": round(statistics.median(xs), 1),
            "p95": round(xs[min(len(xs) - 1, int(len(xs) * 0.95))], 1),
            "max": round(xs[-1], 1)}


PICTURE_JS = """
var done = arguments[arguments.length - 1], t0 = performance.now();
ccwall.replay.seek(arguments[0]).then(function () {
  requestAnimationFrame(function () { setTimeout(function () {
    done({ms: performance.now() - t0, workers: ccwall.store.size('worker'),
          at: ccwall.replay.probe().at});
  }, 0); });
});"""

PLAY_JS = """
var done = arguments[arguments.length - 1], gaps = [], long = 0, last = performance.now();
var obs = new PerformanceObserver(function (l) {
  l.getEntries().forEach(function (e) { long += e.duration; });
});
try { obs.observe({entryTypes: ['longtask']}); } catch (e) { /* not offered */ }
var from = ccwall.replay.probe().at, end = performance.now() + 10000;
ccwall.replay.speed(arguments[0]); ccwall.replay.play();
(function frame(now) {
  gaps.push(now - last); last = now;
  if (now < end) return requestAnimationFrame(frame);
  ccwall.replay.pause(); obs.disconnect();
  gaps.sort(function (a, b) { return a - b; });
  done({frames_per_s: gaps.length / 10, p99_frame_ms: gaps[Math.floor(gaps.length * 0.99)],
        max_frame_ms: gaps[gaps.length - 1], long_task_ms_per_s: long / 10,
        history_s: (ccwall.replay.probe().at - from) / 1000});
})(performance.now());"""


def _metrics(driver: Any) -> dict[str, float]:
    """The page's layout and style counters and durations (ms)."""
    return {k: v * (1000 if k.endswith("Duration") else 1)
            for k, v in page_metrics(driver).items() if k.endswith(("Duration", "Count"))}


def _top_self(profile: dict[str, Any], n: int = 25) -> dict[str, float]:
    """A Chrome CPU profile's functions by self time (ms), the heaviest first."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    ticks: dict[int, int] = {}
    for sample in profile["samples"]:
        ticks[sample] = ticks.get(sample, 0) + 1
    per_sample = ((profile["endTime"] - profile["startTime"]) / 1000
                  / max(1, len(profile["samples"])))
    by_name: dict[str, float] = {}
    for node_id, count in ticks.items():
        frame = nodes[node_id]["callFrame"]
        name = (f"{frame['functionName'] or '(anon)'} {frame['url'].rsplit('/', 1)[-1]}"
                f":{frame['lineNumber'] + 1}")
        by_name[name] = by_name.get(name, 0.0) + count * per_sample
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:n]
    return {name: round(ms, 1) for name, ms in top}


def browser_phase(url: str, start_ms: int, end_ms: int, moments: int, profile: bool = False
                  ) -> dict[str, Any]:
    """The wall in Chromium on the recorded Valkey: pictures and ×60 play (see above)."""
    with tempfile.TemporaryDirectory() as data:
        port, ws_port = free_port(), free_port()
        env = {**os.environ, "CC_DATA_DIR": data, "REDIS_URL": url}
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--ws-port",
                                 str(ws_port), "--no-demo"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}/"
        driver = None
        try:
            wait_for(lambda: urllib.request.urlopen(base + "api/health", timeout=2).status
                     == 200, 90, "the wall's HTTP server")
            client = redis.Redis.from_url(url, decode_responses=True)
            Auth(client, "cc:", Settings()).add_user("bench-replay", "commander",
                                                     "bench-replay-Pw-2026")
            driver = browser(base + "login?next=/api/me")
            driver.find_element("id", "cc-login-user").send_keys("bench-replay")
            driver.find_element("id", "cc-login-password").send_keys("bench-replay-Pw-2026")
            driver.find_element("id", "cc-login-submit").click()
            wait_for(lambda: urllib.parse.urlsplit(driver.current_url).path == "/api/me", 20,
                     "signed in")
            driver.get(base)
            try:
                wait_for(lambda: driver.execute_script(
                    "return window.ccwall && ccwall.connected && !!ccwall.mapview.map()"
                    " && ccwall.store.size('worker') > 2000"), 90, "the live wall")
            except TimeoutError:
                print("the wall:", driver.current_url, driver.execute_script(
                    "return window.ccwall ? [ccwall.connected, ccwall.state,"
                    " ccwall.recentFrames.length] : null"), driver.get_log("browser")[-5:],
                      flush=True)
                raise
            time.sleep(2.0)
            rng = random.Random(61)
            # the simulation ran ahead of the clock: only a moment before now may be asked for
            # (11 minutes behind now are played at ×60 for 10 s below)
            while int(time.time() * 1000) < start_ms + 11 * 60_000 + 30_000:
                time.sleep(5)
            latest = min(end_ms, int(time.time() * 1000) - 1000)
            pictures = []
            for _ in range(moments):
                at = rng.randrange(start_ms + 60_000, latest)
                got = driver.execute_async_script(PICTURE_JS, at)
                assert got["at"] == at and got["workers"] > 2000, got
                pictures.append(got["ms"])
            driver.execute_async_script(PICTURE_JS, start_ms + 60_000)
            # the baseline in the same run: the same record played at ×1
            cpu = cpu_seconds(chromium_procs(driver))
            slow = driver.execute_async_script(PLAY_JS, 1)
            slow["chromium_cpu_ms_per_s"] = (cpu_seconds(chromium_procs(driver)) - cpu) * 100
            driver.execute_async_script(PICTURE_JS, start_ms + 60_000)
            if profile:
                driver.execute_cdp_cmd("Profiler.enable", {})
                driver.execute_cdp_cmd("Profiler.setSamplingInterval", {"interval": 200})
                driver.execute_cdp_cmd("Profiler.start", {})
                driver.execute_cdp_cmd("Performance.enable", {})
                before = _metrics(driver)
            cpu = cpu_seconds(chromium_procs(driver))
            play = driver.execute_async_script(PLAY_JS, 60)
            cpu = (cpu_seconds(chromium_procs(driver)) - cpu) * 1000
            play["chromium_cpu_ms_per_frame"] = cpu / max(1.0, play["frames_per_s"] * 10)
            play["chromium_cpu_ms_per_s"] = cpu / 10
            if profile:
                got = driver.execute_cdp_cmd("Profiler.stop", {})["profile"]
                OUT.mkdir(parents=True, exist_ok=True)
                (OUT / "replay-play.cpuprofile").write_text(json.dumps(got))
                after = _metrics(driver)
                play["top_self_ms"] = {**{k: round(after[k] - before.get(k, 0), 1)
                                          for k in sorted(after) if after[k] != before.get(k)},
                                       **_top_self(got)}
            logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        finally:
            if driver is not None:
                driver.quit()
            terminate(proc, 20)
    top = play.pop("top_self_ms", None)
    return {"picture_ms": _stats(pictures), "play_x60": {k: round(v, 1)
                                                         for k, v in play.items()},
            "play_x1": {k: round(v, 1) for k, v in slow.items()},
            **({"play_top_self_ms": top} if top else {}),
            "console_errors": len(logs)}


def run_city(name: str, workers: int, cameras: int, minutes: int, moments: int,
             in_browser: bool = False, profile: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, \
            EmbeddedRedis(Path(tmp), persist=False) as server:
        settings = dataclasses.replace(Settings(), redis_url=server.url, log_maxlen=2_000_000,
                                       watch_tick_s=0)
        sim, ingest = _fill(server.url, settings, workers, cameras, minutes)
        r = redis.Redis.from_url(server.url)
        text = redis.Redis.from_url(server.url, decode_responses=True)
        shim = SimTime()
        real_time = feeds.ingest.time
        feeds.ingest.time = shim  # type: ignore[assignment]
        try:
            t = sim.s
            shim.now = sim.wall0 + t / sim.rate
            clock = Clock(int(shim.now * 1000))
            watch = Watch(settings, server.url, clock=clock)
            watch.attach(text)
            while watch.process(5000):
                pass
            _, _, seq0 = _log_bytes(r, 0)
            # the city's filling is no part of a day: its minutes are dropped, and the
            # first keyframe holds what it made
            assert watch.history.recorder is not None
            watch.history.recorder.close_minute()
            for key in r.scan_iter("cc:replay:m:*", count=1000):
                r.delete(key)
            watch.tick()  # the first keyframe
            first_blocks = _memory(r, "cc:replay:b:*")
            start_ms = clock.ms
            raw = entries = 0
            last = seq0
            for _ in range(int(minutes * 60 / STEP_S)):
                t += STEP_S
                shim.now = sim.wall0 + t / sim.rate
                clock.ms = int(shim.now * 1000)
                pending = sim.advance(t)
                for i in range(0, len(pending), 2000):
                    ingest.handle(pending[i:i + 2000])
                got, n, last = _log_bytes(r, last)
                raw, entries = raw + got, entries + n
                while watch.process(5000):
                    pass
                watch.tick()
            clock.ms += h.MINUTE_MS  # the last minute is over: written
            watch.tick()
            end_ms = clock.ms - h.MINUTE_MS
        finally:
            feeds.ingest.time = real_time  # type: ignore[assignment]
        recorder = watch.history.recorder
        assert recorder is not None
        keyframes = recorder.keyframes
        chunks = _memory(r, "cc:replay:m:*")
        heads = _memory(r, "cc:replay:k:*")
        blocks = _memory(r, "cc:replay:b:*")
        by_kind: dict[str, int] = {}
        for key in r.scan_iter("cc:replay:m:*", count=1000):
            for entry in h.entries(r.get(key)):
                what = f"{entry[2]}.{entry[3]}"
                by_kind[what] = by_kind.get(what, 0) + 1
        kept = sum(by_kind.values())
        new_blocks = (blocks - first_blocks) / max(1, keyframes - 1)
        # the cameras are taken anew once an hour (h.CAMERAS_EVERY_MS): counted as if every
        # block changed each time (an upper bound; unchanged ones are shared)
        first_head = orjson.loads(r.get(f"cc:replay:k:{start_ms}") or b"{}")
        camera_blocks = sum(int(r.memory_usage(h.block_key("cc:", digest)) or 0)
                            for digest in first_head.get("blocks", {}).get("cameras", []))
        per_day = (chunks / minutes * 1440 + (new_blocks + heads / keyframes) * 144
                   + camera_blocks * (h.DAY_MS // h.CAMERAS_EVERY_MS))
        raw_day = raw / minutes * 1440
        history = History(text, "cc:", settings.replay_days)
        rng = random.Random(16)
        city_ms, town_ms = [], []
        for _ in range(moments):
            at = rng.randrange(start_ms, end_ms)
            took, wall = _ms(lambda a=at: orjson.dumps(history.wall_at(a, None)))
            city_ms.append(took)
            took, _ = _ms(lambda a=at: orjson.dumps(history.wall_at(a, TOWN)))
            town_ms.append(took)
        bytes_city = len(wall)
        store = Store(text, "cc:")
        live_ms = []
        for _ in range(5):
            took, _ = _ms(lambda: snapshot_frame(store.snapshot_parts(), None, None, {}, 0))
            live_ms.append(took)
        changes_ms, got = _ms(lambda: history.changes(0, start_ms, start_ms + 15 * h.MINUTE_MS,
                                                      None))
        row = {
            "city": name, "workers": r.hlen("cc:state:worker"),
            "resources": r.hlen("cc:state:resource"), "cameras": r.hlen("cc:state:camera"),
            "minutes": minutes, "log_entries": entries,
            "log_entries_per_min": round(entries / minutes),
            "kept_per_min": round(kept / minutes), "keyframes": keyframes,
            "kept_per_min_by_kind": {k: round(v / minutes) for k, v in sorted(by_kind.items())},
            "bytes": {"chunks": chunks, "heads": heads, "blocks": blocks,
                      "first_keyframe_blocks": first_blocks,
                      "camera_blocks": camera_blocks,
                      "new_blocks_per_keyframe": round(new_blocks)},
            "per_day_bytes": round(per_day), "per_day_mb": round(per_day / 1e6, 1),
            "retention_days": settings.replay_days,
            "retention_mb": round((per_day * settings.replay_days + first_blocks) / 1e6),
            "log_per_day_mb": round(raw_day / 1e6, 1),
            "history_over_log": round(per_day / raw_day, 3) if raw_day else None,
            "first_picture_ms": _stats(city_ms), "first_picture_town_ms": _stats(town_ms),
            "picture_bytes": bytes_city,
            "live_snapshot_ms": _stats(live_ms),
            "picture_over_live": round(statistics.median(city_ms)
                                       / statistics.median(live_ms), 2),
            "changes_15min_ms": round(changes_ms, 1),
            "changes_15min": len(got["changes"]),
        }
        print(json.dumps(row, ensure_ascii=False), flush=True)
        if in_browser:
            row["browser"] = browser_phase(server.url, start_ms, end_ms, min(moments, 8),
                                           profile)
            print(json.dumps({"city": name, "browser": row["browser"]}), flush=True)
        return row


def run(minutes: int, moments: int, only: str = "", in_browser: bool = True,
        profile: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "load_before": load(), "cities": []}
    for name, workers, cameras in CITIES:
        if only and not name.lower().startswith(only.lower()):
            continue
        result["cities"].append(run_city(name, workers, cameras, minutes, moments,
                                         in_browser, profile))
    result["load_after"] = load()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "replay.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return result


def summary(result: dict[str, Any]) -> str:
    lines = ["replay: city  MB/day (× the log's)  first picture median/p95 ms (town)  "
             "kept/min"]
    for c in result["cities"]:
        lines.append(f"  {c['city']:>13}  {c['per_day_mb']} ({c['history_over_log']})  "
                     f"{c['first_picture_ms']['median']}/{c['first_picture_ms']['p95']} "
                     f"({c['first_picture_town_ms']['median']})  {c['kept_per_min']}")
        if "browser" in c:
            lines.append(f"  {'':>13}  browser: picture {c['browser']['picture_ms']} ms, "
                         f"×60 {c['browser']['play_x60']}")
    lines.append(f"  load {result['load_before']['loadavg']} → {result['load_after']['loadavg']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.replay",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=12)
    parser.add_argument("--moments", type=int, default=20)
    parser.add_argument("--city", default="", help="only this city (pingdu, bao)")
    parser.add_argument("--no-browser", action="store_true", help="skip the browser phase")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the ×60 play (bench/results/replay-play.cpuprofile)")
    args = parser.parse_args(argv)
    result = run(args.minutes, args.moments, args.city, not args.no_browser, args.profile)
    print(summary(result))
    return result


if __name__ == "__main__":
    main()
