"""The watch service's one log follower: tails the change log from its cursor and hands each
entry to the handlers, ticks them, and keeps its heartbeat (feeds/watch/__init__.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import orjson
import redis

from dashboard.archive.events import Archive
from dashboard.archive.tracks import Tracks
from dashboard.backoff import Backoff, reconnecting
from dashboard.command.alerts import Alerts
from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.connect import open_redis
from dashboard.store import Store, now_ms
from feeds.watch.alarms import Alarms
from feeds.watch.archiving import Archiving
from feeds.watch.cards import Cards
from feeds.watch.context import REDIS_DOWN, Context, Handler
from feeds.watch.geofence import Geofence
from feeds.watch.loop import CommandLoop
from feeds.watch.patrol import Patrol
from feeds.watch.replay import HistoryWriter
from feeds.watch.tracks import TrackWriter

log = logging.getLogger("cc.watch")

BLOCK: Final = 500  # log entries read per round trip
HEARTBEAT_S: Final = 1.0
HEARTBEAT_TTL_S: Final = 15
ENTRY_ATTEMPTS: Final = 3
IDLE_WAIT_MS: Final = 200  # longest XREAD block, so `stop` is seen promptly
# The kinds some handler acts on; the rest (alerts, videos, cameras …) are not parsed.
WATCHED: Final = frozenset({"feedback", "task", "event", "worker", "resource"})


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
        self.ctx: Context | None = None
        self.cursor = 0
        self.counters = {"processed": 0, "alerts": 0, "errors": 0, "skipped": 0,
                         "reconnects": 0}
        self.cards = Cards(self.deadlines)
        self.archiving = Archiving()
        self.tracks = TrackWriter()
        self.history = HistoryWriter()  # the replay's history: every entry, every kind
        # Entries go to each in this order (a worker's position: patrol, geofence, track,
        # then its status); ticks too (cards, the archive, then the tracks' compaction).
        self.handlers: list[Handler] = [self.cards, self.archiving, CommandLoop(), Patrol(),
                                        Geofence(), self.tracks, Alarms(), self.history]
        self._last_tick = float("-inf")
        self._last_hb = float("-inf")
        self._hb_rtt = 0.0  # the last heartbeat's round trip: Redis latency as watch sees it
        self._down_since = 0.0

    # -- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        backoff = reconnecting()
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
        client = open_redis(self.redis_url, decode_responses=True,
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
        """Use `client` from now on and find where to resume. Every handler starts with
        empty caches: Redis may have restarted empty, so what was raised is asked of it
        again, not assumed."""
        store = Store(client, self.settings.prefix, self.settings.log_maxlen)
        self.ctx = Context(
            settings=self.settings, clock=self.clock, store=store,
            alerts=Alerts(store, self.clock),
            desk=Desk(store, self.plans, self.deadlines, self.settings, self.clock),
            archive=Archive(store, self.settings, self.deadlines),
            tracks=Tracks(client, self.settings.prefix, self.settings.timezone,
                          self.settings.track_keep_days),
            counters=self.counters)
        for handler in self.handlers:
            handler.attach(self.ctx)
        self.cursor = self._start_cursor()
        self.history.catch_up(self.cursor)

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
            self.history.record(seq, kind, op, data)  # before the handlers: no entry missed
            acted = self._handle_retrying(seq, kind, op, data)
            self.cursor = seq
            self.counters["processed"] += 1
            if acted:  # a side effect happened: never do it twice after a crash
                self._save_cursor()
        if entries:
            for handler in self.handlers:
                handler.flush()
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

    def _handle(self, seq: int, kind: str, op: str, data: str) -> bool:
        """Hand one entry to every handler; True when one of them changed something."""
        if kind not in WATCHED:
            return False
        record: dict[str, Any] = orjson.loads(data)
        acted = False
        for handler in self.handlers:
            acted = handler.entry(seq, kind, op, record) or acted
        return acted

    def _save_cursor(self) -> None:
        store = self._store()
        store.r.set(store.key("watch:cursor"), self.cursor)

    # -- the clock ------------------------------------------------------------------------

    def tick(self) -> int:
        """Every handler's periodic work; returns how many alerts were raised."""
        now = int(self.clock())
        return sum(handler.tick(now) for handler in self.handlers)

    def archive_once(self, now: int) -> int:
        """One bounded batch of closed events into the archive (docs/COCKPIT.md)."""
        return self.archiving.archive_once(now)

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
                                "lag": max(0, seq - self.cursor), **self.counters,
                                "redis_rtt_s": round(self._hb_rtt, 6)})
        pipe.expire(key, HEARTBEAT_TTL_S)
        started = time.perf_counter()
        pipe.execute()
        self._hb_rtt = time.perf_counter() - started

    def _store(self) -> Store:
        assert self.ctx is not None, "attach() first"
        return self.ctx.store

