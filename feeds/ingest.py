"""Ingest: subscribe → validate → normalise → locate grid → persist → log → publish for the relay.

Run as `python -m feeds.ingest`, two of them: one holds the lease and applies, the other
stands by with the last seconds of the feed and takes over when the lease lapses
(feeds/failover.py). Messages come from the pub/sub channels and, for producers that need
at-least-once delivery, from the input streams (feeds/streams.py), acknowledged once stored.
They are handled in batches (whatever arrived since the last round, up to BATCH_MAX) so one
Redis round trip applies hundreds of changes. A message that cannot be stored is
dead-lettered with its reason — `store_error` when Redis refuses it — and the rest go on;
nothing stops the loop but `stop`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import redis

from dashboard import protocol
from dashboard.backoff import Backoff, reconnecting
from dashboard.city import City, load_city
from dashboard.config import Settings
from dashboard.connect import is_sentinel, open_redis, server_id
from dashboard.models import EVENT_CLOSED, KINDS
from dashboard.store import (
    APPLIED,
    CONFLICT,
    DUPLICATE,
    STALE,
    Change,
    Outcome,
    Store,
    day_of,
    out_of_memory,
)
from feeds.failover import ACQUIRE_S, RENEW_S, Lease, Marker, Message, Ring
from feeds.service import run_service
from feeds.streams import StreamEntry, StreamInput

log = logging.getLogger("cc.ingest")

BATCH_MAX: Final = 2000
CACHE_MAX: Final = 100_000  # records kept for merging; far above a city's live entities
HEARTBEAT_S: Final = 1.0
HEARTBEAT_TTL_S: Final = 15
DEGRADED_SHOWN_S: Final = 300  # health keeps saying "degraded" this long after an outage
CONFLICT_ROUNDS: Final = 3
DEFAULT_STATUS: Final = {"event": "reported", "worker": "on_duty", "resource": "available"}
STREAM_CHORES_S: Final = 5.0  # claim a dead ingest's stream entries, trim what is acknowledged
STREAM_COUNT: Final = BATCH_MAX // len(KINDS)  # XREADGROUP's COUNT is per stream
STREAM_POLL_S: Final = 0.05  # how often quiet input streams are looked at
YOUNG_S: Final = 3.0  # a process subscribed this recently defers to an older standby
# After the active (re)subscribed, a standby also applies what it reads this long: copies
# published before that, still in the server's output buffer for a busy standby
EPOCH_TAIL_S: Final = 1.0
# After a takeover, the standby's replay (its ring, then EPOCH_TAIL_S of what it reads) may
# store messages before the new active does: until then an older one is a duplicate, as in
# a replay, not a stale report to dead-letter
TAKEOVER_LENIENT_S: Final = 5.0
STANDBY_FRESH_MS: Final = 2500  # a standby heartbeat (written every second) this recent
# A reconnect to another primary through Sentinel within this long is a failover the stack
# rode out (what it may have lost is replayed: docs/OPERATIONS.md, "Sentinel"), not an outage.
FAILOVER_MAX_S: Final = 60


@dataclass
class Counters:
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    conflicts: int = 0
    duplicates: int = 0
    store_errors: int = 0
    extras_dropped: int = 0
    takeovers: int = 0
    replayed: int = 0
    last_takeover: str = ""  # JSON: when, how long it took, how many messages were replayed
    reconnects: int = 0
    last_ts: int = 0
    window_start: float = field(default_factory=time.monotonic)
    window_accepted: int = 0
    rate: float = 0.0
    degraded_since: int = 0
    last_outage: tuple[int, int] | None = None  # (from, to) epoch ms
    failovers: int = 0
    last_failover: tuple[int, int] | None = None  # (from, to) epoch ms


@dataclass(slots=True)
class Flight:
    """One batch sent to Redis: what it holds, to settle once its answer is read."""

    accepted: list[tuple[protocol.Accepted, bytes | str, str]]  # (result, raw, channel)
    changes: list[Change]
    records: list[dict[str, Any]]  # the merged records the changes carry
    colds: list[bool]  # merged without a cached record (sent as new)
    entries: list[StreamEntry]  # input stream entries to acknowledge once settled
    mark: str = ""


class Ingest:
    """One ingest worker. `run(stop)` blocks until `stop` is set."""

    def __init__(self, settings: Settings, redis_url: str, city: City | None = None,
                 instance: str | None = None) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.prefix = settings.prefix
        self.city = city or load_city(settings.city)
        # pid in the name: an operator (or a drill) can tell which process holds the lease
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.channels = {f"{self.prefix}{kind}": kind for kind in KINDS}
        self.channels.update({f"{self.prefix}in:{kind}": kind for kind in KINDS})
        self.max_future_ms = settings.max_future_s * 1000
        self.cache: OrderedDict[tuple[str, str], tuple[dict[str, Any], str]] = OrderedDict()
        self.counters = Counters()
        self.store: Store | None = None
        self.in_flight: deque[Flight] = deque()
        self.active = False
        self.ring = Ring(settings.standby_ring_s, settings.standby_ring_mb * 1024 * 1024)
        # What this process applied while active, on the same bounds: a primary that dies
        # before replicating it takes it along, and a standby may not have read every one of
        # those messages (Valkey writes a PUBLISH's copies one subscriber after another).
        self.applied = Ring(settings.standby_ring_s, settings.standby_ring_mb * 1024 * 1024)
        self.marker = Marker()
        self.lease: Lease | None = None
        self.streams: StreamInput | None = None
        # Replaying messages that may be stored already (`_replay`): an older one than the
        # stored record is a duplicate, not stale; conflict retries keep the mode.
        self._replaying = False
        # read, and sent or about to be, when the connection closed: not known to be stored
        self._unsettled: list[Message] = []
        self._epoch: bytes | None = None  # the active's subscription epoch last seen
        self._epoch_tail_until = 0.0  # a standby applies what it reads until then, too
        self._lenient_until = 0.0  # see `_lenient`
        self._pubsub: Any = None
        self._stop: threading.Event | None = None
        self._last_hb = 0.0
        self._hb_rtt = 0.0  # the last heartbeat's round trip: Redis latency as ingest sees it
        self._last_lease = 0.0
        self._last_chores = 0.0
        self._stream_warned = 0.0
        self._subscribed_at = 0.0
        self._last_stream_read = 0.0
        self._server = ""  # run id of the primary last connected to

    # -- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        # Build the grid index now, not on the first event: that one would wait a second.
        self.city.locate(*self.city.centroid)
        self._stop = stop
        backoff = reconnecting()
        while not stop.is_set():
            try:
                self._consume(stop, backoff)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self.active = False
                if not self.counters.degraded_since:
                    self.counters.degraded_since = int(time.time() * 1000)
                    log.warning("ingest lost Redis: %s; reconnecting", exc)
                stop.wait(backoff.next())
            except redis.RedisError:
                # A key an operator broke (a dead-letter list of another type…): say so and
                # go on rather than die; a message's own faults never get here.
                self.active = False
                log.exception("ingest: Redis refused a command; starting over")
                stop.wait(backoff.next())

    def _consume(self, stop: threading.Event, backoff: Backoff) -> None:
        client = open_redis(self.redis_url, socket_connect_timeout=2,
                            health_check_interval=10)
        self.store = Store(client, self.prefix, self.settings.log_maxlen,
                           self.settings.deadletter_max, self.settings.deadletter_raw_bytes)
        self.lease = Lease(client, self.store.key("ingest:lease"), self.instance)
        self.streams = StreamInput(client, self.prefix, KINDS, self.instance)
        pubsub = self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(*(f"{self.prefix}{kind}" for kind in KINDS))
            self._subscribed_at = time.monotonic()
            server = server_id(client)
            self.streams.ensure_groups()
            moved = bool(self._server) and server != self._server
            if moved and len(self.applied):
                # Another server (a replica Sentinel promoted, Redis restarted): what this
                # process applied on the old one in its last seconds may be missing here.
                # Applying it again is harmless (a repeat is a duplicate).
                log.warning("ingest: Redis is another server; applying again the %d "
                            "messages of its last %.0f s", len(self.applied),
                            self.settings.standby_ring_s)
                self._replay(self.applied.since(None))
            elif self._unsettled and not moved:
                # The same server: only what was read but never confirmed stored may be
                # missing (the connection closed with it in flight or unsent).
                log.warning("ingest: applying again the %d messages Redis had not confirmed",
                            len(self._unsettled))
                self._replay(self._unsettled)
            self.applied.clear()
            self._unsettled = []
            self._lease_tick()  # so the first heartbeat already says which one this is
            self._recovered(server)
            backoff.reset()
            while not stop.is_set():
                self._lease_tick()
                # The wait goes through get_message (it keeps the health check); what is
                # already buffered is read straight off the connection: get_message costs
                # several µs a message, a third of the loop's Python time at full rate.
                batch, closed = self._read_batch(pubsub)
                if not self.active:
                    self.ring.extend(batch)
                    if batch and time.monotonic() < self._epoch_tail_until:
                        self._replay(batch)
                    if closed is not None:
                        raise closed
                    self._heartbeat()
                    continue
                if batch:
                    # Kept before it is sent: if Redis dies with the batch unapplied, the
                    # next server gets it again (`applied` is replayed on a new server).
                    self.applied.extend(batch)
                if closed is not None:
                    self._unsettled.extend(batch)
                    raise closed
                if batch:
                    self.submit(batch, mark=self.marker.after(batch))
                entries = self._stream_read()
                if entries:
                    self.submit_entries(entries)
                # One batch stays in flight while more arrive; when idle, finish it.
                self.drain(keep=1 if batch or entries else 0)
                self._stream_chores()
                self._heartbeat()
        finally:
            self._keep_unread(pubsub)
            self._pubsub = None
            self._unsettle()
            if self.active:
                self.active = False
                # A clean stop hands over at once instead of after the lease lapses.
                with contextlib.suppress(redis.RedisError, OSError):
                    self.lease.release()
            self.store.close_apply()
            pubsub.close()
            client.close()

    @staticmethod
    def _read_ready(conn: Any, batch: list[Message]) -> None:
        """Append the messages that can be read without waiting, up to BATCH_MAX."""
        while len(batch) < BATCH_MAX and conn.can_read(timeout=0):
            reply = conn.read_response(disconnect_on_error=False, push_request=True)
            # Subscribe confirmations and health-check pongs are not messages.
            if reply and reply[0] == b"message":
                batch.append((reply[1], reply[2]))

    @staticmethod
    def _waiting(pubsub: Any) -> list[Message]:
        """What already waits on the pub/sub socket, read without waiting; what was read
        before a failure is kept."""
        unread: list[Message] = []
        with contextlib.suppress(redis.RedisError, OSError):
            if pubsub is not None and pubsub.connection is not None:
                Ingest._read_ready(pubsub.connection, unread)
        return unread

    def _keep_unread(self, pubsub: Any) -> None:
        """Keep what already reached this process but was not read when another connection
        failed: the active applies it again on the next server, the standby rings it.

        A frozen primary's last messages sit on the pub/sub socket while the loop waits out
        a command on the other connection (NODE_TIMEOUT_S); closing the socket then would
        drop them on both ingests, though PUBLISH had counted them delivered."""
        unread = self._waiting(pubsub)
        if not unread:
            return
        log.warning("ingest: keeping %d messages read after its connection failed",
                    len(unread))
        if self.active:
            self.applied.extend(unread)
            self._unsettled.extend(unread)
        else:
            self.ring.extend(unread)

    def _unsettle(self) -> None:
        """Forget the batches in flight, keeping their messages to apply again: sent but
        never confirmed, they may not be stored."""
        self._unsettled = [(channel, data) for flight in self.in_flight
                           for _, data, channel in flight.accepted] + self._unsettled
        self.in_flight.clear()

    @staticmethod
    def _read_batch(pubsub: Any) -> tuple[list[Message], Exception | None]:
        """The messages that arrived (waiting up to 0.2 s for the first), up to BATCH_MAX, and
        the error that closed the connection after them, if one did.

        A server that dies sends its last messages just before the connection closes; they
        are read in the same round as the close is seen. Raising at once would drop them,
        on both ingests alike, after PUBLISH had counted them delivered."""
        batch: list[Message] = []
        try:
            first = pubsub.get_message(timeout=0.2)
            if first is None:
                return batch, None
            if first["type"] == "message":
                batch.append((first["channel"], first["data"]))
            Ingest._read_ready(pubsub.connection, batch)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if not batch:
                raise
            return batch, exc
        return batch, None

    def _lease_tick(self) -> None:
        """The active renews its lease; a standby tries to take it."""
        assert self.lease is not None
        now = time.monotonic()
        if now - self._last_lease < (RENEW_S if self.active else ACQUIRE_S):
            return
        self._last_lease = now
        if self.active:
            if not self.lease.renew():
                # Paused past the lease (or a clock jump): another process applies now.
                log.warning("ingest %s lost the lease; standing by", self.instance)
                self.drain()
                self.active = False
        elif self._defer():
            pass
        elif self.lease.acquire() or self.lease.renew():  # renew: still ours after a reconnect
            self._take_over()
        else:
            epoch = self.store.r.get(self.store.key("ingest:epoch"))  # type: ignore[union-attr]
            if epoch != self._epoch:
                # The active one (re)subscribed: what this process got from before that may
                # have reached no one else. Applying it again is harmless (idempotent). Some
                # of it may still be unread on the socket (this loop was busy, e.g. replaying
                # after its own reconnect): read it first, and apply what arrives in the next
                # moment too, which the server may not have written out yet.
                self._epoch = epoch
                self.ring.extend(self._waiting(self._pubsub))
                self._replay(self.ring.since(None))
                self._epoch_tail_until = time.monotonic() + EPOCH_TAIL_S

    def _young(self) -> bool:
        """Subscribed too recently to hold what a dead active missed."""
        return time.monotonic() - self._subscribed_at < YOUNG_S

    def _defer(self) -> bool:
        """A process just (re)started leaves the lease to an older standby, whose ring holds
        what the dead active had not applied (a supervisor restarts the dead one within a
        second, racing the standby for the lease it left)."""
        if not self._young():
            return False
        assert self.store is not None
        other = self.store.r.hmget(self.store.key("ingest:standby"), "instance", "ts")
        instance, ts = (v.decode() if isinstance(v, bytes) else v for v in other)
        return bool(instance and instance != self.instance and ts
                    and time.time() * 1000 - int(ts) < STANDBY_FRESH_MS)

    def _take_over(self) -> None:
        """Become the active one: apply what the last active did not, then go on live."""
        assert self.store is not None
        started = time.monotonic()
        self.active = True
        if self._server:  # not a fresh start: another process may be replaying meanwhile
            self._lenient_until = time.monotonic() + TAKEOVER_LENIENT_S
        mark = self.store.r.get(self.store.key("ingest:mark"))
        backlog = self.ring.since(mark.decode() if isinstance(mark, bytes) else mark)
        self.ring.clear()
        self._replay(backlog, marked=True)
        # A standby subscribed before this process (re)subscribed holds messages it missed:
        # a new epoch tells it to replay its ring (`_lease_tick`).
        self.store.r.set(self.store.key("ingest:epoch"), f"{self.instance}:{time.time_ns()}")
        claimed = self._claim() if self.streams is not None else 0
        if self.lease is not None:
            self.lease.forget_standby(self.store.key("ingest:standby"))
        c = self.counters
        c.takeovers += 1
        c.replayed += len(backlog)
        took_ms = round((time.monotonic() - started) * 1000)
        c.last_takeover = json.dumps({"ts": int(time.time() * 1000), "took_ms": took_ms,
                                      "replayed": len(backlog), "claimed": claimed})
        if c.takeovers > 1 or backlog or claimed:
            log.warning("ingest %s took over: replayed %d messages, claimed %d stream "
                        "entries, in %d ms", self.instance, len(backlog), claimed, took_ms)
        self._heartbeat(force=True)

    def _lenient(self) -> bool:
        """Whether an older message than the stored record counts as a duplicate rather than
        stale: while replaying, and for a while after taking over, when the other process
        replays its ring and may store the same messages ahead of this one."""
        return self._replaying or time.monotonic() < self._lenient_until

    def _replay(self, messages: list[Message], marked: bool = False) -> None:
        """Apply messages that may have been applied already: a repeat, or an older one than
        the stored record, is a duplicate rather than stale."""
        self._replaying = True
        try:
            for k in range(0, len(messages), BATCH_MAX):
                chunk = messages[k:k + BATCH_MAX]
                self.submit(chunk, mark=self.marker.after(chunk) if marked else "")
                self.drain(keep=1)
                # A long backlog takes seconds: keep the lease meanwhile, or the other
                # process takes it and starts replaying too.
                if self.active and self.lease is not None and \
                        time.monotonic() - self._last_lease >= RENEW_S:
                    self._last_lease = time.monotonic()
                    if not self.lease.renew():
                        break
            self.drain()
        finally:
            self._replaying = False

    def _claim(self) -> int:
        """Apply the input-stream entries a dead ingest left pending; how many there were."""
        assert self.streams is not None
        claimed = self.streams.claim(STREAM_COUNT)
        if claimed:
            self.submit_entries(claimed)
            self.drain()
        return len(claimed)

    def _stream_read(self) -> list[StreamEntry]:
        """New input-stream entries; a stream an operator broke must not stop pub/sub.

        Every STREAM_POLL_S while the streams are quiet (a round trip per loop would cost
        pub/sub a quarter of its rate), at once again while they have a backlog."""
        assert self.streams is not None
        now = time.monotonic()
        if now - self._last_stream_read < STREAM_POLL_S:
            return []
        try:
            entries = self.streams.read(STREAM_COUNT)
            self._last_stream_read = 0.0 if entries else now
            return entries
        except redis.ResponseError as exc:
            now = time.monotonic()
            if now - self._stream_warned > 60:
                self._stream_warned = now
                log.error("ingest cannot read the input streams: %s", exc)
            return []

    def _stream_chores(self) -> None:
        """Claim what a dead ingest left pending, and trim what every reader acknowledged."""
        now = time.monotonic()
        if now - self._last_chores < STREAM_CHORES_S:
            return
        self._last_chores = now
        assert self.streams is not None
        try:
            self._claim()
            self.streams.trim()
            self.streams.forget_consumers()
        except redis.ResponseError as exc:
            log.error("ingest: input stream upkeep failed: %s", exc)

    def _recovered(self, server: str) -> None:
        c = self.counters
        if c.degraded_since:
            c.reconnects += 1
            now = int(time.time() * 1000)
            if (is_sentinel(self.redis_url) and self._server and server != self._server
                    and now - c.degraded_since <= FAILOVER_MAX_S * 1000):
                c.failovers += 1
                c.last_failover = (c.degraded_since, now)
                log.warning("ingest followed a Sentinel failover to a new primary")
            else:
                c.last_outage = (c.degraded_since, now)
                log.warning("ingest reconnected to Redis")
            c.degraded_since = 0
            # Redis may have restarted empty, or a promoted replica may lack the last writes:
            # merged records must be re-read, not assumed.
            self.cache.clear()
        self._server = server
        self._heartbeat(force=True)

    def _heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_hb < HEARTBEAT_S:
            return
        self._last_hb = now
        assert self.store is not None
        pipe = self.store.r.pipeline(transaction=False)
        if not self.active:
            if self._young():  # not yet: an older standby's heartbeat says who has history
                pipe.reset()
                return
            key = self.store.key("ingest:standby")
            pipe.hset(key, mapping={"ts": int(time.time() * 1000), "instance": self.instance,
                                    "ring": len(self.ring), "ring_bytes": self.ring.bytes,
                                    "ring_dropped": self.ring.dropped})
            pipe.expire(key, HEARTBEAT_TTL_S)
            pipe.execute()
            return
        c = self.counters
        elapsed = now - c.window_start
        if elapsed > 0:
            c.rate = c.window_accepted / elapsed
        c.window_start, c.window_accepted = now, 0
        key = self.store.key("ingest:hb")
        outage = ""
        if c.last_outage:
            outage = json.dumps({"from": c.last_outage[0], "to": c.last_outage[1]})
        recent = bool(outage) and time.time() * 1000 - c.last_outage[1] < DEGRADED_SHOWN_S * 1000
        pipe.hset(key, mapping={
            "ts": int(time.time() * 1000), "rate": round(c.rate, 1), "accepted": c.accepted,
            "rejected": c.rejected, "stale": c.stale, "conflicts": c.conflicts,
            "duplicates": c.duplicates, "store_errors": c.store_errors,
            "extras_dropped": c.extras_dropped, "last_ts": c.last_ts,
            "instance": self.instance, "takeovers": c.takeovers, "replayed": c.replayed,
            "last_takeover": c.last_takeover,
            "reconnects": c.reconnects, "last_outage": outage, "failovers": c.failovers,
            "last_failover": json.dumps({"from": c.last_failover[0], "to": c.last_failover[1]})
            if c.last_failover else "",
            "degraded": outage if recent else "",
        })
        pipe.hset(key, "redis_rtt_s", round(self._hb_rtt, 6))  # for /metrics
        pipe.expire(key, HEARTBEAT_TTL_S)
        started = time.perf_counter()
        pipe.execute()
        self._hb_rtt = time.perf_counter() - started

    # -- one batch ----------------------------------------------------------------------

    def handle(self, messages: list[Message]) -> None:
        """Validate, merge and apply a batch of (channel, payload) messages, and wait."""
        self.submit(messages)
        self.drain()

    def submit_entries(self, entries: list[StreamEntry]) -> None:
        """Submit input stream entries; each is acknowledged once its change is settled."""
        self.submit([(entry.channel, entry.data) for entry in entries], entries=entries)

    def submit(self, messages: list[Message], *, entries: list[StreamEntry] | None = None,
               mark: str = "") -> None:
        """Validate and merge a batch and send it to Redis without waiting for the answer.

        The loop validates the next batch while Redis runs this one; `drain` reads answers.
        """
        assert self.store is not None
        now_ms = int(time.time() * 1000)
        pipe = self.store.r.pipeline(transaction=False)
        accepted: list[tuple[protocol.Accepted, bytes | str, str]] = []
        for channel, data in messages:
            name = channel.decode() if isinstance(channel, bytes) else channel
            if data is None:  # a stream entry without its field
                self._reject(name, b"", "missing_field", "stream entry has no field m", pipe)
                continue
            result = protocol.parse(self.channels.get(name, name), data, now_ms,
                                    self.max_future_ms)
            if isinstance(result, protocol.Rejected):
                self._reject(name, data, result.code, result.reason, pipe)
            else:
                if result.extras_dropped:
                    self.counters.extras_dropped += 1
                accepted.append((result, data, name))
        flight = self._merge(accepted, pipe)
        if len(pipe):
            pipe.execute()
        flight.entries = entries or []
        flight.mark = mark
        if flight.changes:
            # No read of uncached records here: it would wait behind the batch Redis is
            # running and undo the overlap. An uncached id is sent as new (rev 0); if Redis
            # holds it after all, the script answers a conflict with the stored record and
            # the change is merged again (drain), which costs the same round trip, once.
            self.store.send_apply(flight.changes, replay=self._lenient(), mark=mark)
            self.in_flight.append(flight)
        elif flight.entries and self.streams is not None:
            self.streams.ack(flight.entries)  # every one dead-lettered

    def _merge(self, accepted: list[tuple[protocol.Accepted, bytes | str, str]],
               pipe: Any) -> Flight:
        """The changes to send for accepted messages; a record that would grow past its
        cap is dead-lettered instead."""
        flight = Flight([], [], [], [], [])
        for item in accepted:
            try:
                merged = self._change(item[0])
            except (TypeError, ValueError) as exc:  # cannot be written back as JSON
                self._reject(item[2], item[1], "bad_value", f"cannot be stored: {exc}", pipe)
                continue
            if merged is None:
                self._reject(item[2], item[1], "too_large",
                             f"the record would exceed {protocol.RECORD_MAX_BYTES} bytes", pipe)
                continue
            change, record, cold = merged
            flight.accepted.append(item)
            flight.changes.append(change)
            flight.records.append(record)
            flight.colds.append(cold)
        return flight

    def drain(self, keep: int = 0) -> None:
        """Read answers of sent batches until at most `keep` are in flight.

        Revision conflicts are retried only once nothing is in flight: the apply connection
        answers in order, so a retry must not overtake a batch still waiting for its answer.
        A batch the server refused whole is applied again in halves once the answers behind
        it are read, to dead-letter only the change at fault.
        """
        assert self.store is not None
        pipe = self.store.r.pipeline(transaction=False)
        pending: list[tuple[protocol.Accepted, bytes | str, str]] = []
        refused: list[tuple[Flight, redis.ResponseError]] = []
        done: list[StreamEntry] = []
        while len(self.in_flight) > keep or (pending and self.in_flight):
            flight = self.in_flight.popleft()
            try:
                outcomes = self.store.read_apply()
            except redis.ResponseError as exc:
                refused.append((flight, exc))
                continue
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.in_flight.appendleft(flight)
                self._unsettle()
                raise
            pending += self._settle(flight, outcomes, pipe)
            done += flight.entries
        for flight, exc in refused:
            outcomes = self._apply_isolating(flight, exc)
            pending += self._settle(flight, outcomes, pipe)
            done += flight.entries
        for _ in range(CONFLICT_ROUNDS):
            if not pending:
                break
            self._warm_cache(pending)
            retry = self._merge(pending, pipe)
            outcomes = self._apply_isolating(retry)
            pending = self._settle(retry, outcomes, pipe)
        for _, data, channel in pending:  # still colliding after retries: keep, never drop
            self._reject(channel, data, "conflict",
                         "concurrent updates kept colliding; retry", pipe)
        if len(pipe):
            pipe.execute()
        if done and self.streams is not None:
            self.streams.ack(done)  # stored or dead-lettered: either way, handled

    def _apply_isolating(self, flight: Flight,
                         refused: redis.ResponseError | None = None) -> list[Outcome]:
        """Apply a batch, in halves down to the change at fault if the server refuses it
        (`refused`: it did already); out of memory waits for room (the health check says
        degraded before that)."""
        assert self.store is not None
        backoff = Backoff(0.2, 5.0)
        while True:
            if refused is not None and out_of_memory(refused):
                log.error("Redis is out of memory; ingest waits (raise maxmemory or free data)")
                if self._stop is None or self._stop.wait(backoff.next()):
                    raise refused
                refused = None  # try the whole batch again
            try:
                return self.store.apply_isolating(
                    flight.changes, replay=self._lenient(), mark=flight.mark,
                    refused=refused)
            except redis.ResponseError as exc:  # out of memory: nothing else is raised
                refused = exc

    def _reject(self, channel: str, data: bytes | str, code: str, reason: str, pipe: Any) -> None:
        assert self.store is not None
        self.counters.rejected += 1
        if code == "stale":
            self.counters.stale += 1
        elif code == "store_error":
            self.counters.store_errors += 1
        self.store.dead_letter(channel, data, code, reason, pipe)

    def _settle(self, flight: Flight, outcomes: list[Outcome],
                pipe: Any) -> list[tuple[protocol.Accepted, bytes | str, str]]:
        """Count what was applied, dead-letter the stale and refused; return the revision
        conflicts.

        A conflict on a change merged without a cached record is only the first sight of a
        stored entity (after a restart, or once it left the cache), not a concurrent writer,
        and is not counted as a conflict."""
        conflicts = []
        counters, cache = self.counters, self.cache
        for (result, data, channel), record, cold, outcome in zip(
                flight.accepted, flight.records, flight.colds, outcomes, strict=True):
            key = (result.kind, result.id)
            code = outcome.code
            if code == APPLIED:
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
            elif code == DUPLICATE:
                counters.duplicates += 1
                # The optimistic guess (rev + 1) did not happen: re-read when next needed.
                self.cache.pop(key, None)
            elif code == STALE:
                self.cache.pop(key, None)
                self._reject(channel, data, "stale",
                             f"ts {result.ts} is older than the stored {outcome.stored_ts}", pipe)
            elif code == CONFLICT:
                if not cold:
                    self.counters.conflicts += 1
                if outcome.stored:
                    self._remember(key, orjson.loads(outcome.stored), outcome.rev)
                else:
                    self.cache.pop(key, None)
                conflicts.append((result, data, channel))
            else:
                self.cache.pop(key, None)
                self._reject(channel, data, "store_error", outcome.reason, pipe)
        return conflicts

    def _warm_cache(self, accepted: list[tuple[protocol.Accepted, bytes | str, str]]) -> None:
        assert self.store is not None
        missing: dict[str, set[str]] = {}
        for result, _, _ in accepted:
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

    def _change(self, result: protocol.Accepted) -> tuple[Change, dict[str, Any], bool] | None:
        """The change to apply, the merged record it carries, and whether it was merged
        without a cached record (sent as new); None when the record would be too large."""
        kind, new = result.kind, result.record
        if kind == "feedback":
            # Every unit of a task reports each stage: a repeat is the same unit's report.
            return Change(kind, f"{result.id}|{new['actor_id']}", result.ts, "0",
                          orjson.dumps(new), new.get("stage", ""), 0.0, 0.0), new, False
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
        if len(text) > protocol.RECORD_MAX_BYTES:  # unknown fields piling up over updates
            return None
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
