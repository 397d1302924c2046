"""At-least-once input from Redis Streams: `XADD {prefix}in:{kind} * m '<message JSON>'`.

Producers that must lose nothing write to a stream instead of publishing. Ingest reads the
streams through one consumer group and acknowledges an entry only after its change is stored
(or dead-lettered), so an ingest that dies mid-batch leaves its entries pending for another
to claim. The class is synchronous and owns no thread: the caller's loop drives it.

Works with any client: bytes or decode_responses=True, RESP2 or RESP3. Ingest should give it
a bytes client, as for pub/sub: with decode_responses=True a message that is not UTF-8 makes
the client raise while parsing the reply, after the server has already delivered the entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import redis

from dashboard import lua

T = TypeVar("T")
log = logging.getLogger("cc.ingest")

FIELD: Final = "m"
_MAX_SEQ: Final = 2**64 - 1

# Checking and deleting in one script: a consumer that resumes between a separate XINFO and
# DELCONSUMER would have its fresh pending entries dropped from the group, and those would
# then be neither unread nor pending (trim deletes them unprocessed).
_FORGET: Final = lua.source(__file__, "streams_forget.lua")


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One stream entry as ingest sees it."""

    kind: str  # "event", …
    channel: str  # the stream key, e.g. "cc:in:event": the dead-letter channel
    data: bytes | str | None  # field `m` (str with decode_responses); None: no `m`, dead-letter it
    entry_id: bytes | str


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_id(entry_id: bytes | str) -> tuple[int, int]:
    ms, _, seq = _text(entry_id).partition("-")
    return int(ms), int(seq or 0)


def _next_id(entry_id: bytes | str) -> tuple[int, int]:
    ms, seq = _parse_id(entry_id)
    return (ms + 1, 0) if seq == _MAX_SEQ else (ms, seq + 1)


def _is_nogroup(exc: redis.ResponseError) -> bool:
    return str(exc).startswith("NOGROUP")


