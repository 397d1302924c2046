"""Publish-to-screen latency of an event on the wall, against a polling Dash page.

Starts the real stack (`python app.py`, simulator at rate 1) on its own embedded Valkey,
opens the wall in headless Chromium and waits for the simulator's workers. Then publishes
probe events on `cc:event` 100-300 ms apart and reads `ccwall.appliedAt` (the frame that
painted each probe). Baseline in the same run, in a second browser: a minimal Dash page
polling the newest 30 events from Redis every second (`dcc.Interval`), with a
MutationObserver noting when each probe id first enters its DOM.

    python -m bench.latency [--probes 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from werkzeug.serving import WSGIRequestHandler

from bench.browser import browser, kiosk_url
from feeds.redis_server import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"
PROBE_LON, PROBE_LAT = 119.96, 36.78

# Every element with a data-id, stamped the first time it is seen (timeOrigin-based ms).
OBSERVE_JS = """
window.__seen = {};
function ccScan() {
  var now = performance.timeOrigin + performance.now();
  document.querySelectorAll('[data-id]').forEach(function (el) {
    var id = el.getAttribute('data-id');
    if (!(id in window.__seen)) window.__seen[id] = now;
  });
}
ccScan();
new MutationObserver(ccScan).observe(document.body, {subtree: true, childList: true,
  attributes: true, attributeFilter: ['data-id'], characterData: true});
