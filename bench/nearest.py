"""Nearest free units and the dispatch proposal at city scale, on a real Valkey.

50,000 units (30,000 grid workers, 20,000 resources of every kind) over Pingdu, 25 % of them
busy or engaged in a task. For 2,000 random points it times `nearby.nearest` (10 free
workers; 10 free volunteers) against two baselines in the same run:

- `geosearch`: a plain GEOSEARCH of the 10 nearest with no filtering at all (the floor: one
  round trip, but it answers the wrong question — busy units included);
- `client filter`: the usual way without a script — GEOSEARCH a growing circle, then read
  meta, engagement and records and filter in Python until 10 free ones are found.

Then `Desk.proposal` (a level II fire: P-FIRE-01, six resource calls and the candidate
lists) and `Desk.dispatch` for 300 events.

    python -m bench.nearest [--units 50000] [--points 2000] [--events 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from dashboard.city import load_city
from dashboard.command.dispatch import Desk
from dashboard.command.nearby import FREE_STATUS, nearest
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.store import Change, Store, day_of
from feeds.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "nearest.json"
TS0 = 1_795_312_800_000
RESOURCE_MIX = {  # share of the 20,000 resources
    "volunteer": 0.30, "patrol_car": 0.12, "police_car": 0.10, "law_enforcement": 0.10,
    "fire_engine": 0.08, "ambulance": 0.08, "rescue_team": 0.06, "drone": 0.06,
    "supply_depot": 0.04, "shelter": 0.04, "other": 0.02,
}


def _points(n: int, rng: random.Random) -> list[tuple[float, float]]:
    """Random points spread like the city: a random grid's centre, jittered."""
    grids = load_city().grids
    out = []
    for _ in range(n):
        lon, lat = grids[rng.randrange(len(grids))].centroid
        out.append((lon + rng.uniform(-0.005, 0.005), lat + rng.uniform(-0.005, 0.005)))
    return out


def load_units(store: Store, n: int, rng: random.Random) -> None:
    """Workers and resources through the same apply script ingest uses; a quarter busy or
    engaged (Ptask:unit)."""
    workers = n * 3 // 5
    kinds = list(RESOURCE_MIX)
    weights = list(RESOURCE_MIX.values())
    changes: list[Change] = []
    engaged: list[str] = []
    for i, (lon, lat) in enumerate(_points(n, rng)):
        kind = "worker" if i < workers else "resource"
        uid = f"W{i:05d}" if kind == "worker" else f"R{i:05d}"
        roll = rng.random()
        busy = "busy" if kind == "worker" else "dispatched"
        status = busy if roll < 0.15 else FREE_STATUS[kind]
        if 0.15 <= roll < 0.25:
            engaged.append(store.key(f"task:unit:{kind}:{uid}"))
        record: dict[str, Any] = {"id": uid, "lon": round(lon, 6), "lat": round(lat, 6),
                                  "ts": TS0, "received": TS0, "status": status,
                                  "name": f"单位{uid}", "grid_id": None}
        if kind == "resource":
            record["kind"] = rng.choices(kinds, weights)[0]
            record["unit"] = "平度市应急管理局"
        else:
            record.update(phone="13800000000", battery=80, speed=1.2, heading=90)
        changes.append(Change(kind, uid, TS0, "0", json.dumps(record, ensure_ascii=False),
                              status, record["lon"], record["lat"]))
    for start in range(0, len(changes), 2000):
        store.apply(changes[start:start + 2000])
    pipe = store.r.pipeline(transaction=False)
    for key in engaged:
        pipe.set(key, "T-bench")
    pipe.execute()


def geosearch_only(store: Store, lon: float, lat: float, kind: str) -> list[Any]:
    return store.r.geosearch(store.key(f"geo:{kind}"), longitude=lon, latitude=lat,
                             radius=5000, unit="m", sort="ASC", count=10, withdist=True)


def client_filter(store: Store, settings: Settings, lon: float, lat: float, kind: str,
                  resource_kind: str | None) -> list[dict[str, Any]]:
    """Nearest free units without a script: widen, read, filter in Python."""
    radius = settings.near_radius_m
    free = FREE_STATUS[kind]
    while True:
        rows = store.r.geosearch(store.key(f"geo:{kind}"), longitude=lon, latitude=lat,
                                 radius=radius, unit="m", sort="ASC", withdist=True)
        ids = [row[0] for row in rows]
        out: list[dict[str, Any]] = []
        if ids:
            pipe = store.r.pipeline(transaction=False)
            pipe.hmget(store.key(f"meta:{kind}"), ids)
            pipe.hmget(store.key(f"state:{kind}"), ids)
            pipe.mget([store.key(f"task:unit:{kind}:{i}") for i in ids])
            metas, states, engaged = pipe.execute()
            for (uid, dist), meta, state, task in zip(rows, metas, states, engaged, strict=True):
                if meta is None or meta.rsplit("|", 1)[1] != free or task:
                    continue
                record = json.loads(state)
                if resource_kind and record.get("kind") != resource_kind:
                    continue
                out.append({"id": uid, "distance_m": dist, **record})
                if len(out) >= 10:
                    return out
        if radius >= 100_000:
            return out
        radius *= 2


