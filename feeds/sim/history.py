"""A city with a past: the demo's N days of history, written through the live code paths.

docs/DEMO.md says what is made and why. `plan` is pure: from a seed, the city and the
simulator's world it draws each event's life (report, cancel, dispatch, feedback stages,
verify, evaluate), with a weekly and a daily rhythm. `seed_history` plays those lives in
time order through what the live system runs: the ingest worker's validate-merge-apply
(`Ingest.submit`, historic `ts` allowed), the duty desk (`Desk.dispatch`, `on_feedback`,
`verify`, `evaluate`) on a clock set to each step's historic moment, the watch service
(following the log, ticking, archiving), and the archive's `run`; in the same time order,
the past shifts' handovers (feeds/sim/history_duty.py, the duty desk's `Handovers`) and the
recent days' patrols (feeds/sim/history_patrol.py, through ingest). Nothing is written
straight into keys but the marker that makes it once per data folder.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson

from dashboard.archive.events import Archive
from dashboard.city import City
from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines, Limits
from dashboard.config import Settings
from dashboard.connect import open_redis
from dashboard.duty.handover import Handovers
from dashboard.duty.roster import RosterStore
from dashboard.errors import Refused
from dashboard.models import URGENT_LEVELS, category_of
from dashboard.store import Store
from feeds.ingest import Ingest
from feeds.sim.engine import camera_message, video_bases
from feeds.sim.history_duty import hand_over, past_shifts
from feeds.sim.history_patrol import patrols, plan_fixes
from feeds.sim.text import Text, Weighted, fill, load_pool
from feeds.sim.world import World, build_world
from feeds.watch import Watch
from feeds.watch.follower import BLOCK

log = logging.getLogger(__name__)

MARKER: Final = "history:seeded"  # the key (under the prefix) that makes it once per folder
WEEKDAY: Final = (1.0, 1.05, 1.0, 1.0, 1.1, 0.8, 0.7)  # Monday first: quieter weekends
HOURLY: Final = (1, 0.6, 0.4, 0.4, 0.5, 0.9, 2, 4, 6, 7, 7, 6, 5, 5.5, 6, 6, 6, 5.5, 5, 4.5, 4,
                 3, 2, 1.5)  # 走访 and citizens' calls follow the working day
CATEGORY_FLOOR: Final = 0.03
MAJOR_SHARE: Final = 0.01
OTHER_SHARE: Final = 0.02  # department hand-overs of no listed type: category "other"
LATE_SHARE: Final = 0.03  # a stage that runs past its limit (the overdue ones)
STUCK_SHARE: Final = 0.01  # still open long after: the old overdue ones on the wall …
STUCK_DAYS: Final = 14  # … of the last two weeks: a centre does not leave one open for months
PROGRESS_S: Final = 10.0  # how often the log says how far the history is
ACK_AFTER_MS: Final = 10 * 60_000  # the duty officer acknowledges an alarm within minutes …
ACK_QUIET_MS: Final = 2 * 3600_000  # … but the last two hours' wait for the one on duty now
# The desk rules a task's next step over what its own last write left (no read first; the
# step script checks every revision): far more than the history's tasks open at once.
REMEMBER: Final = 512
DUTY: Final = "zhiban"  # the duty officer who verifies and evaluates
COMMANDER: Final = "zhihui"
NEAREST_REASON: Final = "时限内无可用力量，派最近网格员"  # the commander's own words (data)
MIN: Final = 60_000
# The watch ticks (live: every second) at each moment a card falls due, planned from the
# events' lives, and besides every TICK_MS while the replay records (its keyframes).
TICK_MS: Final = 10 * MIN
CARD_LAG_MS: Final = 1000  # a live watch ticks each second: a card comes within one
# The replay's history (docs/REPLAY.md) of the last hours only: a keyframe every 10 minutes
# reads and hashes the whole wall (~10-20 ms), so days of them would be most of the wait.
REPLAY_PAST_MS: Final = 6 * 3_600_000
# The watch's archiving, once a day of history (live: hourly): the live state stays a few
# days deep, so the cards' ticks and the handover drafts read what they would live.
HOUR_MS: Final = 3_600_000
ARCHIVE_MS: Final = 24 * HOUR_MS
OTHER_SPEC: Final = {"sources": {"other": 1}, "handle_min": [10, 40],
                     "cases": [["部门移交事项", "{town}{community}转办事项"]]}


@dataclass
class Life:
    """One historic event: the message its source sent and when each later step happened
    (epoch ms; None = never)."""

    msg: dict[str, Any]
    report: int
    cancel: int | None = None
    dispatch: int | None = None
    steps: list[tuple[str, int]] = field(default_factory=list)  # accepted/arrived/handled
    verify: int | None = None
    evaluate: int | None = None
    score: int = 5
    limits: Limits | None = None  # its stages' time limits (data/sla.json), for the cards


@dataclass
class Seeded:
    """What `seed_history` did."""

    days: int
    events: int = 0
    dispatched: int = 0
    closed: int = 0
    archived: int = 0
    refused: int = 0
    alerts: int = 0  # raised by the watch's ticks (cards)
    handovers: dict[str, int] = field(default_factory=dict)  # past shifts' reports by state
    fixes: int = 0  # workers' positions of the past patrols
    seconds: float = 0.0
    skipped: str = ""  # why nothing was written, or ""


def _day_start(day: date, tz: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


def plan(city: City, world: World, days: int, now_ms: int, tz: ZoneInfo,
         deadlines: Deadlines, seed: int = 7, per_day: float = 40.0) -> list[Life]:
    """The lives of `days` local days of events before `now_ms`, oldest report first."""
    rng = random.Random(f"{seed}:history")
    pool = load_pool("events")
    normal, major = pool["normal"], {k: v for k, v in pool["major"].items()
                                     if not k.startswith("_")}
    pick_normal = _by_category(normal)
    pick_major = Weighted({k: v["weight"] for k, v in major.items()})
    text = Text(seed)
    today = datetime.fromtimestamp(now_ms / 1000, tz).date()
    lives: list[Life] = []
    n = 0
    for back in range(days, -1, -1):
        day = today - timedelta(days=back)
        start = _day_start(day, tz)
        growth = 0.85 + 0.15 * (1 - back / max(days, 1))  # a city reporting a bit more lately
        wave = 1 + 0.12 * math.sin(2 * math.pi * back / 29)
        mean = per_day * WEEKDAY[day.weekday()] * growth * wave
        count = max(0, round(rng.gauss(mean, math.sqrt(mean))))
        for _ in range(count):
            hour = rng.choices(range(24), weights=HOURLY)[0]
            report = start + hour * 3_600_000 + rng.randrange(3_600_000)
            if report > now_ms - MIN:
                continue
            n += 1
            lives.append(_life(f"H{day:%Y%m%d}-{n:05d}", report, rng, city, world, text,
                               normal, major, pool["topics"], pick_normal, pick_major,
                               deadlines, now_ms))
    lives.sort(key=lambda life: life.report)
    return lives


def _by_category(normal: dict[str, Any]) -> Callable[[random.Random], str]:
    """A type picker that draws the category first, each at least CATEGORY_FLOOR of the
    events: a rare category (public health) still shows on a short history."""
    cats: dict[str, dict[str, float]] = {}
    for etype, spec in normal.items():
        cats.setdefault(category_of(etype), {})[etype] = spec["weight"]
    total = sum(sum(w.values()) for w in cats.values())
    pick_cat = Weighted({c: max(sum(w.values()), CATEGORY_FLOOR * total)
                         for c, w in cats.items()})
    pick_type = {c: Weighted(w) for c, w in cats.items()}
    return lambda rng: pick_type[pick_cat.pick(rng)].pick(rng)


def _life(eid: str, report: int, rng: random.Random, city: City, world: World, text: Text,
          normal: dict[str, Any], major: dict[str, Any], topics: list[str],
          pick_normal: Callable[[random.Random], str],
          pick_major: Weighted, deadlines: Deadlines, now_ms: int) -> Life:
    roll = rng.random()
    if roll < MAJOR_SHARE:
        etype = pick_major.pick(rng)
        spec, severity = major[etype], 1
    elif roll < MAJOR_SHARE + OTHER_SHARE:
        etype, spec, severity = "other", OTHER_SPEC, 4
    else:
        etype = pick_normal(rng)
        spec = normal[etype]
        severity = int(Weighted(spec["severity"]).pick(rng))
    source = Weighted(spec["sources"]).pick(rng)
    grid = world.pick_grid(rng)
    lon, lat = city.random_point_in(grid, rng)
    town, comm = world.town_of[grid], world.community_of[grid]
    road, _, village = text.grid_places(grid, grid in world.urban_grids)
    title, desc = rng.choice(spec["cases"])
    places = text.places
    # every placeholder the pool's cases use (as the simulator fills them)
    ctx = {"town": town.name, "community": comm.name, "road": road, "road2": road,
           "village": village, "no": rng.randint(1, 399), "person": text.masked_person(rng),
           "person2": text.masked_person(rng), "count": rng.randint(2, 9),
           "age": rng.randint(68, 93), "floor": rng.randint(1, 18),
           "minutes": rng.randint(5, 40), "hours": rng.randint(24, 72),
           "compound": rng.choice(places["compounds"]), "building": rng.randint(1, 30),
           "gate": rng.choice(places["compound_gates"]), "place": rng.choice(places["places"]),
           "topic": rng.choice(topics), "plate": text.plate(rng), "camera": f"{road}路口",
           "addr": f"{town.name}{comm.name}{road}", "device": f"IOT-{rng.randrange(10**8):08d}",
           "money": rng.randint(2, 60) * 1000, "meters": rng.randint(1, 5),
           "angle": rng.randint(10, 45), "pm": rng.randint(150, 400),
           "lel": rng.randint(20, 60), "drop": rng.randint(30, 70),
           "depth": rng.randint(20, 60), "conf": rng.randint(80, 99)}
    msg: dict[str, Any] = {
        "v": 1, "id": eid, "type": etype, "severity": severity, "title": fill(title, ctx),
        "description": fill(desc, ctx), "address": f"{town.name}{comm.name}{road}",
        "source": source, "status": "reported", "lon": round(lon, 6), "lat": round(lat, 6),
        "grid_id": grid, "ts": report, "tags": list(spec.get("tags", [])),
    }
    lim = deadlines.limits({"type": etype, "category": category_of(etype),
                            "severity": severity})
    life = Life(msg, report, limits=lim)
    if rng.random() < spec.get("cancel", 0.02):
        life.cancel = report + rng.randint(3, 60) * MIN
        return life

    def within(limit_s: int) -> int:
        share = rng.uniform(1.1, 2.5) if rng.random() < LATE_SHARE else rng.uniform(0.1, 0.6)
        return int(limit_s * 1000 * share)

    t = report + within(lim.dispatch_s)
    life.dispatch = t
    stuck = rng.random() < STUCK_SHARE and now_ms - report < STUCK_DAYS * 86_400_000
    t += rng.randint(20_000, 3 * MIN)
    life.steps.append(("accepted", t))
    if stuck:
        return life  # accepted, then nothing: open and overdue on the wall
    t = life.dispatch + max(within(lim.arrive_s), t - life.dispatch + 1000)
    life.steps.append(("arrived", t))
    lo, hi = spec.get("handle_min", (8, 20))
    t += int(rng.uniform(lo, hi) * MIN)
    life.steps.append(("handled", t))
    t += rng.randint(10, 90) * MIN
    life.verify = t
    t += rng.randint(5, 60) * MIN
    life.evaluate = t
    life.score = rng.choices((5, 4, 3), weights=(6, 3, 1))[0]
    return life


class _Clock:
    """The desk's clock, set to each step's historic moment."""

    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> int:
        return self.ms


def seed_history(settings: Settings, redis_url: str, city: City, days: int,
                 now_ms: int | None = None, seed: int = 7, world: World | None = None,
                 stop: threading.Event | None = None) -> Seeded:
    """Write `days` days of demo history into an empty store, once (the marker key);
    nothing when `days` is 0, the marker is there, or the store already holds changes.
    `stop` set (Ctrl-C) ends it early: what was written stays, marked `interrupted`."""
    out = Seeded(days)
    if days <= 0:
        out.skipped = "off"
        return out
    started = time.monotonic()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    # one thread, one connection each: no pool to take it from per command (~30 µs of ~110)
    store = Store(open_redis(redis_url, decode_responses=True, single_connection_client=True),
                  settings.prefix)
    marker = store.key(MARKER)
    if store.r.exists(marker):
        out.skipped = "seeded before"
        return out
    if int(store.r.get(store.key("seq")) or 0) > 0:
        store.r.set(marker, orjson.dumps({"skipped": "not empty", "at": now}).decode())
        out.skipped = "not empty"
        return out
    tz = ZoneInfo(settings.timezone)
    deadlines = Deadlines.load()
    world = world or build_world(city, Text(seed), random.Random(f"{seed}:world"))
    lives = plan(city, world, days, now, tz, deadlines, seed,
                 per_day=settings.demo_history_per_day)
    ingest = Ingest(settings, redis_url, city, instance="history")
    ingest.store = Store(open_redis(redis_url, single_connection_client=True), settings.prefix)
    clock = _Clock()
    desk = Desk(store, PlanLibrary.load(), deadlines, settings, clock=clock,
                remember=REMEMBER)
    archive = Archive(store, settings, deadlines)
    player = _Player(settings, store, ingest, desk, clock,
                     Watch(settings, redis_url, clock, desk.plans, deadlines), out)
    try:
        start = lives[0].report - 3_600_000 if lives else now - days * 86_400_000
        clock.ms = start
        _publish(ingest, units_at(world, start, settings.prefix, video_bases(settings)))
        player.follow()
        player.replay_from = now - min(REPLAY_PAST_MS, settings.replay_days * 86_400_000)
        roster = RosterStore(store, settings.timezone).get()
        books = Handovers(store, settings, lambda: roster, deadlines, clock=clock)
        more = [hand_over(books, roster, duty, now, player.follow, player.handed)
                for duty in past_shifts(roster, start, now, tz)]
        more.append(patrols(plan_fixes(city, world, now, tz, start, seed),
                            f"{settings.prefix}worker", lambda batch: _publish(ingest, batch),
                            player.moved))
        player.run(lives, now, stop, more)
        player.resume_replay()
        while (stop is None or not stop.is_set()) and (moved := archive.run(now)) > 0:
            out.archived += moved
    finally:
        ingest.store.close_apply()
    out.seconds = round(time.monotonic() - started, 2)
    store.r.set(marker, orjson.dumps({
        "days": days, "events": out.events, "at": now, "seconds": out.seconds,
        "handovers": out.handovers,
        "interrupted": bool(stop is not None and stop.is_set())}).decode())
    log.info("demo history: %d days, %d events (%d closed, %d archived), %d handovers, "
             "%d patrol positions in %.1f s", days, out.events, out.closed, out.archived,
             sum(out.handovers.values()), out.fixes, out.seconds)
    return out


def _publish(ingest: Ingest, msgs: list[tuple[str, str]]) -> None:
    """Through the ingest worker's validate-merge-apply, as a feed's messages would go."""
    for i in range(0, len(msgs), 1000):
        ingest.submit(msgs[i:i + 1000])
        ingest.drain()


def units_at(world: World, ts: int, prefix: str, video: Sequence[str] = ()
             ) -> list[tuple[str, str]]:
    """The simulator's workers, resources and cameras (same seed, same ids) at their posts,
    as they were when the history starts; the live simulator's newer reports replace these.
    Cameras too, so a replay of the past shows them (`video`: the demo video's bases)."""
    out = []
    for w in world.workers:
        lon, lat = w.mover.at(0)
        out.append((f"{prefix}worker", {"id": w.id, "name": w.name, "grid_id": w.grid,
                                  "status": "on_duty", "phone": w.phone, "lon": round(lon, 6),
                                  "lat": round(lat, 6), "ts": ts}))
    for r in world.resources:
        msg = {"id": r.id, "kind": r.kind, "name": r.name, "unit": r.unit,
               "status": "available", "lon": round(r.base[0], 6),
               "lat": round(r.base[1], 6), "ts": ts}
        if r.plate:
            msg["plate"] = r.plate
        out.append((f"{prefix}resource", msg))
    out.extend((f"{prefix}camera", camera_message(c, video, ts)) for c in world.cameras)
    return [(ch, orjson.dumps(m).decode()) for ch, m in out]


class _Player:
    """Plays every life's steps in time order, each at its own moment, through the ingest
    worker (reports, cancels) and the desk (the rest). The watch service follows the log on
    the same clock right after a level I/II report (its alarm at the report's moment) and
    before each tick (patrol, tracks, geofence, the replay); it ticks at each moment a card
    falls due (planned from the lives: a stage still pending at its yellow or red moment)
    and every TICK_MS while the replay records, and archives once a day of history; the duty
    officer acknowledges an event's alerts once it is closed. The watch's cursor is saved,
    so the live one goes on from there. The replay's recorder joins in at `replay_from`."""

    def __init__(self, settings: Settings, store: Store, ingest: Ingest, desk: Desk,
                 clock: _Clock, watch: Watch, out: Seeded) -> None:
        self.settings, self.ingest, self.desk, self.clock, self.out = (
            settings, ingest, desk, clock, out)
        self.watch = watch
        watch.attach(store.r)
        assert watch.ctx is not None
        self.alerts = watch.ctx.alerts
        self._ticked = 0
        self._archived = 0
        self._acked = 0
        self._now = 0
        self._alarm = False  # a step logged what raises an alarm: follow at once
        self.replay_from = 0  # when the replay's recorder joins in (held until then)
        watch.history.hold()

    def run(self, lives: list[Life], now: int, stop: threading.Event | None = None,
            more: Iterable[Iterator[int]] = ()) -> None:
        """Every life's steps and `more` (other step generators: the shifts' handovers, the
        patrols), in time order."""
        self._now = now
        heap: list[tuple[int, int, Iterator[int]]] = []
        for i, steps in enumerate((*(self._life(life, now) for life in lives), *more)):
            first = next(steps, None)
            if first is not None:
                heapq.heappush(heap, (first, i, steps))
        first, said = (heap[0][0] if heap else now), time.monotonic()
        while heap and (stop is None or not stop.is_set()):
            ts, i, steps = heapq.heappop(heap)
            if time.monotonic() - said >= PROGRESS_S:  # a newcomer waits: say how far
                said = time.monotonic()
                log.info("demo history: %d %% written (up to %s)",
                         100 * (ts - first) // max(1, now - first),
                         datetime.fromtimestamp(ts / 1000, ZoneInfo(self.settings.timezone))
                         .strftime("%Y-%m-%d"))
            self._at(ts)
            following = next(steps, None)  # does the step, says when the next one is
            if self._alarm:  # a level I/II report: its alarm at its own moment
                self.follow()
            if following is not None:
                heapq.heappush(heap, (following, i, steps))
        self.follow()
        if stop is None or not stop.is_set():
            self._look(now)

    def follow(self) -> None:
        """The watch reads what the steps since it last read logged, at the last step's
        moment."""
        self._alarm = False
        while self.watch.process() >= BLOCK:
            pass

    def moved(self, fixes: int) -> None:
        self.out.fixes += fixes

    def handed(self, state: str) -> None:
        """A past shift's report, done as far as it goes (draft, signed, accepted)."""
        self.out.handovers[state] = self.out.handovers.get(state, 0) + 1

    def resume_replay(self) -> None:
        """The replay's recorder records from here on (the log so far is followed)."""
        if self.watch.history.held:
            self.follow()
            self.watch.history.resume(self.watch.cursor)

    def _at(self, ts: int) -> None:
        """While the replay records, the watch's tick when TICK_MS went by; its archiving
        once a day of history, the duty officer's hourly look at the alarms, then the clock
        at `ts`."""
        if ts >= self.replay_from:
            self.resume_replay()
            if ts - self._ticked >= TICK_MS:
                self._tick(ts - 1)
        if ts - self._archived >= ARCHIVE_MS:  # as the watch does (hourly live)
            self.out.archived += self.watch.archive_once(ts - 1)
            self._archived = ts
        self._look(ts)
        self.clock.ms = ts

    def _look(self, ts: int) -> None:
        """The duty officer's hourly look at the alarms, the last one at ACK_QUIET_MS before
        now: what is left open is the last hours' alone."""
        quiet = self._now - ACK_QUIET_MS
        if self._acked < quiet and (ts - self._acked >= HOUR_MS or ts >= quiet):
            at = min(ts, quiet)
            self._acknowledge(at - ACK_AFTER_MS)
            self._acked = at

    def _tick(self, ts: int) -> None:
        """The watch's tick at `ts`, after it read what the last steps logged."""
        if ts == self._ticked:
            return
        self.follow()
        self.clock.ms = ts
        self.out.alerts += self.watch.tick()
        self._ticked = ts

    def _cards(self, pending: dict[str, tuple[int, int]], after: int, before: int
               ) -> Generator[int, None, int]:
        """A tick at each moment in (`after`, `before`) when one of the `pending` stages
        (stage → its start, its limit in s) gets its yellow or red card, as
        `Deadlines.cards` has it, so each card is raised at its own moment; returns how
        many."""
        ratio = self.settings.sla_yellow_ratio
        moments = sorted({m for start, limit_s in pending.values()
                          for m in (start + math.ceil(limit_s * 1000 * ratio),
                                    start + limit_s * 1000)
                          if after < m < before and m + CARD_LAG_MS <= self._now})
        for m in moments:
            yield m + CARD_LAG_MS
            self._tick(m + CARD_LAG_MS)
        return len(moments)

    def _acknowledge(self, before: int) -> None:
        """The duty officer has acknowledged every alarm raised before `before` (an open
        event's too: acknowledged is not resolved), so a first start shows the last hours'
        alarms waiting, not a pile from weeks ago holding the rotation and the duty desk."""
        for alert_id in self.alerts.open_until(before):
            self.alerts.ack(alert_id, by=DUTY)

    def _send(self, msg: dict[str, Any]) -> None:
        # the watch raises an alarm for a level I/II event as it reads the report
        self._alarm = self._alarm or msg.get("severity") in URGENT_LEVELS
        self.ingest.submit([(f"{self.settings.prefix}event", orjson.dumps(msg).decode())])
        self.ingest.drain()

    def _dispatch(self, eid: str) -> dict[str, Any]:
        """The proposal; when no unit makes it in time, the nearest free worker with the
        reason the commander would give (the desk keeps it as an override)."""
        try:
            return self.desk.dispatch(eid, by=COMMANDER, key=f"history-{eid}",
                                      assignees=None, plan_id=None)[0]
        except Refused as exc:
            if exc.code != "no_units":
                raise
        near = self.desk.proposal(eid)["candidates"]["workers"][:1]
        if not near:
            raise Refused("no_units", 409, "no free worker")
        return self.desk.dispatch(eid, by=COMMANDER, key=f"history-{eid}",
                                  assignees=[{"id": near[0]["id"], "kind": "worker"}],
                                  plan_id=None, override_reason=NEAREST_REASON)[0]

    def _life(self, life: Life, now: int) -> Iterator[int]:
        """Yields the moment of each next step (and of each card due meanwhile); resumed
        at that moment, it does the step."""
        eid, lim, end = life.msg["id"], life.limits, now + 1
        yield life.report
        self._send(life.msg)
        self.out.events += 1
        pending = {"dispatch": (life.report, lim.dispatch_s)} if lim else {}
        # its alarm (level I/II) or a card: what the duty officer acknowledges at the close
        alerted = life.msg["severity"] in URGENT_LEVELS
        if life.cancel is not None and life.cancel <= now:
            yield from self._cards(pending, life.report, life.cancel)
            yield life.cancel
            self._send({**life.msg, "status": "cancelled", "ts": life.cancel})
            return
        if life.dispatch is None or life.dispatch > now:
            yield from self._cards(pending, life.report, end)
            return
        alerted = (yield from self._cards(pending, life.report, life.dispatch)) > 0 or alerted
        yield life.dispatch
        try:
            task = self._dispatch(eid)
        except Refused as exc:
            self.out.refused += 1  # no free unit at all: it waits on the wall, as it would
            log.debug("history: %s not dispatched: %s", eid, exc)
            yield from self._cards(pending, life.dispatch - 1, end)
            return
        self.out.dispatched += 1
        pending = {"arrive": (life.dispatch, lim.arrive_s),
                   "handle": (life.dispatch, lim.handle_s)} if lim else {}
        last = life.dispatch
        for stage, ts in life.steps:
            alerted = (yield from self._cards(pending, last, min(ts, end))) > 0 or alerted
            if ts > now:
                return
            yield ts
            self.desk.on_feedbacks([{"task_id": task["id"], "event_id": eid,
                                     "actor_id": a["id"], "stage": stage, "ts": ts}
                                    for a in task["assignees"]])
            last = ts
            if stage == "arrived":
                pending.pop("arrive", None)
            elif stage == "handled":
                pending.clear()
        if pending:  # accepted, then nothing: overdue on the wall
            yield from self._cards(pending, last, end)
            return
        if life.verify is None or life.verify > now:
            return
        yield life.verify
        self.desk.verify(eid, by=DUTY, passed=True)
        if life.evaluate is None or life.evaluate > now:
            return
        yield life.evaluate
        self.desk.evaluate(eid, by=DUTY, score=life.score)
        self.out.closed += 1
        if not alerted:
            return
        for alert in self.alerts.open(limit=1000):
            if alert.get("event_id") == eid:
                self.alerts.ack(str(alert["id"]), by=DUTY)