"""

# In the wall: when each probe's frame reaches applyFrame (transport vs paint), and long tasks.
WALL_HOOK_JS = """
window.__recv = {}; window.__long = [];
var orig = ccwall.store.applyFrame;
ccwall.store.applyFrame = function (f) {
  if (f && f.type === 'delta' && f.data && String(f.data.id).indexOf('probe-') === 0 &&
      !(f.data.id in window.__recv)) window.__recv[f.data.id] = performance.timeOrigin +
      performance.now();
  return orig.apply(this, arguments);
};
try {
  new PerformanceObserver(function (list) {
    list.getEntries().forEach(function (e) { window.__long.push(e.duration); });
  }).observe({type: 'longtask'});
} catch (e) { /* no Long Tasks API */ }
"""

# The page clock (timeOrigin + now) minus the system clock (Date.now), in ms.
OFFSET_JS = "return performance.timeOrigin + performance.now() - Date.now();"


def wait_for(fn: Any, timeout: float, what: str, every: float = 0.25) -> Any:
    """Poll `fn` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = fn()
        except Exception:  # the page may still be loading
            value = None
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def terminate(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM a process the bench started (it stops its own children), SIGKILL after
    `timeout` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def stack(demo: bool = True) -> Iterator[tuple[str, str]]:
    """`python app.py` on a fresh embedded Valkey; yields (wall URL, Redis URL)."""
    port, ws_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data, \
            EmbeddedRedis(Path(data) / "redis", persist=False) as server:
        # no demo history (docs/DEMO.md): the live path is measured, on the same store as before
        env = {**os.environ, "CC_SIM_RATE": "1", "CC_DATA_DIR": data, "REDIS_URL": server.url,
               "CC_DEMO_HISTORY_DAYS": "0"}
        argv = [sys.executable, "app.py", "--port", str(port), "--ws-port", str(ws_port)]
        proc = subprocess.Popen(argv + ([] if demo else ["--no-demo"]), cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_for(lambda: urllib.request.urlopen(url + "api/health", timeout=2).status
                     == 200, 60,
                     "the wall's HTTP server")
            yield url, server.url
        finally:
            terminate(proc, 20)


@contextmanager
def polling_page(redis_url: str) -> Iterator[str]:
    """The baseline: a plain Dash page polling the newest 30 events every second."""
    import dash
    from dash import Input, Output, dcc, html
    from werkzeug.serving import make_server

    from dashboard.store import Store

    store = Store(redis.Redis.from_url(redis_url, decode_responses=True), "cc:")
    with tempfile.TemporaryDirectory() as assets:
        app = dash.Dash("cc_baseline", assets_folder=assets, serve_locally=True,
                        update_title=None)
        app.layout = html.Div([dcc.Interval(id="tick", interval=1000),
                               html.Ul(id="events")])

        @app.callback(Output("events", "children"), Input("tick", "n_intervals"))
        def newest(_n: int | None) -> list[Any]:
            return [html.Li(f"{e['id']} {e.get('type')} {e.get('severity')}",
                            **{"data-id": e["id"]}) for e in store.events(limit=30)]

        port = free_port()
        http = make_server("127.0.0.1", port, app.server, threaded=True,
                           request_handler=QuietHandler)
        thread = threading.Thread(target=http.serve_forever, daemon=True, name="baseline")
        thread.start()
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            http.shutdown()


class QuietHandler(WSGIRequestHandler):
    """No access log line per poll."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """n, p50, p90, p99, max (linear interpolation), in ms."""
    xs = sorted(values)
    out: dict[str, float | int | None] = {"n": len(xs)}

    def q(p: float) -> float | None:
        if not xs:
            return None
        k = (len(xs) - 1) * p
        lo = int(k)
        hi = min(lo + 1, len(xs) - 1)
        return round(xs[lo] + (xs[hi] - xs[lo]) * (k - lo), 1)

    for name, p in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
        out[name] = q(p)
    return out


def quarters(values: list[float]) -> list[float | int | None]:
    """p50 of each quarter of the run, in publish order."""
    n = len(values)
    return [percentiles(values[i * n // 4:(i + 1) * n // 4])["p50"] for i in range(4)]


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the stack and browsers are stopped by `finally`."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def load() -> dict[str, Any]:
    """Machine load now, to record next to the figures."""
    import psutil

    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
            "cpu_pct": psutil.cpu_percent(interval=0.5)}


def run(probes: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    with stack() as (wall_url, redis_url), polling_page(redis_url) as base_url:
        client = redis.Redis.from_url(redis_url)
        wall = base = None
        try:
            wall, base = browser(kiosk_url(wall_url, redis_url)), browser(base_url)
            wait_for(lambda: wall.execute_script(
                "return window.ccwall && ccwall.connected && ccwall.state.workers > 2000"),
                180, "the wall to show > 2000 workers", every=1.0)
            wait_for(lambda: base.execute_script(
                "return document.querySelectorAll('[data-id]').length"), 60,
                "the baseline page's list")
            base.execute_script(OBSERVE_JS)
            wall.execute_script(WALL_HOOK_JS)
            offsets0 = [wall.execute_script(OFFSET_JS), base.execute_script(OFFSET_JS)]
            load_before = load()
            sent: dict[str, float] = {}
            for n in range(probes):
                pid = f"probe-{n}"
                now = time.time() * 1000
                msg = {"id": pid, "type": "fire", "severity": 2, "lon": PROBE_LON,
                       "lat": PROBE_LAT, "ts": int(now), "title": "latency probe",
                       "source": "other"}
                data = json.dumps(msg)
                sent[pid] = time.time() * 1000  # just before the PUBLISH
                client.publish("cc:event", data)
                time.sleep(rng.uniform(0.1, 0.3))
            load_during = load()
            time.sleep(3.0)  # the baseline polls once a second: let the last probes land
            offsets1 = [wall.execute_script(OFFSET_JS), base.execute_script(OFFSET_JS)]
            wall_seen: dict[str, float] = dict(wall.execute_script(
                "return Array.from(ccwall.appliedAt).filter(function (e) {"
                " return e[0].indexOf('probe-') === 0; });"))
            base_seen: dict[str, float] = base.execute_script(
                "var o = {}; Object.keys(window.__seen).forEach(function (k) {"
                " if (k.indexOf('probe-') === 0) o[k] = window.__seen[k]; }); return o;")
            wall_recv: dict[str, float] = wall.execute_script("return window.__recv")
            longs: list[float] = wall.execute_script("return window.__long")
            wall_state = wall.execute_script("return ccwall.state")
            rejected = int(client.get("cc:deadletter:count") or 0)
        finally:
            for d in (wall, base):
                if d is not None:
                    d.quit()
    # Page clock vs system clock (Python's time.time and Date.now are the same clock).
    wall_off = (offsets0[0] + offsets1[0]) / 2
    base_off = (offsets0[1] + offsets1[1]) / 2
    wall_ms = [wall_seen[p] - wall_off - t for p, t in sent.items() if p in wall_seen]
    base_ms = [base_seen[p] - base_off - t for p, t in sent.items() if p in base_seen]
    if not wall_ms or not base_ms:
        raise RuntimeError(f"probes not seen: wall {len(wall_ms)}, baseline {len(base_ms)} of "
                           f"{probes} ({rejected} messages dead-lettered)")
    w, b = percentiles(wall_ms), percentiles(base_ms)
    recv_ms = [wall_recv[p] - wall_off - t for p, t in sent.items() if p in wall_recv]
    paint_ms = [wall_seen[p] - wall_recv[p] for p in sent if p in wall_seen and p in wall_recv]

    def ratio(key: str) -> float | None:
        wv, bv = w.get(key), b.get(key)
        return round(float(bv) / float(wv), 2) if wv and bv else None

    return {
        "probes": probes,
        "wall_ms": w,
        "baseline_ms": b,
        "baseline_over_wall": {"p50": ratio("p50"), "p99": ratio("p99")},
        "targets": {"wall_p50_le_50": bool(w["p50"] is not None and w["p50"] <= 50),
                    "wall_p99_le_250": bool(w["p99"] is not None and w["p99"] <= 250)},
        "wall_breakdown_ms": {
            "publish_to_applyFrame": percentiles(recv_ms),
            "applyFrame_to_painted": percentiles(paint_ms),
        },
        # does latency grow as probes pile up (each is an open level-II event on the wall)?
        "p50_by_quarter": {"wall": quarters(wall_ms), "baseline": quarters(base_ms)},
        "wall_long_tasks": {"count": len(longs), "total_ms": round(sum(longs)),
                            "max_ms": round(max(longs), 1) if longs else None},
        "missing": {"wall": probes - len(wall_ms), "baseline": probes - len(base_ms)},
        "clock_offset_ms": {"wall": [round(offsets0[0], 2), round(offsets1[0], 2)],
                            "baseline": [round(offsets0[1], 2), round(offsets1[1], 2)]},
        "wall_state": wall_state,
        "deadletters_in_run": rejected,
        "load": {"before": load_before, "during": load_during},
        "raw": {"wall": [round(x, 1) for x in wall_ms],
                "baseline": [round(x, 1) for x in base_ms]},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def summary(result: dict[str, Any]) -> str:
    w, b, r = result["wall_ms"], result["baseline_ms"], result["baseline_over_wall"]
    return (f"latency ({result['probes']} probes) ms   p50 / p90 / p99 / max\n"
            f"  wall     {w['p50']} / {w['p90']} / {w['p99']} / {w['max']}   (n={w['n']})\n"
            f"  baseline {b['p50']} / {b['p90']} / {b['p99']} / {b['max']}   (n={b['n']})\n"
            f"  wall publish->applyFrame p50 "
            f"{result['wall_breakdown_ms']['publish_to_applyFrame']['p50']}, applyFrame->painted "
            f"p50 {result['wall_breakdown_ms']['applyFrame_to_painted']['p50']}; wall long tasks "
            f"{result['wall_long_tasks']}\n"
            f"  p50 by quarter of the run: wall {result['p50_by_quarter']['wall']}, "
            f"baseline {result['p50_by_quarter']['baseline']}\n"
            f"  baseline/wall: p50 x{r['p50']}, p99 x{r['p99']}; targets {result['targets']}; "
            f"load {result['load']['during']['loadavg']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.latency",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200)
    args = parser.parse_args(argv)
    exit_on_sigterm()
    result = run(args.probes)
    OUT.mkdir(exist_ok=True)
    (OUT / "latency.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    print(summary(result), flush=True)
    return result


if __name__ == "__main__":
    main()
