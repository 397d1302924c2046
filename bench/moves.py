"""Main-thread time for the wall to apply one second of moves of all 2,140 workers.

Starts the stack without the simulator (a quiet page, so nothing else runs between the
marks), publishes 2,140 workers through the real ingest and opens the wall. Each rep builds
a `batch` frame moving every worker ~10 m and times `ccwall.applyFrame(frame)` up to the task
after the next animation frame (Leaflet's canvas redraws in rAF). Baseline in the same page,
reps interleaved: what a Dash app does with a new GeoJSON `data` prop — remove the
`L.geoJSON` layer of the same 2,140 points as circle markers and build a new one.

Per rep: `span_ms` = t0 → task after the next frame (the brief's measure; includes the idle
wait for vsync), `busy_ms` = synchronous work + that frame's rAF callbacks, style, layout and
paint (span minus the idle wait before the frame).

    python -m bench.moves [--reps 30]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

import redis

from bench.browser import kiosk_url
from bench.latency import OUT, browser, exit_on_sigterm, load, stack, wait_for
from dashboard.city import load_city

WORKERS = 2140

# Shared by both variants: time work() to the task after the frame that draws it.
MEASURE_JS = """
window.__ccMeasure = function (work, done) {
  var tMark = null;
  requestAnimationFrame(function () { tMark = performance.now(); });  // first in the frame
  var t0 = performance.now();
  work();
  var tJs = performance.now();
  requestAnimationFrame(function () {  // after Leaflet's redraw callbacks
    var ch = new MessageChannel();
    ch.port1.onmessage = function () {
      var t1 = performance.now();
      done({span_ms: t1 - t0, js_ms: tJs - t0, busy_ms: (tJs - t0) + (t1 - tMark),
            idle_ms: tMark - tJs});
    };
    ch.port2.postMessage(0);
  });
};
window.__ccMap = ccwall.mapview.map();
window.__ccNaive = null;
return {zoom: __ccMap.getZoom(), preferCanvas: !!__ccMap.options.preferCanvas,
        workers: ccwall.state.workers};
