"""What the video wall's tile picking costs in the browser's JS engine (node), for a city of
42,000 and 60,000 cameras (assets/js/cc-68-wallpick.js).

Times, in one node process: `tourPlan` (group the playable cameras by town and community,
sort; done at most once per tour step), `fill` for a 16-tile wall (pinned + a followed
event's ranking + the tour) and `followed` over 5,000 events. The baseline, in the same
run: copying the store's camera records into an array and sorting their ids — the least
any plan over every camera costs. Figures are medians of `--reps` runs.

    python -m bench.wallpick [--reps 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from typing import Any

from bench.latency import OUT, ROOT

SCRIPT = r"""
const { load } = require(process.argv[1]);
const { cc } = load(['cc-00-core.js', 'cc-68-wallpick.js']);
const W = cc.wallpick, reps = Number(process.argv[2]);
function city(n) {
  const cams = [];
  for (let i = 0; i < n; i++) {
    const town = String(1 + (i % 17)).padStart(3, '0');
    const comm = String(1 + ((i * 7) % 21)).padStart(3, '0');
    cams.push({ id: `3702830${String(i).padStart(13, '0')}`, grid_id: `370283${town}${comm}001`,
      online: i % 10 !== 0, stream_type: i % 25 === 0 ? 'none' : 'mjpeg',
      stream_url: `http://v:8060/video/${i}.mjpg` });
  }
  return cams;
}
function median(fn) {
  const t = [];
  for (let r = 0; r < reps; r++) {
    const a = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - a) / 1e6);
  }
  t.sort((x, y) => x - y);
  return t[Math.floor(t.length / 2)];
}
function records(store) { const a = []; store.forEach((c) => a.push(c)); return a; }
const out = {};
for (const n of [42000, 60000]) {
  const store = new Map(city(n).map((c) => [c.id, c]));
  const base = median(() => records(store).map((c) => c.id).sort());
  let plan;
  const planMs = median(() => { plan = W.tourPlan(records(store)); });
  const ranking = Array.from(store.keys()).slice(0, 3);
  const pinned = [null, Array.from(store.keys())[5]];
  let step = 0;
  const fillMs = median(() => {
    for (let k = 0; k < 100; k++) W.fill({ grid: 16, pinned, ranking, plan, step: step++ });
  }) / 100;
  const events = [];
  for (let i = 0; i < 5000; i++) {
    events.push({ id: `E${i}`, severity: 1 + (i % 4), first_ts: i,
      status: i % 3 ? 'reported' : 'closed' });
  }
  const rules = { urgent: [1, 2], closed: ['closed'] };
  const followMs = median(() => W.followed(events, { event_id: 'E7', ts: 10 }, rules));
  out[n] = { baseline_ms: base, tour_plan_ms: planMs, plan_vs_baseline: planMs / base,
    fill16_ms: fillMs, followed_5000_ms: followMs, playable: plan.total };
}
console.log(JSON.stringify(out));
"""


def run(reps: int) -> dict[str, Any]:
    loader = str(ROOT / "tests" / "js" / "load.js")
    proc = subprocess.run(["node", "-e", SCRIPT, loader, str(reps)], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    figures = json.loads(proc.stdout)
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} cpu", "reps": reps,
            "load": open("/proc/loadavg").read().split()[:3], "cities": figures}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m bench.wallpick",
                                 description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--reps", type=int, default=15)
    result = run(ap.parse_args(argv).reps)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "wallpick.json").write_text(json.dumps(result, indent=2))
    for n, f in result["cities"].items():
        print(f"{n} cameras ({f['playable']} playable): tourPlan {f['tour_plan_ms']:.1f} ms "
              f"(x{f['plan_vs_baseline']:.2f} the copy+sort baseline {f['baseline_ms']:.1f} ms)"
              f", fill 16 tiles {f['fill16_ms'] * 1000:.0f} µs, followed over 5,000 events "
              f"{f['followed_5000_ms'] * 1000:.0f} µs")
    print(f"load {result['load']}")
    return result


if __name__ == "__main__":
    main()
