"""The cockpit's Plotly charts (issue 16): building the figures, and the page's first full
draw against the old hand-drawn page in the same run.

    python -m bench.cockpit_plotly [--events 200000] [--reps 7] [--old-ref main]

On an embedded Valkey: `--events` archived events over the last year (bench.cockpit's
generator) and a live day. Then:

- the figures JSON (`Figures.figures`, the work behind `GET /api/stats`) and the Plotly
  figures from it (`layouts.cockpit_charts.charts`, the callback's work) for the city and a
  town, the default 30 days and this year: median of `--reps`, and their sizes;
- the page in headless Chromium at 1920×1080: from navigation to every chart drawn with the
  figures (`chartKeys` all equal `chartKey`), median of `--reps` fresh loads, the figures'
  cache warm; the old page of `--old-ref` (git archive of that commit, its own app process on
  the same Redis) to its hand-drawn map, trend and bars; and `GET /api/stats` fetched from
  the page alone, the floor under both;
- a redraw: new figures (the version moved) to every chart redrawn, on the new page.

Results: bench/results/cockpit_plotly.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis

from bench.browser import browser
from bench.cockpit import generate, live_day
from bench.latency import terminate
from dashboard.archive.stats import Figures
from dashboard.city import load_city
from dashboard.config import Settings
from dashboard.store import Store
from feeds.redis_server import EmbeddedRedis, free_port
from layouts import theme
from layouts.cockpit_charts import charts

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "results" / "cockpit_plotly.json"
SERVE = """
import dataclasses, sys
sys.path.insert(0, sys.argv[1])
from werkzeug.serving import make_server
from app import create_app
from dashboard.config import Settings
app = create_app(dataclasses.replace(Settings(), redis_url=sys.argv[2]))
make_server("127.0.0.1", int(sys.argv[3]), app.server, threaded=True).serve_forever()
"""
# in the page: until the figures are drawn, then the time since navigation (ms)
DRAWN_NEW = """
const done = arguments[arguments.length - 1];
(function check() {
  const c = window.ccwall && window.ccwall.cockpit;
  const keys = c && c.chartKey && c.chartKey.startsWith(c.shownKey + '|')
    ? Object.values(c.chartKeys()) : [];
  if (keys.length && keys.every(k => k === c.chartKey)) done(performance.now());
  else requestAnimationFrame(check);
})();"""
DRAWN_OLD = """
const done = arguments[arguments.length - 1];
(function check() {
  const c = window.ccwall && window.ccwall.cockpit;
  const trend = document.querySelectorAll('#cc-ck-trend .cc-ck-tcol').length;
  if (c && c.figures && c.mapShapes && trend) done(performance.now());
  else requestAnimationFrame(check);
})();"""
API_ONLY = """
const done = arguments[arguments.length - 1];
const t = performance.now();
fetch('/api/stats', {credentials: 'same-origin'}).then(r => r.json())
  .then(() => done(performance.now() - t));"""


def serve(root: Path, redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """The app of the tree at `root` on its own port (Werkzeug, threaded), ready."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(root), redis_url, str(port)],
                            cwd=root, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/login", timeout=2) as res:
                if res.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.3)
    terminate(proc, 5)
    raise RuntimeError(f"the app of {root} did not start")


def old_tree(ref: str) -> Path | None:
    """The repository at `ref` in a temporary folder (git archive), or None without git."""
    if shutil.which("git") is None:
        return None
    where = Path(tempfile.mkdtemp(prefix="cockpit-old-"))
    try:
        data = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True,
                              capture_output=True).stdout
    except subprocess.CalledProcessError:
        return None
    with tempfile.TemporaryFile() as tar:
        tar.write(data)
        tar.seek(0)
        with tarfile.open(fileobj=tar) as archive:
            archive.extractall(where, filter="data")
    return where


def sign_in(driver: Any, base: str, user: str, password: str) -> None:
    driver.get(base + "/login")
    ok = driver.execute_async_script("""const done = arguments[arguments.length - 1];
        fetch('/api/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
          body: JSON.stringify({username: arguments[0], password: arguments[1]})})
          .then(r => done(r.status), () => done(0));""", user, password)
    assert ok == 200, ok


