"""The watch service: follows the change log and turns what happens into the command loop.

Run as `python -m feeds.watch`. It tails `Plog` from `Pwatch:cursor` (so a restart resumes
where it stopped, and a log trimmed past the cursor resumes at its first entry) and for each
entry:

- `feedback` → `Desk.on_feedback` (the task lifecycle: accepted, arrived, handled, …);
- a `task` whose stage became `rejected` / `need_support` → a `critical_event` alert;
- an open `event` of level I/II → one `critical_event` alert;
- a `worker` whose status became `sos` → one `sos` alert per episode;
- a `worker` on duty outside the grid assigned to them → one `geofence_exit` alert per exit
  (`_geofence`; the episode is kept in `Pgeofence:out`, so a restart does not raise it again);
- a `worker` or `resource` position → its track (`Ptrack:*`, dashboard/archive/tracks.py), thinned
  and appended once per block.

Every `watch_tick_s` it asks `Deadlines.cards` about every open event and raises
`sla_yellow` / `sla_red` once per (event, stage, colour), and trims old alerts. Heartbeat in
`Pwatch:hb` (ts, cursor, lag). The clock is injectable, so tests decide what time it is.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

import orjson
import redis

from dashboard.archive.events import Archive
from dashboard.archive.stats import PATROL_KEEP_S, patrol_key
from dashboard.archive.tracks import AHEAD_MAX_MS, Fix, Thinner, Tracks
from dashboard.backoff import Backoff
from dashboard.city import load_city
from dashboard.command.alerts import Alerts
from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.i18n import t
from dashboard.models import EVENT_CLOSED, SEVERITIES, URGENT_LEVELS
from dashboard.store import Store, day_of, now_ms
from feeds.service import run_service

log = logging.getLogger("cc.watch")

BLOCK: Final = 500  # log entries read per round trip
HEARTBEAT_S: Final = 1.0
HEARTBEAT_TTL_S: Final = 15
TRIM_S: Final = 60.0
ENTRY_ATTEMPTS: Final = 3
QUIET_MAX_MS: Final = 60_000  # cards of an unchanged event are recomputed at least this often
IDLE_WAIT_MS: Final = 200  # longest XREAD block, so `stop` is seen promptly
CACHE_MAX: Final = 100_000  # remembered workers / events; far above a city's live entities
DAY_S: Final = 86_400
# A cause is remembered (and so not raised again) this long.
CRITICAL_TTL_S: Final = 30 * DAY_S  # a level I/II event is announced once in its life
SLA_TTL_S: Final = 30 * DAY_S
TASK_TTL_S: Final = 7 * DAY_S
SOS_TTL_S: Final = 7 * DAY_S
GEOFENCE_TTL_S: Final = 7 * DAY_S
GEOFENCE_SEVERITY: Final = 3  # level III: someone to ring, not an emergency by itself
# Out of their grid but not an alarm: sent on a task, busy with one, or in an SOS (its own
# alarm). Such an episode stays excused until the worker is back in their grid, so the walk
# home after a task raises nothing.
GEOFENCE_EXCUSED: Final = ("busy", "sos")
TASK_ALERT_STAGES: Final = ("rejected", "need_support")
REDIS_DOWN: Final = (redis.ConnectionError, redis.TimeoutError, OSError)


class Watch:
    """One watch worker. `run(stop)` blocks until `stop` is set; `attach`, `process` and
    `tick` are the steps, callable one by one (tests drive them with their own clock)."""

    def __init__(self, settings: Settings, redis_url: str, clock: Callable[[], int] = now_ms,
                 plans: PlanLibrary | None = None, deadlines: Deadlines | None = None) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.clock = clock
        self.plans = plans or PlanLibrary.load()
        self.deadlines = deadlines or Deadlines.load()
        self.store: Store | None = None
        self.alerts: Alerts | None = None
        self.desk: Desk | None = None
        self.archive: Archive | None = None
        self.cursor = 0
        self.counters = {"processed": 0, "alerts": 0, "errors": 0, "skipped": 0,
                         "reconnects": 0}
        # What was already raised, so steady state costs no round trip per tick.
        self._sla_done: dict[str, set[tuple[str, str]]] = {}
        # event id → (its JSON, its task's JSON, no card can change before this ms)
        self._quiet: dict[str, tuple[str, str | None, int]] = {}
        self._critical_done: OrderedDict[str, None] = OrderedDict()
        self._worker_status: OrderedDict[str, str] = OrderedDict()
        self._patrolled: OrderedDict[str, tuple[str, str]] = OrderedDict()  # id → (day, grid)
        self._fence: OrderedDict[str, str] = OrderedDict()  # worker → episode cause, "" = none
        self._patrol_new: dict[str, set[str]] = {}  # day → grids seen since the last flush
        self.tracks: Tracks | None = None
        self._thinner = Thinner()  # tracks: the last kept fix per unit (bounded)
        self._track_new: dict[tuple[str, str], list[Fix]] = {}  # (kind, id) → fixes to append
        self._track_compacted = ""  # the last finished day whose tracks were compacted
        self._track_cursor = 0  # where that compaction's SCAN is
        self._last_archive = float("-inf")
        self._archive_backlog = False
        self._last_tick = float("-inf")
        self._last_trim = float("-inf")
        self._last_hb = float("-inf")
        self._down_since = 0.0

    # -- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        backoff = Backoff(0.1, 5.0)
        while not stop.is_set():
            try:
                self._session(stop, backoff)
            except REDIS_DOWN as exc:
                if not self._down_since:
                    self._down_since = time.monotonic()
                    log.warning("watch lost Redis: %s; reconnecting", exc)
                stop.wait(backoff.next())
            except Exception:  # a bug must not end the service: log it, start over
                self.counters["errors"] += 1
                log.exception("watch failed; starting over")
                stop.wait(backoff.next())

    def _session(self, stop: threading.Event, backoff: Backoff) -> None:
        client = redis.Redis.from_url(self.redis_url, decode_responses=True,
                                      socket_connect_timeout=2, socket_timeout=10,
                                      health_check_interval=10)
        try:
            client.ping()
            self.attach(client)
            if self._down_since:
                self.counters["reconnects"] += 1
                self._down_since = 0.0
                log.warning("watch reconnected to Redis at cursor %d", self.cursor)
            backoff.reset()
            self._heartbeat(force=True)
            while not stop.is_set():
                handled = self.process()
                if time.monotonic() - self._last_tick >= self.settings.watch_tick_s:
                    self._last_tick = time.monotonic()
                    self.tick()
                self._heartbeat()
                if handled == 0:
                    self._wait_for_log()
        finally:
            client.close()

    def attach(self, client: redis.Redis) -> None:
        """Use `client` from now on and find where to resume."""
        self.store = Store(client, self.settings.prefix, self.settings.log_maxlen)
        self.alerts = Alerts(self.store, self.clock)
        self.desk = Desk(self.store, self.plans, self.deadlines, self.settings, self.clock)
        self.archive = Archive(self.store, self.settings, self.deadlines)
        self.tracks = Tracks(client, self.settings.prefix, self.settings.timezone,
                             self.settings.track_keep_days)
        self._thinner.clear()  # entries after the saved cursor come again: write them again
        self._track_new.clear()
        # Redis may have restarted empty: what was raised is asked of it again, not assumed.
        for cache in (self._sla_done, self._quiet, self._critical_done, self._worker_status,
                      self._patrolled, self._fence):
            cache.clear()
        self.cursor = self._start_cursor()

    def _start_cursor(self) -> int:
        store = self._store()
        cursor = int(store.r.get(store.key("watch:cursor")) or 0)
        if cursor > store.seq():
            log.warning("watch cursor %d is past the log (Redis was reset): from the start",
                        cursor)
            cursor = 0
        first = store.log_first_seq()
        if first is not None and first > cursor + 1:
            log.warning("log trimmed past the watch cursor %d: resuming at %d", cursor, first)
            self.counters["skipped"] += first - cursor - 1
            cursor = first - 1
        return cursor

    def _wait_for_log(self) -> None:
        """Block briefly until something is appended after the cursor."""
        store = self._store()
        wait_ms = IDLE_WAIT_MS
        if self.settings.watch_tick_s > 0:
            due = self._last_tick + self.settings.watch_tick_s - time.monotonic()
            wait_ms = max(1, min(IDLE_WAIT_MS, int(due * 1000)))
        store.r.xread({store.key("log"): f"{self.cursor}-0"}, count=1, block=wait_ms)

    # -- the change log -------------------------------------------------------------------

    def process(self, limit: int = BLOCK) -> int:
        """Handle the next block of log entries after the cursor; returns how many."""
        store = self._store()
        entries = store.log_since(self.cursor, limit)
        if entries and entries[0][0] > self.cursor + 1:
            gap = entries[0][0] - self.cursor - 1
            log.warning("log trimmed past the watch cursor: %d entries never seen", gap)
            self.counters["skipped"] += gap
        for seq, kind, op, data in entries:
            acted = self._handle_retrying(seq, kind, op, data)
            self.cursor = seq
            self.counters["processed"] += 1
            if acted:  # a side effect happened: never do it twice after a crash
                self._save_cursor()
        if entries:
            self._flush_patrol()
            self._flush_tracks()
            self._save_cursor()
        return len(entries)

    def _handle_retrying(self, seq: int, kind: str, op: str, data: str) -> bool:
        """`_handle`, tried again when it fails (a desk conflict passes); an entry that keeps
        failing is counted and logged and skipped: one bad entry must not stop the loop."""
        for attempt in range(1, ENTRY_ATTEMPTS + 1):
            try:
                return self._handle(seq, kind, op, data)
            except REDIS_DOWN:
                raise
            except Exception as exc:
                if attempt == ENTRY_ATTEMPTS:
                    self.counters["errors"] += 1
                    log.warning("watch: log entry %d (%s) failed %d times, skipped: %r", seq,
                                kind, attempt, exc)
                    return True
                time.sleep(0.01 * attempt)
        return True

    def _save_cursor(self) -> None:
        store = self._store()
        store.r.set(store.key("watch:cursor"), self.cursor)

    def _handle(self, seq: int, kind: str, op: str, data: str) -> bool:
        """Act on one entry; True when it changed something."""
        if kind == "feedback":
            assert self.desk is not None
            self.desk.on_feedback(json.loads(data))
            return True
        if kind == "task":
            return self._task(json.loads(data))
        if kind == "event":
            return self._event(json.loads(data))
        if kind == "resource":
            self._track(kind, orjson.loads(data))
            return False
        if kind == "worker":
            worker = orjson.loads(data)  # every move is read (patrol): the faster parser
            self._patrol(worker)
            fenced = self._geofence(seq, worker)
            self._track(kind, worker)
            # Moves keep the status by definition (ingest logs `move` only then).
            return (self._worker(seq, worker) if op == "upsert" else False) or fenced
        return False

    def _patrol(self, worker: dict[str, Any]) -> None:
        """The grid an on-duty worker is in joins today's patrolled set (the cockpit's
        patrol coverage); one round trip per worker per grid change, not per position."""
        grid = worker.get("loc_grid_id") or worker.get("grid_id")
        ts = worker.get("ts")
        if not grid or worker.get("status") == "off_duty" or not isinstance(ts, int):
            return
        day = day_of(ts, self.settings.timezone)
        worker_id = str(worker.get("id"))
        if self._patrolled.get(worker_id) == (day, str(grid)):
            return
        _remember(self._patrolled, worker_id, (day, str(grid)))
        self._patrol_new.setdefault(day, set()).add(str(grid))

    def _geofence(self, seq: int, worker: dict[str, Any]) -> bool:
        """One `geofence_exit` alert when an on-duty worker's position (`loc_grid_id`) leaves
        the grid assigned to them (`grid_id`), none for the positions after it: the episode
        (`Pgeofence:out` worker → cause) ends when they are back in their grid. Off duty:
        nothing (a worker who comes on duty outside their grid is alerted then). Busy, in an
        SOS or with an active task (`Ptask:unit:worker:{id}`, they were sent): the episode
        is recorded as excused. No round trip while nothing changes."""
        home, here = worker.get("grid_id"), worker.get("loc_grid_id")
        if not home or not here:
            return False
        worker_id = str(worker.get("id"))
        known = self._fence.get(worker_id)
        store = self._store()
        key = store.key("geofence:out")
        if here == home:
            if known != "":  # in an episode, or not known since the (re)start
                store.r.hdel(key, worker_id)
                _remember(self._fence, worker_id, "")
            return False
        if known is None:
            known = store.r.hget(key, worker_id) or ""
            _remember(self._fence, worker_id, known)
        status = worker.get("status")
        if known or status == "off_duty":
            return False
        if status in GEOFENCE_EXCUSED:
            cause = f"excused:{status}"
        elif store.r.exists(store.key(f"task:unit:worker:{worker_id}")):
            cause = "excused:task"
        else:
            cause = f"alert:{seq}"
            city = load_city(self.settings.city)
            lang = self.settings.lang
            names = [(u.name if (u := city.unit(str(g))) else str(g)) for g in (home, here)]
            message = t("alert.geofence_exit", lang, name=worker.get("name") or worker_id,
                        grid=names[0], here=names[1])
            # the seq where the episode began tells it from the next one (as an SOS)
            self._raise("geofence_exit", worker_id, None, message, GEOFENCE_SEVERITY,
                        GEOFENCE_TTL_S, str(seq))
        pipe = store.r.pipeline(transaction=False)
        pipe.hset(key, worker_id, cause)
        pipe.expire(key, GEOFENCE_TTL_S)  # a worker who vanished while out must not stay
        pipe.execute()
        _remember(self._fence, worker_id, cause)
        return True

    def _flush_patrol(self) -> None:
        """Today's new grids in one round trip per block of log entries."""
        if not self._patrol_new:
            return
        store = self._store()
        pipe = store.r.pipeline(transaction=False)
        for day, grids in self._patrol_new.items():
            pipe.sadd(patrol_key(store.prefix, day), *grids)
            pipe.expire(patrol_key(store.prefix, day), PATROL_KEEP_S)
        added = sum(pipe.execute()[0::2])
        self._patrol_new.clear()
        if added:  # a grid patrolled for the first time that day moves the coverage
            store.r.incr(store.key("stats:ver"))

    # -- tracks (dashboard/archive/tracks.py) ------------------------------------------------------

    def _track(self, kind: str, unit: dict[str, Any]) -> None:
        """A worker's or vehicle's position, thinned, buffered for `_flush_tracks`. An
        off-duty worker's positions are not kept: the centre follows people at work."""
        if kind == "worker" and unit.get("status") == "off_duty":
            return
        ts, lat, lon = unit.get("ts"), unit.get("lat"), unit.get("lon")
        if not isinstance(ts, int) or not isinstance(lat, int | float) or \
                not isinstance(lon, int | float) or isinstance(lat, bool) or \
                isinstance(lon, bool):
            return
        received = unit.get("received")
        if isinstance(received, int) and ts > received + AHEAD_MAX_MS:
            return  # a clock running ahead: never let it hold back the true fixes
        unit_id = str(unit.get("id"))
        kept = self._thinner.offer(kind, unit_id, Fix(ts, float(lat), float(lon)))
        if kept:
            self._track_new.setdefault((kind, unit_id), []).extend(kept)

    def _flush_tracks(self) -> None:
        """The block's kept fixes in one round trip: an APPEND and an EXPIRE per unit-day."""
        if not self._track_new:
            return
        assert self.tracks is not None
        pipe = self.tracks.r.pipeline(transaction=False)
        for (kind, unit_id), fixes in self._track_new.items():
            for key, day_fixes in self.tracks.group(kind, unit_id, fixes).items():
                self.tracks.append(pipe, key, day_fixes)
        self._track_new.clear()  # before execute: a failed block is not appended twice
        pipe.execute()

    def _compact_tracks(self, now: int) -> None:
        """Yesterday's tracks rewritten at their exact size, one SCAN step per tick."""
        assert self.tracks is not None
        day = day_of(now - DAY_S * 1000, self.settings.timezone)
        if day == self._track_compacted:
            return
        self._track_cursor, _ = self.tracks.compact_step(day, self._track_cursor)
        if self._track_cursor == 0:
            self._track_compacted = day

    def _task(self, task: dict[str, Any]) -> bool:
        stage = task.get("stage")
        if stage not in TASK_ALERT_STAGES:
            return False
        event = self._store().event(str(task.get("event_id"))) or {}
        # When this stage was entered tells it from a later one of the same task; a frame
        # that repeats the task unchanged has the same cause and raises nothing.
        entered = [h.get("ts") for h in task.get("history") or []
                   if isinstance(h, dict) and h.get("stage") == stage]
        cause = f"{stage}:{entered[-1] if entered else task.get('ts')}"
        message = t(f"alert.{stage}", self.settings.lang, task=task.get("id", ""),
                    title=self._title(event, task.get("event_id")))
        return self._raise("critical_event", str(task.get("id")), task.get("event_id"),
                           message, int(event.get("severity") or 3), TASK_TTL_S, cause)

    def _event(self, event: dict[str, Any]) -> bool:
        event_id = str(event.get("id"))
        if event.get("severity") not in URGENT_LEVELS or event.get("status") in EVENT_CLOSED:
            return False
        if event_id in self._critical_done:
            return False
        lang = self.settings.lang
        level = t("sev.level", lang, roman=SEVERITIES[int(event["severity"])].roman)
        message = t("alert.critical_event", lang, level=level,
                    title=self._title(event, event_id))
        raised = self._raise("critical_event", event_id, event_id, message,
                             int(event["severity"]), CRITICAL_TTL_S)
        _remember(self._critical_done, event_id, None)
        return raised

    def _worker(self, seq: int, worker: dict[str, Any]) -> bool:
        worker_id = str(worker.get("id"))
        status = worker.get("status")
        before = self._worker_status.get(worker_id)
        _remember(self._worker_status, worker_id, str(status))
        if status != "sos" or before == "sos":
            return False
        # A new episode: the seq where it began tells it from the next one.
        store = self._store()
        event: dict[str, Any] = {}
        task_id = store.r.get(store.key(f"task:unit:worker:{worker_id}"))
        if task_id:
            raw = store.r.hget(store.key("state:task"), task_id)
            event_id = json.loads(raw).get("event_id") if raw else None
            event = (store.event(event_id) if event_id else None) or {}
        name = worker.get("name") or worker_id
        if event:
            message = t("alert.sos_event", self.settings.lang, name=name,
                        title=self._title(event, event.get("id")))
        else:
            message = t("alert.sos", self.settings.lang, name=name)
        # An SOS is about a person's safety: the gravest level unless its event says so too.
        return self._raise("sos", worker_id, event.get("id"), message,
                           int(event.get("severity") or 1), SOS_TTL_S, str(seq))

    # -- deadlines ------------------------------------------------------------------------

    def tick(self) -> int:
        """Yellow/red cards for every open event (with or without a task); returns how many
        alerts were raised. Trims old alerts once a minute."""
        store = self._store()
        now = int(self.clock())
        open_ids = sorted(store.r.smembers(store.key("events:open")))
        raised = 0
        for start in range(0, len(open_ids), BLOCK):
            chunk = open_ids[start:start + BLOCK]
            pipe = store.r.pipeline(transaction=False)
            pipe.hmget(store.key("state:event"), chunk)
            pipe.mget([store.key(f"task:event:{event_id}") for event_id in chunk])
            events, task_ids = pipe.execute()
            wanted = [tid for tid in task_ids if tid]
            tasks = dict(zip(wanted, store.r.hmget(store.key("state:task"), wanted),
                             strict=True)) if wanted else {}
            for event_id, raw_event, task_id in zip(chunk, events, task_ids, strict=True):
                if raw_event is None:
                    continue
                raw_task = tasks.get(task_id) if task_id else None
                quiet = self._quiet.get(event_id)
                if quiet and quiet[0] == raw_event and quiet[1] == raw_task and now < quiet[2]:
                    continue  # nothing changed and no card is due yet
                try:
                    event = json.loads(raw_event)
                    task = json.loads(raw_task) if raw_task else None
                    if task is not None and task.get("stage") == "rejected":
                        # back with the commander: the clock that runs is the dispatch one
                        task = None
                    raised += self._cards(event_id, event, task, now)
                    quiet_until = self._next_moment(event, task, now)
                except REDIS_DOWN:
                    raise
                except Exception as exc:  # one odd record must not stop every card
                    self.counters["errors"] += 1
                    log.warning("watch: deadlines of event %s failed: %r", event_id, exc)
                    quiet_until = now + QUIET_MAX_MS
                self._quiet[event_id] = (raw_event, raw_task, quiet_until)
        open_set = set(open_ids)
        for cache in (self._sla_done, self._quiet):
            for event_id in [e for e in cache if e not in open_set]:
                del cache[event_id]
        if time.monotonic() - self._last_trim >= TRIM_S:
            self._last_trim = time.monotonic()
            assert self.alerts is not None
            self.alerts.trim(now)
        if self._archive_backlog or \
                time.monotonic() - self._last_archive >= self.settings.archive_every_s:
            self._last_archive = time.monotonic()
            try:
                self.archive_once(now)
            except REDIS_DOWN:
                raise
            except Exception:  # the archive waits for the next round; the cards must not
                self.counters["errors"] += 1
                log.exception("watch: archiving failed")
        self._compact_tracks(now)
        return raised

    def archive_once(self, now: int) -> int:
        """One bounded batch of closed events into the archive (docs/COCKPIT.md); a full
        batch means more wait, so the next tick takes the next one."""
        assert self.archive is not None
        moved = self.archive.run(now, self.settings.archive_batch)
        self._archive_backlog = moved >= self.settings.archive_batch
        for month in self.archive.expire(now, self.settings.archive_keep_months):
            log.info("archive month %s dropped (CC_ARCHIVE_KEEP_MONTHS)", month)
        if moved:
            log.info("archived %d closed events", moved)
        return moved

    def _cards(self, event_id: str, event: dict[str, Any], task: dict[str, Any] | None,
               now: int) -> int:
        done = self._sla_done.setdefault(event_id, set())
        raised = 0
        for card in self.deadlines.cards(event, task, now, self.settings.sla_yellow_ratio):
            key = (card.stage, card.color)
            if key in done:
                continue
            lang = self.settings.lang
            text = card.message.get(lang) or next(iter(card.message.values()), "")
            message = t("alert.sla", lang, title=self._title(event, event_id), card=text)
            if self._raise(f"sla_{card.color}", event_id, event_id, message,
                           int(event.get("severity") or 4), SLA_TTL_S, card.stage):
                raised += 1
            done.add(key)
        return raised

    def _next_moment(self, event: dict[str, Any], task: dict[str, Any] | None,
                     now: int) -> int:
        """The first moment after `now` at which a card could appear for this event and task
        as they are: a yellow or red moment of some stage counted from some start the
        deadlines may use (the report, the dispatch, any step of the task). A superset of
        the real moments, so none is skipped; re-checked at least every QUIET_MAX_MS anyway.
        Calling `cards` only then keeps a tick over thousands of open events cheap."""
        limits = self.deadlines.limits(event)
        starts = {event.get("first_ts"), event.get("ts")}
        if task is not None:
            starts.add(task.get("ts"))
            starts.update(h.get("ts") for h in task.get("history") or [] if isinstance(h, dict))
        ratio = self.settings.sla_yellow_ratio
        soonest = now + QUIET_MAX_MS
        for start in starts:
            if not isinstance(start, int) or isinstance(start, bool):
                continue
            for limit_s in (limits.dispatch_s, limits.arrive_s, limits.handle_s):
                for moment in (start + math.ceil(limit_s * 1000 * ratio),
                               start + limit_s * 1000):
                    if now < moment < soonest:
                        soonest = moment
        return soonest

    # -- helpers --------------------------------------------------------------------------

    def _raise(self, kind: str, subject_id: str, event_id: str | None, message: str,
               severity: int, ttl_s: int, cause: str | None = None) -> bool:
        assert self.alerts is not None
        alert = self.alerts.raise_once(kind, subject_id, event_id, message, severity, ttl_s,
                                       cause)
        if alert is not None:
            self.counters["alerts"] += 1
            log.info("alert %s %s: %s", kind, subject_id, message)
        return alert is not None

    def _title(self, event: dict[str, Any], fallback: Any) -> str:
        if event.get("title"):
            return str(event["title"])
        if event.get("type"):
            return t(f"type.{event['type']}", self.settings.lang)
        return str(fallback or "")

    def _heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_hb < HEARTBEAT_S:
            return
        self._last_hb = now
        store = self._store()
        seq = store.seq()
        if seq < self.cursor:  # the log went back (Redis reset): start over
            log.warning("log seq %d is behind the watch cursor %d: from the start", seq,
                        self.cursor)
            self.cursor = 0
            self._save_cursor()
        key = store.key("watch:hb")
        pipe = store.r.pipeline(transaction=False)
        pipe.hset(key, mapping={"ts": int(time.time() * 1000), "cursor": self.cursor,
                                "lag": max(0, seq - self.cursor), **self.counters})
        pipe.expire(key, HEARTBEAT_TTL_S)
        pipe.execute()

    def _store(self) -> Store:
        assert self.store is not None, "attach() first"
        return self.store


def _remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > CACHE_MAX:
        cache.popitem(last=False)


def main() -> None:
    """`python -m feeds.watch`: one watch service against REDIS_URL."""
    run_service("feeds.watch", lambda settings, url, stop: Watch(settings, url).run(stop))


if __name__ == "__main__":
    main()
