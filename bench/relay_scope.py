"""What scoping costs the relay: the fan-out of one second of moves and a wall's snapshot.

In process, no sockets, so only the relay's own work is timed (the same code paths the
server runs: `Fanout.flush` for a coalesced batch, `scoped_parts` for a snapshot):

- fan-out: one second of moves of all 2,140 Pingdu workers, offered to 100 walls. Baseline in
  the same run: 100 city-wide walls (one encoding). Scoped: 100 walls spread over the 17
  towns (one encoding per town among them), and the naive way the issue rules out (one
  encoding per wall) for comparison.
- snapshot: cutting a city's raw snapshot (2,140 workers, 347 resources, 3,000 cameras,
  2,000 events, tasks and alerts) to one town: what a scoped wall's snapshot costs on top of
  a city-wide one (which is sent as read).

    python -m bench.relay_scope [--reps 50]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

from bench.latency import OUT
from dashboard.city import load_city
from dashboard.scope import covers, place_of
from feeds.fanout import Client, Fanout, scoped_parts
from feeds.fanout import dumps as _dumps

WALLS = 100


def _pending(city: Any, rng: random.Random) -> dict[tuple[str, str], dict[str, Any]]:
    grids = [g.code for g in city.grids]
    out = {}
    for i in range(2140):
        grid = rng.choice(grids)
        data = {"id": f"W{i:05d}", "lon": 119.9 + rng.random() * 0.5,
                "lat": 36.6 + rng.random() * 0.4, "ts": 1_700_000_000_000 + i,
                "name": f"网格员{i}", "status": "on_duty", "grid_id": grid,
                "loc_grid_id": grid, "phone": "13900000000", "speed": 1.2}
        out[("worker", data["id"])] = {"kind": "worker", "op": "move", "seq": i + 1,
                                       "data": data}
    return out


def _relay(scopes: list[str | None]) -> Fanout:
    relay = Fanout()
    relay.clients = {Client(None, 10**9, 10**9, f"t{i}", None, s)
                     for i, s in enumerate(scopes)}
    return relay


def _flush_per_client(relay: Fanout) -> None:
    """The naive way: every wall's own filtered batch, encoded for it alone."""
    items = [{"kind": f["kind"], "op": "move", "data": f["data"]}
             for f in relay.pending.values()]
    relay.pending.clear()
    now = time.monotonic()
    for client in relay.clients:
        mine = [i for i in items if covers(client.scope, place_of(i["data"]))]
        frame = _dumps({"type": "batch", "seq": relay.pending_seq, "items": mine})
        client.offer(relay.pending_seq, frame, now, frozenset(("worker",)))


def fan_out(reps: int) -> dict[str, Any]:
    city = load_city("pingdu")
    towns = [t.code for t in city.towns]
    pending = _pending(city, random.Random(1))
    variants = {
        "city_wide": (_relay([None] * WALLS), Fanout.flush),
        "by_scope": (_relay([towns[i % len(towns)] for i in range(WALLS)]), Fanout.flush),
        "per_client": (_relay([towns[i % len(towns)] for i in range(WALLS)]),
                       _flush_per_client),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, (relay, flush) in variants.items():  # interleaved: same noise for each
            relay.pending = dict(pending)
            relay.pending_seq = len(pending)
            t0 = time.perf_counter()
            flush(relay)
            times[name].append((time.perf_counter() - t0) * 1000)
            for client in relay.clients:
                client.queue.clear()
    base = statistics.median(times["city_wide"])
    return {name: {"median_ms": round(statistics.median(v), 2),
                   "p90_ms": round(sorted(v)[int(len(v) * 0.9)], 2),
                   "ratio": round(statistics.median(v) / base, 2)}
            for name, v in times.items()}


def snapshot(reps: int) -> dict[str, Any]:
    city = load_city("pingdu")
    rng = random.Random(2)
    grids = [g.code for g in city.grids]

    def records(n: int, prefix: str) -> list[str]:
        return [json.dumps({"id": f"{prefix}{i}", "grid_id": rng.choice(grids),
                            "lon": 120.0, "lat": 36.8, "name": f"{prefix}{i}",
                            "status": "ok", "ts": 1}, ensure_ascii=False) for i in range(n)]

    parts = {"seq": 1, "events": records(2000, "E"), "workers": records(2140, "W"),
             "resources": records(347, "R"), "cameras": records(3000, "C"),
             "tasks": records(300, "T"), "alerts": records(100, "A")}
    town = city.towns[0].code
    cut = []
    for _ in range(reps):
        t0 = time.perf_counter()
        kept = scoped_parts(parts, town)
        cut.append((time.perf_counter() - t0) * 1000)
    total = sum(len(v) for k, v in parts.items() if k != "seq")
    return {"records": total, "kept": sum(len(v) for k, v in kept.items() if k != "seq"),
            "scoped_ms": round(statistics.median(cut), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    result = {"fan_out_2140_moves_100_walls": fan_out(args.reps),
              "snapshot_cut_one_town": snapshot(max(5, args.reps // 5))}
    OUT.mkdir(exist_ok=True)
    (OUT / "relay_scope.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
