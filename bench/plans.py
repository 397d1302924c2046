"""Plan matching over a 1,000-plan library (target ≤ 1 ms per event).

Builds 1,000 plans as synthetic variants of the shipped ones (each variant keeps its
source's types or category and gets a random severity range and, for one in three, 1–3
random towns), then matches 10,000 events drawn like the wall's traffic (mostly everyday
grid cases, a few grave emergencies, every town) and times each `PlanLibrary.match` call.

Per-call times (mean, p99) with the two paths interleaved event by event, then each path
alone over all events as one block (mean only; steadier caches). Baseline in the same run:
a naive linear scan that checks every plan against the event with the same rules and sorts.
Both must give the same plans, scores and reasons for every event (checked), so the ratio
compares like with like: both build the same `Match` objects with the same cached reasons.

    python -m bench.plans [--plans 1000] [--events 10000] [--seed 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from dashboard import models
from dashboard.command import plans
from dashboard.command.plans import Match, Plan, PlanLibrary

OUT = Path(__file__).resolve().parent / "results" / "plans.json"
TOWNS = [f"370283{n:03d}" for n in range(1, 18)]
# Event mix: share of grid cases / emergencies, and the level weights (IV most common).
GRID_SHARE = 0.75
LEVEL_WEIGHTS = {1: 0.03, 2: 0.1, 3: 0.27, 4: 0.6}


def synthetic_library(base: list[Plan], n: int, rng: random.Random) -> list[Plan]:
    """`n` plans: the shipped ones, then variants of them until there are `n`."""
    out = list(base)
    i = 0
    while len(out) < n:
        src = base[i % len(base)]
        i += 1
        if src.is_fallback:
            continue  # one fallback is enough; many would only add ties
        levels = sorted(rng.sample([1, 2, 3, 4], rng.randint(1, 4)))
        areas = tuple(sorted(rng.sample(TOWNS, rng.randint(1, 3)))) if rng.random() < 0.33 \
            else ()
        out.append(dataclasses.replace(src, id=f"{src.id}-V{i:04d}", severities=tuple(levels),
                                       areas=areas, level=rng.choice(levels)))
    return out


def events(n: int, rng: random.Random) -> list[dict[str, Any]]:
    grid_types = [t for t, c in models.EVENT_TYPES.items() if c == "grid_governance"]
    other_types = [t for t, c in models.EVENT_TYPES.items() if c != "grid_governance"]
    levels, weights = zip(*LEVEL_WEIGHTS.items(), strict=True)
    out = []
    for k in range(n):
        etype = rng.choice(grid_types if rng.random() < GRID_SHARE else other_types)
        town = rng.choice(TOWNS)
        grid = f"{town}{rng.randint(1, 20):03d}{rng.randint(1, 9):03d}"
        out.append({"id": f"E{k}", "type": etype, "category": models.category_of(etype),
                    "severity": rng.choices(levels, weights)[0], "grid_id": grid,
                    "town_id": town, "community_id": grid[:12], "status": "reported"})
    return out


def naive_match(lib: PlanLibrary, all_plans: list[Plan], event: dict[str, Any],
                limit: int = 5) -> list[Match]:
    """The same rules and the same result as PlanLibrary.match, checking every plan in turn."""
    etype, category, severity = event["type"], event["category"], event["severity"]
    places = plans._event_places(event)
    scored = []
    for plan in all_plans:
        if severity not in plan.severities:
            continue
        in_area = bool(plan.areas)
        if in_area and not set(plan.areas) & places:
            continue
        if etype in plan.types:
            tier, score = "type", plans.TIER_TYPE + plans.BONUS_NARROW / len(plan.types)
        elif category in plan.categories:
            tier = "category"
            score = plans.TIER_CATEGORY + plans.BONUS_NARROW / len(plan.categories)
        elif plan.is_fallback:
            tier, score = "fallback", plans.TIER_FALLBACK
        else:
            continue
        score += plans.BONUS_SEVERITY * (4 - len(plan.severities))
        score += plans.BONUS_AREA if in_area else 0.0
        score += plans.BONUS_LEVEL if plan.level == severity else 0.0
        scored.append((-score, plan.id, plan, tier, in_area))
    scored.sort(key=lambda s: (s[0], s[1]))
    out = []
    for neg, _pid, plan, tier, in_area in scored[:limit]:
        entry = plans._Entry(plan, 0.0, tier, frozenset(), frozenset())
        out.append(Match(plan, -neg, lib._reasons(entry, etype, category, severity, in_area)))
    return out


def stats_us(ns: list[int]) -> dict[str, float]:
    us = sorted(x / 1000 for x in ns)
    return {"mean_us": round(statistics.fmean(us), 2), "p50_us": round(us[len(us) // 2], 2),
            "p99_us": round(us[int(len(us) * 0.99) - 1], 2), "max_us": round(us[-1], 2)}


def run(n_plans: int = 1000, n_events: int = 10_000, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    shipped = PlanLibrary.load()
    t0 = time.perf_counter()
    all_plans = synthetic_library(shipped.plans, n_plans, rng)
    lib = PlanLibrary(all_plans)
    build_ms = (time.perf_counter() - t0) * 1000
    evs = events(n_events, rng)

    # One untimed pass first: the wall runs for hours, so the steady state (reason texts
    # cached, both paths warm) is what counts. The cold pass is reported too.
    a = time.perf_counter_ns()
    for ev in evs:
        lib.match(ev)
    cold_us = (time.perf_counter_ns() - a) / 1000 / len(evs)
    for ev in evs:
        naive_match(lib, all_plans, ev)
    fast_ns: list[int] = []
    naive_ns: list[int] = []
    mismatches = 0
    candidates = 0
    gc.disable()  # a collection landing inside one call would time the collector, not us
    try:
        for ev in evs:
            a = time.perf_counter_ns()
            got = lib.match(ev)
            b = time.perf_counter_ns()
            want = naive_match(lib, all_plans, ev)
            c = time.perf_counter_ns()
            fast_ns.append(b - a)
            naive_ns.append(c - b)
            candidates += len(got)
            if [(m.plan.id, m.score, m.reasons) for m in got] != [
                    (m.plan.id, m.score, m.reasons) for m in want]:
                mismatches += 1
    finally:
        gc.enable()
    # Block timings as well: each path alone over all events, caches its own.
    a = time.perf_counter_ns()
    for ev in evs:
        lib.match(ev)
    b = time.perf_counter_ns()
    for ev in evs:
        naive_match(lib, all_plans, ev)
    c = time.perf_counter_ns()
    block = {"indexed_mean_us": round((b - a) / 1000 / len(evs), 2),
             "naive_mean_us": round((c - b) / 1000 / len(evs), 2)}
    block["speedup"] = round(block["naive_mean_us"] / block["indexed_mean_us"], 1)
    fast, naive = stats_us(fast_ns), stats_us(naive_ns)
    return {
        "bench": "plans", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, {platform.system()} "
                   f"{platform.release()}, Python {platform.python_version()}",
        "load_avg": round(os.getloadavg()[0], 2), "plans": len(all_plans),
        "events": n_events, "seed": seed, "index_build_ms": round(build_ms, 2),
        "indexed": fast, "naive": naive, "indexed_cold_mean_us": round(cold_us, 2),
        "block": block, "mismatches": mismatches,
        "mean_results": round(candidates / n_events, 2),
        "speedup_mean": round(naive["mean_us"] / fast["mean_us"], 1),
        "speedup_p99": round(naive["p99_us"] / fast["p99_us"], 1),
    }


def summary(res: dict[str, Any]) -> str:
    return (f"plans {res['plans']} events {res['events']}: indexed mean {res['indexed']['mean_us']}"
            f" µs p99 {res['indexed']['p99_us']} µs; naive mean {res['naive']['mean_us']} µs"
            f" p99 {res['naive']['p99_us']} µs; speedup ×{res['speedup_mean']} (mean)"
            f" ×{res['speedup_p99']} (p99); block means {res['block']['indexed_mean_us']} µs vs"
            f" {res['block']['naive_mean_us']} µs (×{res['block']['speedup']});"
            f" mismatches {res['mismatches']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.plans",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    res = run(args.plans, args.events, args.seed)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(res, ensure_ascii=False), flush=True)
    print(summary(res), flush=True)
    if res["mismatches"]:
        sys.exit(1)
    return res


if __name__ == "__main__":
    main()
