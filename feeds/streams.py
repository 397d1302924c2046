"""At-least-once input: the feed's messages on Redis Streams, read with a consumer group.

A producer that must lose nothing runs `XADD {prefix}in:{kind} * m '<json>'`. Ingest reads
the streams with the group `ingest` and acknowledges an entry only once its change is stored
(or dead-lettered), so an entry whose ingest died before that stays pending and is claimed by
the next one. The group starts at id 0: entries added while no ingest ran are read too. A
plain class without threads; the ingest loop calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import redis

log = logging.getLogger("cc.ingest")

GROUP: Final = "ingest"
FIELD: Final = b"m"


@dataclass(frozen=True, slots=True)
class StreamEntry:
    kind: str
    channel: str  # the stream key, e.g. "cc:in:event": a dead letter's channel
    data: bytes | None  # the field `m`; None when the entry has none
    entry_id: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _data(fields: dict[Any, Any] | None) -> bytes | None:
    if not fields:
        return None
    value = fields.get(FIELD, fields.get("m"))
    if value is None:
        return None
    return value if isinstance(value, bytes) else str(value).encode()


class StreamInput:
    """The input streams of every kind, as one consumer of the group `ingest`."""

    def __init__(self, client: redis.Redis, prefix: str, kinds: Iterable[str], consumer: str,
                 *, claim_idle_ms: int = 2000) -> None:
        self.r = client
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.kinds = {f"{prefix}in:{kind}": kind for kind in kinds}
        self.streams = list(self.kinds)  # those that can be read (ensure_groups)

    def ensure_groups(self) -> None:
        """Create the group on every stream (and the stream); an existing group is kept. A
        key of another type under a stream's name is left out (and logged), not fatal."""
        usable = []
        for stream in self.kinds:
            try:
                self.r.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    log.error("input stream %s cannot be read: %s", stream, exc)
                    continue
            usable.append(stream)
        self.streams = usable

    def read(self, count: int) -> list[StreamEntry]:
        """New entries of every stream, oldest first per stream; never blocks."""
        try:
            reply = self._read(count)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_groups()  # Redis restarted empty: the groups went with it
            reply = self._read(count)
        return [entry for stream, rows in (reply or []) for entry in self._entries(stream, rows)]

    def _read(self, count: int) -> Any:
        if not self.streams:
            return []
        return self.r.xreadgroup(GROUP, self.consumer, dict.fromkeys(self.streams, ">"),
                                 count=count)

    def claim(self, count: int) -> list[StreamEntry]:
        """Entries another consumer (a dead ingest) left pending longer than claim_idle_ms."""
        out: list[StreamEntry] = []
        for stream in self.streams:
            cursor = "0-0"
            while len(out) < count:
                try:
                    reply = self.r.xautoclaim(stream, GROUP, self.consumer, self.claim_idle_ms,
                                              start_id=cursor, count=count - len(out))
                except redis.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    break
                cursor, rows = _text(reply[0]), reply[1]
                # entries deleted meanwhile come back as None (and in reply[2]): skip them
                out += self._entries(stream, [row for row in rows if row and row[1] is not None])
                if cursor == "0-0":
                    break
        return out

    def ack(self, entries: Iterable[StreamEntry]) -> None:
        """Acknowledge handled entries: one XACK per stream, one round trip."""
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.channel, []).append(entry.entry_id)
        if not by_stream:
            return
        pipe = self.r.pipeline(transaction=False)
        for stream, ids in by_stream.items():
            pipe.xack(stream, GROUP, *ids)
        pipe.execute()

    def trim(self) -> int:
        """Delete what the group has read and acknowledged; never an unread or pending entry.

        Everything older than the oldest pending entry, or than the first unread one, is
        done with. Returns how many entries were deleted."""
        trimmed = 0
        for stream in self.streams:
            try:
                groups = self.r.xinfo_groups(stream)
            except redis.ResponseError:
                continue  # no such stream yet
            group = next((g for g in groups if _text(g["name"]) == GROUP), None)
            if group is None:
                continue
            pending = self.r.xpending(stream, GROUP)
            if pending["pending"]:
                floor = _text(pending["min"])
            else:
                ms, _, seq = _text(group["last-delivered-id"]).partition("-")
                floor = f"{ms}-{int(seq or 0) + 1}"
            trimmed += int(self.r.xtrim(stream, minid=floor, approximate=False))
        return trimmed

    def forget_consumers(self, idle_ms: int = 3_600_000) -> None:
        """Drop consumers (restarted ingests' old names) idle this long with nothing pending."""
        for stream in self.streams:
            try:
                consumers = self.r.xinfo_consumers(stream, GROUP)
            except redis.ResponseError:
                continue
            for consumer in consumers:
                name = _text(consumer["name"])
                if (name != self.consumer and int(consumer["pending"]) == 0
                        and int(consumer["idle"]) > idle_ms):
                    self.r.xgroup_delconsumer(stream, GROUP, name)

    def _entries(self, stream: Any, rows: list[Any]) -> list[StreamEntry]:
        key = _text(stream)
        kind = self.kinds[key]
        return [StreamEntry(kind, key, _data(fields), _text(entry_id))
                for entry_id, fields in rows]
