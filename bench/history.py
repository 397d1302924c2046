"""The demo's past: how long a fresh data folder takes to get N days of history (issue 17,
item 1; feeds/sim/history.py, docs/DEMO.md).

    python -m bench.history [--days 90] [--phases]

On a fresh embedded Valkey each: `seed_history` as `app.py` runs it before the wall's URL
is printed (building the simulator's world, every event's report, cancel, dispatch,
feedback, verify and evaluate through ingest and the desk, the watch following the log and
ticking, the past shifts' handovers, the recent days' patrols, the archive). Baselines in
the same run: the same plan's reports alone through the same ingest worker in batches of
1,000 (what a history without its command loop would cost), then everything the history
sends through ingest (units, reports, the patrols' fixes) alone, and the pure plans.
Results: bench/results/history.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import tempfile
import time
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from bench.history_phases import phases
from dashboard.city import load_city
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.connect import open_redis
from dashboard.store import Store
from feeds.ingest import Ingest
from feeds.redis_server import EmbeddedRedis
from feeds.sim.history import plan, seed_history, units_at
from feeds.sim.history_patrol import fix_message, plan_fixes
from feeds.sim.text import Text
from feeds.sim.world import build_world

RESULTS = Path(__file__).parent / "results" / "history.json"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def run(days: int, by_phase: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:  # the handovers' signing key lives there
        return _run(days, replace(Settings(), data_dir=Path(data)), by_phase)


def _run(days: int, settings: Settings, by_phase: bool = False) -> dict[str, Any]:
    city = load_city(settings.city)
    load_before = _loadavg()
    out: dict[str, Any] = {"days": days, "date": datetime.now(UTC).isoformat(timespec="seconds"),
                           "machine": f"{os.cpu_count()} CPU, {platform.python_version()}",
                           "loadavg_before": load_before}
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), persist=False).start()
        try:
            with phases() if by_phase else nullcontext({}) as parts:
                t0 = time.perf_counter()
                done = seed_history(settings, server.url, city, days)
                out["seed_s"] = round(time.perf_counter() - t0, 2)
            if by_phase:
                out["phases"] = parts
            out.update(events=done.events, closed=done.closed, archived=done.archived,
                       alerts=done.alerts, handovers=done.handovers, fixes=done.fixes)
        finally:
            server.stop()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), persist=False).start()
        try:
            now = int(time.time() * 1000)
            t0 = time.perf_counter()
            world = build_world(city, Text(7), random.Random("7:world"))
            out["world_s"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            lives = plan(city, world, days, now, ZoneInfo(settings.timezone), Deadlines.load())
            out["plan_s"] = round(time.perf_counter() - t0, 3)
            ingest = Ingest(settings, server.url, city, instance="bench")
            ingest.store = Store(open_redis(server.url), settings.prefix)
            msgs = [(f"{settings.prefix}event", orjson.dumps(life.msg).decode())
                    for life in lives]
            t0 = time.perf_counter()
            for i in range(0, len(msgs), 1000):
                ingest.submit(msgs[i:i + 1000])
                ingest.drain()
            out["reports_only_s"] = round(time.perf_counter() - t0, 3)
            tz = ZoneInfo(settings.timezone)
            t0 = time.perf_counter()
            fixes = plan_fixes(city, world, now, tz, lives[0].report - 3_600_000)
            out["patrol_plan_s"] = round(time.perf_counter() - t0, 3)
            msgs = units_at(world, lives[0].report - 3_600_000, settings.prefix) + [
                (f"{settings.prefix}worker", fix_message(fix)) for fix in fixes]
            t0 = time.perf_counter()
            for i in range(0, len(msgs), 1000):
                ingest.submit(msgs[i:i + 1000])
                ingest.drain()
            out["ingest_all_s"] = round(out["reports_only_s"] + time.perf_counter() - t0, 3)
            ingest.store.close_apply()
        finally:
            server.stop()
    out["per_event_ms"] = round(out["seed_s"] * 1000 / max(1, out["events"]), 2)
    out["ratio_vs_reports_only"] = round(out["seed_s"] / max(out["reports_only_s"], 1e-3), 1)
    out["ratio_vs_ingest_all"] = round(out["seed_s"] / max(out["ingest_all_s"], 1e-3), 1)
    out["loadavg_after"] = _loadavg()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.history",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--phases", action="store_true",
                        help="also each phase's seconds, calls and round trips (a few %% slower)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = run(args.days, args.phases)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, ensure_ascii=False))
    for phase, part in out.get("phases", {}).items():
        print(f"{part['s']:7.2f} s {part['calls']:7d} calls {part['round_trips']:7d} round trips"
              f"  {phase}")
    return out


if __name__ == "__main__":
    main()