class StreamInput:
    """Reads `{prefix}in:{kind}` for each kind through the consumer group GROUP."""

    GROUP: Final = "ingest"

    def __init__(self, client: redis.Redis, prefix: str, kinds: Iterable[str], consumer: str,
                 *, claim_idle_ms: int = 2000) -> None:
        self.client = client
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.kinds = {f"{prefix}in:{kind}": kind for kind in kinds}
        self._forget = client.register_script(_FORGET)
        self._usable = list(self.kinds)

    @property
    def streams(self) -> list[str]:
        """The streams that can be read: a key of another type under a stream's name (an
        operator's mistake) is left out by ensure_groups, so it stops neither the other
        streams nor pub/sub."""
        return self._usable

    def ensure_groups(self) -> None:
        """Create the group on every stream (and the stream), reading from the very start.

        Id 0, not $: entries XADDed while no ingest ran, before the group existed, are read
        too. Safe to call again: after a Redis restart empties the server, read() does.
        """
        pipe = self.client.pipeline(transaction=False)
        for stream in self.kinds:
            pipe.xgroup_create(stream, self.GROUP, id="0", mkstream=True)
        usable = []
        for stream, result in zip(self.kinds, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(result, redis.ResponseError) and not str(result).startswith(
                    "BUSYGROUP"):
                log.error("input stream %s cannot be read: %s", stream, result)
                continue
            usable.append(stream)
        self._usable = usable

    def read(self, count: int) -> list[StreamEntry]:
        """New entries, without waiting: up to `count` per stream, oldest first per stream."""
        # No BLOCK: the caller's loop already waits on pub/sub.
        reply = self._regrouping(lambda: self.client.xreadgroup(
            self.GROUP, self.consumer, dict.fromkeys(self.streams, ">"), count=count)
            if self.streams else [])
        entries: list[StreamEntry] = []
        # RESP2: [[stream, entries], …]; RESP3: {stream: [entries]}.
        pairs = ((k, v[0] if v else []) for k, v in reply.items()) \
            if isinstance(reply, dict) else reply or []
        for stream, items in pairs:
            entries += self._entries(_text(stream), items)
        return entries

    def claim(self, count: int) -> list[StreamEntry]:
        """Take over entries pending longer than claim_idle_ms, from any consumer, ourselves too.

        That covers a dead ingest's entries and our own after a failed batch. Up to `count`
        per stream. Entries deleted since they were delivered are skipped: the server drops
        them from the pending list itself (XAUTOCLAIM's third reply element).
        """
        claimed: list[StreamEntry] = []
        for stream in self.streams:
            cursor: bytes | str = "0-0"
            gathered = 0
            while gathered < count:
                reply = self._regrouping(lambda s=stream, c=cursor, n=count - gathered:
                                         self.client.xautoclaim(s, self.GROUP, self.consumer,
                                                                self.claim_idle_ms, c, n))
                cursor, items = reply[0], reply[1]
                found = self._entries(stream, items)
                claimed += found
                gathered += len(found)
                if _text(cursor) == "0-0":
                    break
        return claimed

    def ack(self, entries: Iterable[StreamEntry]) -> int:
        """Acknowledge stored or dead-lettered entries: one round trip. Returns how many."""
        ids: dict[str, list[bytes | str]] = {}
        for entry in entries:
            ids.setdefault(entry.channel, []).append(entry.entry_id)
        if not ids:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for stream, stream_ids in ids.items():
            pipe.xack(stream, self.GROUP, *stream_ids)
        # A lost group (Redis restarted empty) answers 0, not an error: nothing to ack there.
        return sum(pipe.execute())

    def trim(self) -> int:
        """Delete the entries every group has acknowledged; returns how many were deleted.

        Per stream the floor is the smallest of each group's oldest pending id and the id
        after its last delivered one (all later entries are unread). Only the server moves
        those forward meanwhile, so a floor read a moment ago is never too high. A stream
        without groups is left alone: its entries are unread until ensure_groups runs.
        """
        pipe = self.client.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xinfo_groups(stream)
        floors: dict[str, tuple[int, int]] = {}
        pending: list[tuple[str, str]] = []
        for stream, groups in zip(self.streams, pipe.execute(raise_on_error=False),
                                  strict=True):
            if isinstance(groups, Exception) or not groups:  # no stream yet, or no group
                continue
            floors[stream] = min(_next_id(group["last-delivered-id"]) for group in groups)
            pending += [(stream, _text(group["name"])) for group in groups if group["pending"]]
        if pending:
            for stream, group in pending:
                pipe.xpending(stream, group)
            for (stream, _), summary in zip(pending, pipe.execute(raise_on_error=False),
                                            strict=True):
                if isinstance(summary, Exception):  # the group went away: trim nothing
                    floors.pop(stream, None)
                elif summary["min"] is not None:
                    floors[stream] = min(floors[stream], _parse_id(summary["min"]))
        if not floors:
            return 0
        for stream, (ms, seq) in floors.items():
            # Exact, not ~: approximate trimming would keep whole nodes and not be countable.
            pipe.xtrim(stream, minid=f"{ms}-{seq}", approximate=False)
        return sum(pipe.execute())

    def forget_consumers(self, idle_ms: int = 3_600_000) -> int:
        """Delete other consumers idle over `idle_ms` with nothing pending; returns how many.

        Each restart joins under a fresh consumer name; without this the group grows forever.
        """
        return int(self._forget(keys=self.streams,
                                args=[self.GROUP, self.consumer, idle_ms]))

    # -- helpers ------------------------------------------------------------------------

    def _regrouping(self, call: Callable[[], T]) -> T:
        """Run `call`; if the group is gone (Redis restarted empty), recreate it and retry once."""
        try:
            return call()
        except redis.ResponseError as exc:
            if not _is_nogroup(exc):
                raise
        self.ensure_groups()
        return call()

    def _entries(self, stream: str, items: Iterable[Any]) -> list[StreamEntry]:
        kind = self.kinds[stream]
        entries = []
        for entry_id, fields in items:
            if entry_id is None:  # an entry deleted after delivery (pre-7.0 XAUTOCLAIM)
                continue
            data = fields.get(FIELD, fields.get(FIELD.encode())) if fields else None
            entries.append(StreamEntry(kind, stream, data, entry_id))
        return entries
