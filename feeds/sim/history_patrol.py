"""The demo's past patrols (docs/DEMO.md): grid workers' positions for the last PATROL_DAYS
days and today, published through the ingest worker as the simulator's reports are, so the
watch writes their tracks (docs/TRACKS.md) and each day's patrol coverage from them.

Bounded to fit a first start's wait (feeds/sim/history.py):

- every SAMPLE-th worker walks their grid through the working day (WORK_HOURS) as the
  simulator has them walk (`走访`: to a random spot of the grid at walking pace, then a stay
  of 30 s to 10 min), reported at each turn and at least every FIX_MAX_MS in between:
  what the track writer would keep of the simulator's 5-second reports (a straight leg
  needs only its ends; a standing unit one fix per 5 min), so a track replay of yesterday
  shows the walk as live;
- every other worker reports once a working day from a spot of their grid: the day's
  patrol coverage counts their grid, as their first report of the day would live.

Reports carry no status (as the simulator's reports of an engaged worker): the desk's
`busy` stays. They go out in one batch per SLICE_MS of history, each with its own `ts`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson

from feeds.sim.world import WALK_MPS, CityLike, Mover, World

PATROL_DAYS: Final = 2  # the days before today (and today up to now)
SAMPLE: Final = 100  # one worker in this many walks a whole day (22 of Pingdu's 2,140)
WORK_HOURS: Final = (8, 18)  # local
FIX_MAX_MS: Final = 300_000  # the track writer keeps a fix 5 min on (STILL_KEEP_MS): no gap
SLICE_MS: Final = 5 * 60_000  # one ingest batch per this much history

Fix = tuple[int, str, float, float]  # (ts ms, worker id, lon, lat)


def _day_fixes(city: CityLike, grid: str, rng: random.Random, start: int, end: int,
               walks: bool) -> list[tuple[int, float, float]]:
    """One worker's fixes of one working day [start, end)."""
    t = start + rng.randrange(0, 30 * 60_000)  # on duty within half an hour of the start
    if not walks:
        lon, lat = city.random_point_in(grid, rng)
        return [(t, lon, lat)]
    mover = Mover(city.random_point_in(grid, rng), t / 1000)
    out: list[tuple[int, float, float]] = []
    while t < end:
        here = mover.at(t / 1000)
        out.append((t, *here))
        if t / 1000 >= mover.until:  # the simulator's 走访: walk on, then stay a while
            to = city.random_point_in(grid, rng)
            mover.go(t / 1000, to, WALK_MPS * rng.uniform(0.8, 1.2), rng.uniform(30, 600))
        turn = math.ceil((mover.t1 if t / 1000 < mover.t1 else mover.until) * 1000)
        t = min(turn, t + FIX_MAX_MS) if turn > t else t + FIX_MAX_MS
    return out


def plan_fixes(city: CityLike, world: World, now: int, tz: ZoneInfo, start: int,
               seed: int = 7, days: int = PATROL_DAYS) -> list[Fix]:
    """Every fix of the patrols, oldest first (none before `start` nor after `now`)."""
    rng = random.Random(f"{seed}:patrol")
    today = datetime.fromtimestamp(now / 1000, tz).date()
    out: list[Fix] = []
    for back in range(days, -1, -1):
        day = today - timedelta(days=back)
        begin = int(datetime(day.year, day.month, day.day, WORK_HOURS[0],
                             tzinfo=tz).timestamp() * 1000)
        end = int(datetime(day.year, day.month, day.day, WORK_HOURS[1],
                           tzinfo=tz).timestamp() * 1000)
        for i, worker in enumerate(world.workers):
            for ts, lon, lat in _day_fixes(city, worker.grid, rng, begin, end,
                                           walks=i % SAMPLE == 0):
                if start < ts <= now:
                    out.append((ts, worker.id, lon, lat))
    out.sort()
    return out


def patrols(fixes: list[Fix], channel: str,
            publish: Callable[[list[tuple[str, str]]], None],
            count: Callable[[int], None]) -> Iterator[int]:
    """The fixes as steps for the history's player: one batch per SLICE_MS of history,
    yielded at the slice's last moment and published (`publish`: through ingest) when
    resumed there."""
    at = 0
    while at < len(fixes):
        first = fixes[at][0]
        last = first - first % SLICE_MS + SLICE_MS - 1
        upto = at
        while upto < len(fixes) and fixes[upto][0] <= last:
            upto += 1
        yield fixes[upto - 1][0]
        batch = [(channel, fix_message(fix)) for fix in fixes[at:upto]]
        publish(batch)
        count(len(batch))
        at = upto


def fix_message(fix: Fix) -> str:
    ts, worker_id, lon, lat = fix
    msg: dict[str, Any] = {"id": worker_id, "lon": round(lon, 6), "lat": round(lat, 6),
                           "ts": ts}
    return orjson.dumps(msg).decode()
