"""Ingest: subscribe → validate → normalise → locate grid → persist → log → publish for the relay.

Run as `python -m feeds.ingest`. Messages are handled in batches (whatever arrived since the
last round, up to BATCH_MAX) so one Redis round trip applies hundreds of changes. Rejected
messages go to the dead-letter list with their reason; nothing stops the loop but `stop`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import redis

from dashboard import protocol
from dashboard.backoff import Backoff
from dashboard.city import City, load_city
from dashboard.config import Settings
from dashboard.models import EVENT_CLOSED, KINDS
from dashboard.store import Change, Outcome, Store, day_of
from feeds.service import run_service

log = logging.getLogger("cc.ingest")

BATCH_MAX: Final = 2000
CACHE_MAX: Final = 100_000  # records kept for merging; far above a city's live entities
HEARTBEAT_S: Final = 1.0
HEARTBEAT_TTL_S: Final = 15
DEGRADED_SHOWN_S: Final = 300  # health keeps saying "degraded" this long after an outage
CONFLICT_ROUNDS: Final = 3
DEFAULT_STATUS: Final = {"event": "reported", "worker": "on_duty", "resource": "available"}


@dataclass
class Counters:
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    conflicts: int = 0
    reconnects: int = 0
    last_ts: int = 0
    window_start: float = field(default_factory=time.monotonic)
    window_accepted: int = 0
    rate: float = 0.0
    degraded_since: int = 0
    last_outage: tuple[int, int] | None = None  # (from, to) epoch ms


class Ingest:
    """One ingest worker. `run(stop)` blocks until `stop` is set."""

    def __init__(self, settings: Settings, redis_url: str, city: City | None = None) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.prefix = settings.prefix
        self.city = city or load_city(settings.city)
        self.channels = {f"{self.prefix}{kind}": kind for kind in KINDS}
        self.cache: OrderedDict[tuple[str, str], tuple[dict[str, Any], str]] = OrderedDict()
        self.counters = Counters()
        self.store: Store | None = None
        # (accepted, merged records, merged without a cached record) per batch sent
        self.in_flight: deque[tuple[list[tuple[protocol.Accepted, bytes | str]],
                                    list[dict[str, Any]], list[bool]]] = deque()
        self._last_hb = 0.0

    # -- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        # Build the grid index now, not on the first event: that one would wait a second.
        self.city.locate(*self.city.centroid)
        backoff = Backoff(0.1, 5.0)
        while not stop.is_set():
            try:
                self._consume(stop, backoff)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                if not self.counters.degraded_since:
                    self.counters.degraded_since = int(time.time() * 1000)
                    log.warning("ingest lost Redis: %s; reconnecting", exc)
                stop.wait(backoff.next())

    def _consume(self, stop: threading.Event, backoff: Backoff) -> None:
        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2,
                                      health_check_interval=10)
        self.store = Store(client, self.prefix, self.settings.log_maxlen,
                           self.settings.deadletter_max)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(*self.channels)
            client.ping()
            self._recovered()
            backoff.reset()
            while not stop.is_set():
                # The wait goes through get_message (it keeps the health check); what is
                # already buffered is read straight off the connection: get_message costs
                # several µs a message, a third of the loop's Python time at full rate.
                first = pubsub.get_message(timeout=0.2)
                if first is not None:
                    batch = [(first["channel"], first["data"])] \
                        if first["type"] == "message" else []
                    self._read_buffered(pubsub.connection, batch)
                    self.submit(batch)
                # One batch stays in flight while more arrive; when idle, finish it.
                self.drain(keep=1 if first is not None else 0)
                self._heartbeat()
        finally:
            self.in_flight.clear()
            self.store.close_apply()
            pubsub.close()
            client.close()

    @staticmethod
    def _read_buffered(conn: Any, batch: list[tuple[bytes | str, bytes | str]]) -> None:
        """Append the messages that can be read without waiting, up to BATCH_MAX."""
        while len(batch) < BATCH_MAX and conn.can_read(timeout=0):
            reply = conn.read_response(disconnect_on_error=False, push_request=True)
            # Subscribe confirmations and health-check pongs are not messages.
            if reply and reply[0] == b"message":
                batch.append((reply[1], reply[2]))

    def _recovered(self) -> None:
        c = self.counters
        if c.degraded_since:
            c.reconnects += 1
            c.last_outage = (c.degraded_since, int(time.time() * 1000))
            log.warning("ingest reconnected to Redis")
            c.degraded_since = 0
            # Redis may have restarted empty: merged records must be re-read, not assumed.
            self.cache.clear()
        self._heartbeat(force=True)

    def _heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_hb < HEARTBEAT_S:
            return
        self._last_hb = now
        c = self.counters
        elapsed = now - c.window_start
        if elapsed > 0:
            c.rate = c.window_accepted / elapsed
        c.window_start, c.window_accepted = now, 0
        assert self.store is not None
        key = self.store.key("ingest:hb")
        outage = ""
        if c.last_outage:
            outage = json.dumps({"from": c.last_outage[0], "to": c.last_outage[1]})
        recent = bool(outage) and time.time() * 1000 - c.last_outage[1] < DEGRADED_SHOWN_S * 1000
        pipe = self.store.r.pipeline(transaction=False)
        pipe.hset(key, mapping={
            "ts": int(time.time() * 1000), "rate": round(c.rate, 1), "accepted": c.accepted,
            "rejected": c.rejected, "stale": c.stale, "conflicts": c.conflicts,
            "last_ts": c.last_ts,
            "reconnects": c.reconnects, "last_outage": outage,
            "degraded": outage if recent else "",
        })
        pipe.expire(key, HEARTBEAT_TTL_S)
        pipe.execute()

    # -- one batch ----------------------------------------------------------------------

    def handle(self, messages: list[tuple[bytes | str, bytes | str]]) -> None:
        """Validate, merge and apply a batch of (channel, payload) messages, and wait."""
        self.submit(messages)
        self.drain()

    def submit(self, messages: list[tuple[bytes | str, bytes | str]]) -> None:
        """Validate and merge a batch and send it to Redis without waiting for the answer.

        The loop validates the next batch while Redis runs this one; `drain` reads answers.
        """
        assert self.store is not None
        now_ms = int(time.time() * 1000)
        pipe = self.store.r.pipeline(transaction=False)
        accepted: list[tuple[protocol.Accepted, bytes | str]] = []
        for channel, data in messages:
            name = channel.decode() if isinstance(channel, bytes) else channel
            result = protocol.parse(self.channels.get(name, name), data, now_ms)
            if isinstance(result, protocol.Rejected):
                self._reject(name, data, result.code, result.reason, pipe)
            else:
                accepted.append((result, data))
        if len(pipe):
            pipe.execute()
        if accepted:
            # No read of uncached records here: it would wait behind the batch Redis is
            # running and undo the overlap. An uncached id is sent as new (rev 0); if Redis
            # holds it after all, the script answers a conflict with the stored record and
            # the change is merged again (drain), which costs the same round trip, once.
            merged = [self._change(result) for result, _ in accepted]
            self.store.send_apply([change for change, _, _ in merged])
            self.in_flight.append((accepted, [record for _, record, _ in merged],
                                   [cold for _, _, cold in merged]))

    def drain(self, keep: int = 0) -> None:
        """Read answers of sent batches until at most `keep` are in flight.

        Revision conflicts are retried only once nothing is in flight: the apply connection
        answers in order, so a retry must not overtake a batch still waiting for its answer.
        """
        assert self.store is not None
        pipe = self.store.r.pipeline(transaction=False)
        pending: list[tuple[protocol.Accepted, bytes | str]] = []
        while len(self.in_flight) > keep or (pending and self.in_flight):
            accepted, records, colds = self.in_flight.popleft()
            try:
                outcomes = self.store.read_apply()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.in_flight.clear()
                raise
            pending += self._settle(accepted, records, colds, outcomes, pipe)
        for _ in range(CONFLICT_ROUNDS):
            if not pending:
                break
            self._warm_cache(pending)
            merged = [self._change(result) for result, _ in pending]
            outcomes = self.store.apply([change for change, _, _ in merged])
            pending = self._settle(pending, [r for _, r, _ in merged],
                                   [cold for _, _, cold in merged], outcomes, pipe)
        for result, data in pending:  # still colliding after retries: keep, never drop
            self._reject(f"{self.prefix}{result.kind}", data, "conflict",
                         "concurrent updates kept colliding; retry", pipe)
        if len(pipe):
            pipe.execute()

    def _reject(self, channel: str, data: bytes | str, code: str, reason: str, pipe: Any) -> None:
        assert self.store is not None
        self.counters.rejected += 1
        if code == "stale":
            self.counters.stale += 1
        self.store.dead_letter(channel, data, code, reason, pipe)

    def _settle(self, accepted: list[tuple[protocol.Accepted, bytes | str]],
                records: list[dict[str, Any]], colds: list[bool], outcomes: list[Outcome],
                pipe: Any) -> list[tuple[protocol.Accepted, bytes | str]]:
        """Count what was applied, dead-letter the stale; return the revision conflicts.

        A conflict on a change merged without a cached record is only the first sight of a
        stored entity (after a restart, or once it left the cache), not a concurrent writer,
        and is not counted as a conflict."""
        conflicts = []
        counters, cache = self.counters, self.cache
        for (result, data), record, cold, outcome in zip(accepted, records, colds, outcomes,
                                                         strict=True):
            key = (result.kind, result.id)
            if outcome.code == 1:
                counters.accepted += 1
                counters.window_accepted += 1
                if result.record["received"] > counters.last_ts:
                    counters.last_ts = result.record["received"]
                cached = cache.get(key)
                if result.kind == "event" and record.get("status") in EVENT_CLOSED:
                    # Closed events are rarely touched again: keep the cache to live things.
                    if cached is not None and int(cached[1]) <= int(outcome.rev):
                        del self.cache[key]
                # A later batch may already have advanced this entry: never step it back.
                elif result.kind != "feedback" and (
                    cached is None or int(cached[1]) <= int(outcome.rev)
                ):
                    self._remember(key, record, outcome.rev)
            elif outcome.code == 0:
                self.cache.pop(key, None)
                self._reject(f"{self.prefix}{result.kind}", data, "stale",
                             f"ts {result.ts} is older than the stored {outcome.stored_ts}", pipe)
            else:
                if not cold:
                    self.counters.conflicts += 1
                if outcome.stored:
                    self._remember(key, orjson.loads(outcome.stored), outcome.rev)
                else:
                    self.cache.pop(key, None)
                conflicts.append((result, data))
        return conflicts

    def _warm_cache(self, accepted: list[tuple[protocol.Accepted, bytes | str]]) -> None:
        assert self.store is not None
        missing: dict[str, set[str]] = {}
        for result, _ in accepted:
            if result.kind != "feedback" and (result.kind, result.id) not in self.cache:
                missing.setdefault(result.kind, set()).add(result.id)
        for kind, ids in missing.items():
            found = self.store.records(kind, ids)
            for entity_id in ids:
                record, rev = found.get(entity_id, (None, "0"))
                self._remember((kind, entity_id), record, rev)

    def _remember(self, key: tuple[str, str], record: dict[str, Any] | None, rev: str) -> None:
        self.cache[key] = (record or {}, rev)
        self.cache.move_to_end(key)
        if len(self.cache) > CACHE_MAX:
            self.cache.popitem(last=False)

    def _change(self, result: protocol.Accepted) -> tuple[Change, dict[str, Any], bool]:
        """The change to apply, the merged record it carries, and whether it was merged
        without a cached record (sent as new)."""
        kind, new = result.kind, result.record
        if kind == "feedback":
            return Change(kind, result.id, result.ts, "0", orjson.dumps(new),
                          new.get("stage", ""), 0.0, 0.0), new, False
        cached = self.cache.get((kind, result.id))
        old, rev = cached if cached is not None else ({}, "0")
        record = {**old, **new}
        if "status" in new and result.ts < old.get("status_ts", 0):
            # Observed before the command center last set the status (a fix taken just
            # before a dispatch, applied just after it): the position counts, not the status.
            record["status"] = old["status"]
        self._locate(kind, record, new)
        status = record.get("status") or DEFAULT_STATUS.get(kind, "")
        if kind == "camera":
            status = "offline" if record.get("online") is False else "online"
        elif status:
            record["status"] = status
        extra: tuple[str, str, str, str] = ("", "", "", "")
        if kind == "event":
            record["first_ts"] = old.get("first_ts", result.ts)
            day = day_of(result.ts, self.settings.timezone)
            extra = (str(record["severity"]), record["category"],
                     str(record.get("source") or "other"), day)
        text = orjson.dumps(record)  # bytes: sent as is, no decode and re-encode
        # Optimistic: a second message for the same id in this batch builds on this one.
        self.cache[(kind, result.id)] = (record, str(int(rev) + 1))
        change = Change(kind, result.id, result.ts, rev, text, status, record["lon"],
                        record["lat"], *extra)
        return change, record, cached is None

    def _locate(self, kind: str, record: dict[str, Any], new: dict[str, Any]) -> None:
        here = self.city.locate(record["lon"], record["lat"])
        if kind == "worker":
            record["loc_grid_id"] = here  # where they are; grid_id is where they are assigned
            if not record.get("grid_id"):
                record["grid_id"] = here
        elif "grid_id" not in new or not new.get("grid_id"):
            record["grid_id"] = here
        grid = record.get("grid_id")
        if kind == "event":
            parents = self.city.parents(grid) if grid else []
            record["town_id"] = parents[0].code if parents else None
            record["community_id"] = parents[1].code if len(parents) > 1 else None


def main() -> None:
    """`python -m feeds.ingest`: one ingest worker against REDIS_URL."""
    run_service("feeds.ingest", lambda settings, url, stop: Ingest(settings, url).run(stop))


if __name__ == "__main__":
    main()