def _stats(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {"p50_ms": round(statistics.median(ms), 3),
            "p90_ms": round(ms[int(len(ms) * 0.90) - 1], 3),
            "p99_ms": round(ms[max(0, int(len(ms) * 0.99) - 1)], 3),
            "max_ms": round(ms[-1], 3), "n": len(ms)}


def _time(fn: Any, args: list[tuple[Any, ...]]) -> tuple[list[float], list[Any]]:
    times, outs = [], []
    for a in args:
        t0 = time.perf_counter()
        outs.append(fn(*a))
        times.append(time.perf_counter() - t0)
    return times, outs


def _server_us(client: redis.Redis, fn: Any, args: list[tuple[Any, ...]]
               ) -> tuple[list[float], list[Any], float]:
    """Timed calls plus the server's own time per call (INFO commandstats): a figure the
    client's scheduling on a busy machine does not blur."""
    client.config_resetstat()
    times, outs = _time(fn, args)
    stats = client.info("commandstats")
    # a script's own commands are counted again under their names: count the script only
    scripted = {k: v for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")}
    total = sum(v["usec"] for k, v in (scripted or stats).items()
                if k not in ("cmdstat_config", "cmdstat_info"))
    return times, outs, round(total / len(args), 1)


def run(units: int, points: int, events: int) -> dict[str, Any]:
    rng = random.Random(7)
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persist=False) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        store = Store(client)
        t0 = time.perf_counter()
        load_units(store, units, rng)
        load_s = time.perf_counter() - t0
        pts = _points(points, rng)
        # warm up: script cache, connections
        for lon, lat in pts[:50]:
            nearest(store, settings, lon, lat, kind="worker")
            client_filter(store, settings, lon, lat, "worker", None)
        result: dict[str, Any] = {"units": units, "points": points, "load_s": round(load_s, 1)}
        for label, kind, rkind in (("workers", "worker", None),
                                   ("volunteers", "resource", "volunteer")):
            t_ours, found, us_ours = _server_us(client,
                lambda lon, lat, k=kind, rk=rkind: nearest(store, settings, lon, lat, kind=k,
                                                           resource_kind=rk), pts)
            t_geo, _, us_geo = _server_us(
                client, lambda lon, lat, k=kind: geosearch_only(store, lon, lat, k), pts)
            t_cli, cli, us_cli = _server_us(client, lambda lon, lat, k=kind, rk=rkind:
                                            client_filter(store, settings, lon, lat, k, rk), pts)
            same = sum(1 for a, b in zip(found, cli, strict=True)
                       if [u["id"] for u in a] == [u["id"] for u in b])
            result[label] = {
                "nearest": _stats(t_ours), "baseline_geosearch": _stats(t_geo),
                "baseline_client_filter": _stats(t_cli),
                "same_answer_as_client_filter": f"{same}/{len(pts)}",
                "avg_found": round(sum(len(f) for f in found) / len(found), 2),
                "server_us_per_query": {"nearest": us_ours, "baseline_geosearch": us_geo,
                                        "baseline_client_filter": us_cli},
            }
        # proposal and dispatch on level II fires (P-FIRE-01: six calls)
        desk = Desk(store, PlanLibrary.load(), Deadlines.load(), settings)
        city = load_city()
        ev_changes = []
        for i, (lon, lat) in enumerate(_points(events, rng)):
            ev = {"id": f"E{i:04d}", "type": "fire", "severity": 2, "lon": round(lon, 6),
                  "lat": round(lat, 6), "ts": TS0, "received": TS0, "status": "reported",
                  "category": "accident", "first_ts": TS0, "grid_id": city.locate(lon, lat),
                  "title": "仓库起火"}
            ev_changes.append(Change("event", ev["id"], TS0, "0",
                                     json.dumps(ev, ensure_ascii=False), "reported", ev["lon"],
                                     ev["lat"], "2", "accident", "hotline", day_of(TS0)))
        store.apply(ev_changes)
        ids = [(c.id,) for c in ev_changes]
        t_prop, props = _time(desk.proposal, ids)
        t_disp, _ = _time(lambda eid: desk.dispatch(eid, by="bench", key=f"k-{eid}",
                                                    assignees=None, plan_id=None), ids)
        result["proposal"] = _stats(t_prop)
        result["proposal"]["avg_units"] = round(
            sum(len(u) for p in props for c in p["calls"] for u in [c["units"]]) / len(props), 1)
        result["dispatch"] = _stats(t_disp)
        result["dispatch"]["tasks"] = client.hlen("cc:state:task")
        info = client.info("memory")
        result["redis_used_mb"] = round(info["used_memory"] / 2**20, 1)
        client.close()
    result["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpu"
    result["load_avg"] = round(os.getloadavg()[0], 2)
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


def summary(result: dict[str, Any]) -> str:
    lines = [f"nearest-10 over {result['units']:,} units, {result['points']:,} points "
             f"(load avg {result['load_avg']})"]
    for label in ("workers", "volunteers"):
        r = result[label]
        ours, geo, cli = r["nearest"], r["baseline_geosearch"], r["baseline_client_filter"]
        lines.append(
            f"  {label:<10} nearest p50 {ours['p50_ms']} / p99 {ours['p99_ms']} ms | "
            f"plain GEOSEARCH p50 {geo['p50_ms']} / p99 {geo['p99_ms']} | client filter "
            f"p50 {cli['p50_ms']} / p99 {cli['p99_ms']} (×{cli['p99_ms'] / ours['p99_ms']:.1f}"
            f" p99) | same answer {r['same_answer_as_client_filter']} | server µs/query "
            f"{r['server_us_per_query']}")
    p, d = result["proposal"], result["dispatch"]
    lines.append(f"  proposal p50 {p['p50_ms']} / p99 {p['p99_ms']} ms "
                 f"({p['avg_units']} units proposed on average)")
    lines.append(f"  dispatch p50 {d['p50_ms']} / p99 {d['p99_ms']} ms ({d['tasks']} tasks)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.nearest",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=50_000)
    parser.add_argument("--points", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args(argv)
    result = run(args.units, args.points, args.events)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(summary(result), flush=True)
    return result


if __name__ == "__main__":
    main()