"""

# arguments: sign (+1/-1). Build the frame outside the timing (as JSON text, the socket's form).
WALL_REP_JS = """
var done = arguments[arguments.length - 1], d = 0.0001 * arguments[0];
var items = [];
ccwall.store.each('worker', function (rec) {
  var data = Object.assign({}, rec);
  data.lon = Math.round((rec.lon + d) * 1e6) / 1e6;
  data.lat = Math.round((rec.lat + d) * 1e6) / 1e6;
  data.ts = Date.now();
  items.push({kind: 'worker', op: 'move', data: data});
});
var text = JSON.stringify({type: 'batch', seq: ccwall.lastSeq + 1, items: items});
var p0 = performance.now(), frame = JSON.parse(text), parse = performance.now() - p0;
setTimeout(function () {
  __ccMeasure(function () { ccwall.applyFrame(frame); }, function (r) {
    r.parse_ms = parse; r.items = items.length; done(r);
  });
}, 50);
"""

# arguments: sign. The old layer is on the map (untimed); timed: remove it, build the new one.
NAIVE_REP_JS = """
var done = arguments[arguments.length - 1], d = 0.0001 * arguments[0];
function fc(shift) {
  var feats = [];
  ccwall.store.each('worker', function (rec) {
    feats.push({type: 'Feature', properties: {id: rec.id, status: rec.status},
                geometry: {type: 'Point', coordinates: [rec.lon + shift, rec.lat + shift]}});
  });
  return JSON.stringify({type: 'FeatureCollection', features: feats});
}
function layer(data) {
  return L.geoJSON(data, {pointToLayer: function (f, ll) {
    return L.circleMarker(ll, {radius: 3}); }});
}
var old = layer(JSON.parse(fc(0))).addTo(__ccMap);
var next = JSON.parse(fc(d));
requestAnimationFrame(function () { setTimeout(function () {
  __ccMeasure(function () {
    __ccMap.removeLayer(old);
    __ccNaive = layer(next).addTo(__ccMap);
  }, function (r) {
    r.items = next.features.length;
    __ccMap.removeLayer(__ccNaive);  // untimed: the wall's reps run without it
    __ccNaive = null;
    requestAnimationFrame(function () { setTimeout(function () { done(r); }, 50); });
  });
}, 50); });
"""


def publish_workers(redis_url: str, n: int = WORKERS, seed: int = 3) -> None:
    """n valid workers around grid centroids, through the real ingest."""
    rng = random.Random(seed)
    grids = load_city().grids
    client = redis.Redis.from_url(redis_url)
    wait_for(lambda: dict(client.pubsub_numsub("cc:worker")).get(b"cc:worker", 0) >= 1, 60,
             "the ingest to subscribe")
    pipe = client.pipeline(transaction=False)
    now = int(time.time() * 1000)
    for i in range(n):
        lon, lat = grids[i % len(grids)].centroid
        msg = {"id": f"w{i:04d}", "lon": round(lon + rng.uniform(-0.002, 0.002), 6),
               "lat": round(lat + rng.uniform(-0.002, 0.002), 6), "ts": now,
               "status": "on_duty", "speed": 1.2, "heading": 90, "battery": 80}
        pipe.publish("cc:worker", json.dumps(msg))
    pipe.execute()


def stats(rows: list[dict[str, float]], key: str) -> dict[str, float]:
    xs = sorted(r[key] for r in rows)
    p90 = xs[min(len(xs) - 1, round(0.9 * (len(xs) - 1)))]
    return {"median": round(statistics.median(xs), 1), "p90": round(p90, 1),
            "max": round(xs[-1], 1)}


def run(reps: int, warmup: int = 2) -> dict[str, Any]:
    with stack(demo=False) as (wall_url, redis_url):
        publish_workers(redis_url)
        driver = browser(kiosk_url(wall_url, redis_url))
        try:
            wait_for(lambda: driver.execute_script(
                f"return window.ccwall && ccwall.state.workers >= {WORKERS}"
                " && !!ccwall.mapview.map()"), 120, f"the wall to show {WORKERS} workers")
            time.sleep(2.0)  # let the initial fit and panels settle
            page = driver.execute_script(MEASURE_JS)
            load_before = load()
            wall: list[dict[str, float]] = []
            naive: list[dict[str, float]] = []
            for i in range(warmup + reps):
                sign = 1 if i % 2 == 0 else -1
                w = driver.execute_async_script(WALL_REP_JS, sign)
                b = driver.execute_async_script(NAIVE_REP_JS, sign)
                if i >= warmup:
                    wall.append(w)
                    naive.append(b)
            load_during = load()
            page["workers_after"] = driver.execute_script("return ccwall.state.workers")
        finally:
            driver.quit()
    out: dict[str, Any] = {"reps": reps, "workers": WORKERS, "page": page}
    for key in ("span_ms", "busy_ms", "js_ms"):
        ws, bs = stats(wall, key), stats(naive, key)
        out[key] = {"wall": ws, "baseline": bs,
                    "baseline_over_wall_median": round(bs["median"] / ws["median"], 2)
                    if ws["median"] else None}
    out["wall_parse_ms"] = stats(wall, "parse_ms")
    out["target_le_30ms"] = {"span": out["span_ms"]["wall"]["median"] <= 30,
                             "busy": out["busy_ms"]["wall"]["median"] <= 30}
    out["load"] = {"before": load_before, "during": load_during}
    out["raw"] = {"wall": [{k: round(v, 2) for k, v in r.items()} for r in wall],
                  "baseline": [{k: round(v, 2) for k, v in r.items()} for r in naive]}
    out["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return out


def summary(result: dict[str, Any]) -> str:
    lines = [f"moves ({result['workers']} workers, {result['reps']} reps) ms   median / p90"]
    for key in ("span_ms", "busy_ms", "js_ms"):
        r = result[key]
        lines.append(f"  {key:8} wall {r['wall']['median']} / {r['wall']['p90']}   "
                     f"baseline {r['baseline']['median']} / {r['baseline']['p90']}   "
                     f"baseline/wall x{r['baseline_over_wall_median']}")
    lines.append(f"  target <= 30 ms: {result['target_le_30ms']}; "
                 f"load {result['load']['during']['loadavg']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.moves",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args(argv)
    exit_on_sigterm()
    result = run(args.reps)
    OUT.mkdir(exist_ok=True)
    (OUT / "moves.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    print(summary(result), flush=True)
    return result


if __name__ == "__main__":
    main()
