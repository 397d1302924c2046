"""Active and standby ingest: a lease in Redis, the standby's ring, and the feed mark.

Pub/sub is at-most-once: what is published while no ingest applies it is gone. So two ingest
processes subscribe to the same channels. The one holding the lease applies; the other keeps
the raw messages of the last seconds in a bounded ring. The active one stores a mark (a digest
of the last messages it applied) atomically with each batch; when its lease lapses the standby
takes the lease and applies what came after the mark (and a margin before it: applying is
idempotent, a repeat of a stored `(id, ts)` is a `duplicate`).
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

import redis

from dashboard import lua

LEASE_MS: Final = 1500  # the standby takes over at most this long after the last renewal
RENEW_S: Final = 0.4
ACQUIRE_S: Final = 0.2
MARK_WIDTH: Final = 3  # messages in a mark: one repeated message alone is not unique
# Messages replayed before the mark: the active retries revision conflicts of a batch after
# the next one is sent, so the mark can run up to two batches ahead of what is stored.
MARK_MARGIN: Final = 4000
RING_OVERHEAD: Final = 120  # bytes a ring slot costs beyond the payload (tuple, float, bytes)

_RENEW: Final = lua.source(__file__, "lease_renew.lua")
_FORGET: Final = lua.source(__file__, "standby_forget.lua")
_RELEASE: Final = lua.source(__file__, "lease_release.lua")

Message = tuple[Any, bytes | str]  # (channel, payload) as read off the subscription


def digest(messages: Iterable[Message]) -> str:
    """The mark of a run of messages: their channels and payloads, in order."""
    h = hashlib.blake2b(digest_size=10)
    for channel, data in messages:
        h.update(channel if isinstance(channel, bytes) else channel.encode())
        h.update(b"\x00")
        h.update(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
        h.update(b"\x01")
    return h.hexdigest()


class Marker:
    """The active side: the mark of the last MARK_WIDTH messages received."""

    def __init__(self) -> None:
        self.recent: deque[Message] = deque(maxlen=MARK_WIDTH)

    def after(self, messages: list[Message]) -> str:
        self.recent.extend(messages[-MARK_WIDTH:])
        return digest(self.recent)


class Ring:
    """The standby side: the raw messages of the last `seconds`, at most `max_bytes`."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.slots: deque[tuple[float, Any, bytes | str]] = deque()
        self.bytes = 0
        self.dropped = 0  # pushed out by the byte cap before their time was up

    def __len__(self) -> int:
        return len(self.slots)

    def extend(self, messages: list[Message], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for channel, data in messages:
            self.slots.append((now, channel, data))
            self.bytes += len(data) + RING_OVERHEAD
        self.trim(now)

    def trim(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        horizon = now - self.seconds
        slots = self.slots
        while slots and (slots[0][0] < horizon or self.bytes > self.max_bytes):
            if slots[0][0] >= horizon:
                self.dropped += 1
            self.bytes -= len(slots.popleft()[2]) + RING_OVERHEAD
        if not slots:
            self.bytes = 0

    def since(self, mark: str | None, margin: int = MARK_MARGIN) -> list[Message]:
        """What to replay: from `margin` messages before the newest run matching `mark`;
        everything when the mark is not in the ring (or there is none)."""
        messages = [(channel, data) for _, channel, data in self.slots]
        start = 0
        if mark:
            for end in range(len(messages), 0, -1):
                if digest(messages[max(0, end - MARK_WIDTH):end]) == mark:
                    start = max(0, end - margin)
                    break
        return messages[start:]

    def clear(self) -> None:
        self.slots.clear()
        self.bytes = 0


class Lease:
    """Who applies: `SET NX PX` to take it, renewed only by its holder."""

    def __init__(self, client: redis.Redis, key: str, holder: str) -> None:
        self.r = client
        self.key = key
        self.holder = holder
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._forget = client.register_script(_FORGET)

    def acquire(self) -> bool:
        return bool(self.r.set(self.key, self.holder, nx=True, px=LEASE_MS))

    def renew(self) -> bool:
        return bool(self._renew(keys=[self.key], args=[self.holder, LEASE_MS]))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.holder])

    def forget_standby(self, key: str) -> None:
        """Drop the standby heartbeat this process wrote before it took the lease."""
        self._forget(keys=[key], args=[self.holder])