def first_draw(driver: Any, url: str, script: str) -> float:
    driver.get(url)
    return float(driver.execute_async_script(script))


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def build_times(figs: Figures, now: int, reps: int) -> dict[str, Any]:
    city = load_city()
    centroids = {u.code: u.centroid for u in (*city.towns, *city.communities, *city.grids)}
    geo = {level: f"/geo/{level}.geojson" for level in theme.BOUNDARY_LEVELS}
    out: dict[str, Any] = {}
    for label, scope, rng in (("city_30d", None, None), ("city_year", None, "year"),
                              ("town_30d", city.towns[0].code, None)):
        span = figs.span(rng, None, None, now)
        stats_s, build_s = [], []
        fig: dict[str, Any] = {}
        drawn: dict[str, Any] = {}
        for _ in range(reps):
            fresh = Figures(figs.store, city, figs.settings)  # nothing memoised
            t = time.perf_counter()
            fig = fresh.figures(scope, now, span)
            stats_s.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            drawn = charts(fig, "zh-CN", 1.0, geo, centroids.get)
            build_s.append((time.perf_counter() - t) * 1000)
        out[label] = {"figures_ms": median_ms(stats_s), "charts_ms": median_ms(build_s),
                      "charts_over_figures": round(statistics.median(build_s)
                                                   / statistics.median(stats_s), 3),
                      "figures_json_bytes": len(orjson.dumps(fig)),
                      "charts_json_bytes": len(orjson.dumps(drawn))}
        print(label, out[label], flush=True)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.cockpit_plotly",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--old-ref", default="main",
                        help="the commit whose hand-drawn page is the baseline")
    args = parser.parse_args(argv)
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="cockpit-plotly-")),
                           persist=False).start()
    try:
        return run(server.url, args.events, args.reps, args.old_ref)
    finally:
        server.stop()


def run(url: str, events: int, reps: int, old_ref: str) -> dict[str, Any]:
    settings = dataclasses.replace(Settings(), redis_url=url)
    r = redis.Redis.from_url(url)
    text = redis.Redis.from_url(url, decode_responses=True)
    store = Store(text, settings.prefix)
    now = int(time.time() * 1000)
    generate(r, store, settings, events, now)
    live_day(store, now, 3000)
    figs = Figures(store, load_city(), settings)
    builds = build_times(figs, now, reps)

    from tests.auth_util import make_user  # the same sign-in the tests use

    user, password = make_user(text, "leader", "bench-plotly", settings.prefix)
    procs: list[subprocess.Popen[bytes]] = []
    driver = None
    old_root = old_tree(old_ref)
    try:
        new_proc, new_base = serve(ROOT, url)
        procs.append(new_proc)
        old_base = None
        if old_root is not None:
            old_proc, old_base = serve(old_root, url)
            procs.append(old_proc)
        driver = browser(new_base + "/login")
        sign_in(driver, new_base, user, password)  # one cookie: both apps share sessions
        first_draw(driver, new_base + "/cockpit", DRAWN_NEW)  # warm the figures' cache
        if old_base:
            first_draw(driver, old_base + "/cockpit", DRAWN_OLD)
        new_ms, old_ms, api_ms = [], [], []
        for _ in range(reps):  # alternated, so a busy moment hits both alike
            new_ms.append(first_draw(driver, new_base + "/cockpit", DRAWN_NEW))
            if old_base:
                old_ms.append(first_draw(driver, old_base + "/cockpit", DRAWN_OLD))
            api_ms.append(float(driver.execute_async_script(API_ONLY)))
        # a redraw: the version moves, the next poll brings new figures, every chart redraws
        first_draw(driver, new_base + "/cockpit", DRAWN_NEW)
        redraw_ms = []
        for _ in range(reps):
            before = driver.execute_script("return window.ccwall.cockpit.chartKey")
            text.incr(f"{settings.prefix}stats:ver")
            while driver.execute_script("return window.ccwall.cockpit.chartKey") == before:
                time.sleep(0.01)  # the page polls every 5 s: the wait for the poll is not timed
            t = time.perf_counter()
            driver.execute_async_script(DRAWN_NEW)
            redraw_ms.append((time.perf_counter() - t) * 1000)
        print(f"first draw new {median_ms(new_ms)} ms, old {median_ms(old_ms or [0])} ms, "
              f"api {median_ms(api_ms)} ms, redraw {median_ms(redraw_ms)} ms", flush=True)
    finally:
        if driver is not None:
            driver.quit()
        for proc in procs:
            terminate(proc, 5)
        if old_root is not None:
            shutil.rmtree(old_root, ignore_errors=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpu, "
                   f"Python {platform.python_version()}",
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "events": events, "reps": reps, "old_ref": old_ref if old_ms else None,
        "build": builds,
        "first_draw_ms": {"plotly": median_ms(new_ms),
                          "hand_drawn": median_ms(old_ms) if old_ms else None,
                          "api_stats_only": median_ms(api_ms),
                          "plotly_runs": [round(x) for x in new_ms],
                          "hand_drawn_runs": [round(x) for x in old_ms]},
        "ratio_plotly_over_hand_drawn": (round(statistics.median(new_ms)
                                               / statistics.median(old_ms), 2)
                                         if old_ms else None),
        "ratio_plotly_over_api": round(statistics.median(new_ms) / statistics.median(api_ms),
                                       1),
        "redraw_after_new_figures_ms": median_ms(redraw_ms),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


def summary(result: dict[str, Any]) -> str:
    return "cockpit plotly " + json.dumps({k: result[k] for k in (
        "events", "first_draw_ms", "ratio_plotly_over_hand_drawn",
        "redraw_after_new_figures_ms")}, ensure_ascii=False)


if __name__ == "__main__":
    print(json.dumps(main(), indent=1, ensure_ascii=False))
