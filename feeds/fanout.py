"""The relay's core, free of I/O: which wall gets which frame.

Frames from the change log are routed to the connected clients: a delta is encoded once and
offered to the clients whose kinds and scope it concerns; unit moves and camera changes are
coalesced (latest per unit) and flushed as one batch, encoded once per scope among the
clients; video frames are masked per scope. Each client's queue is bounded, and one that
falls behind is marked for a resync instead of slowing the others. A gap in the sequence
numbers is closed from the log when it still holds it, else everyone resyncs.

Frames are encoded to UTF-8 bytes once, here, and the same bytes object is queued for every
client that wants it: the relay writes them out as text frames without copying or
re-encoding per wall. Clients with something queued are collected in `Fanout.ready`, so the
relay writes once per routing step instead of waking a task per wall per frame.

feeds/relay.py owns the sockets, Redis and the clock; tests drive this module directly
(as the websockets library keeps its protocol apart from asyncio).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

from dashboard.scope import covers, cut, place_of

EVERYWHERE: Final = object()  # the place of a frame for every client (stats)
# A log entry as the store gives it: (seq, kind, op, the record as JSON).
Entry = tuple[int, str, str, str]


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def encode(obj: Any) -> bytes:
    """A frame as the bytes every wall is sent (compact JSON, UTF-8)."""
    return dumps(obj).encode()


class Client:
    """One connected wall: a bounded queue of (seq, frame, queued at) and a flag to resync.

    Frames are shared bytes, so a queue costs pointers. The queue holds what the relay has
    not written yet: everything while the wall's snapshot is on its way, then at most one
    routing step's frames. A client is behind when its oldest
    queued frame has waited `lag_s`, or the queue reaches `maxlen`: a burst that drains at
    once is not lag, a stalled socket is. `ws` is the relay's socket (None in tests).
    """

    def __init__(self, ws: Any, maxlen: int, lag_s: float,
                 token: str = "", kinds: frozenset[str] | None = None,
                 scope: str | None = None, role: str = "") -> None:
        self.ws = ws
        self.token = token
        self.kinds = kinds  # None: every kind
        self.scope = scope  # None: the whole city
        self.role = role
        self.maxlen = maxlen
        self.lag_s = lag_s
        self.queue: deque[tuple[int, bytes, float]] = deque()
        self.wake = asyncio.Event()  # set when the wall is due for a snapshot
        self.live = False  # its snapshot or replay is out: the relay writes frames at once
        self.behind_since: float | None = None  # the socket's buffer stayed full since
        self.resync = False
        self.skip_upto = -1
        self.resyncs = 0

    def wants(self, kinds: frozenset[str] | None) -> bool:
        """A frame about `kinds` (None: stats, for everyone) is for this client."""
        return kinds is None or self.kinds is None or not self.kinds.isdisjoint(kinds)

    def sees(self, place: Any) -> bool:
        """A frame about something at `place` (EVERYWHERE: stats) is for this client."""
        return place is EVERYWHERE or covers(self.scope, place)

    def offer(self, seq: int, frame: bytes, now: float,
              kinds: frozenset[str] | None = None, place: Any = EVERYWHERE) -> bool:
        """Queue a frame if it is for this client; True when it was queued. Never blocks: a
        client that fell behind drops its queue and is resynced."""
        if self.resync or not self.wants(kinds) or not self.sees(place):
            return False
        if len(self.queue) >= self.maxlen or (self.queue and now - self.queue[0][2] > self.lag_s):
            self.mark_resync()
            return False
        self.queue.append((seq, frame, now))
        return True

    def mark_resync(self) -> None:
        self.queue.clear()
        self.resync = True
        self.live = False
        self.behind_since = None
        self.wake.set()


class Fanout:
    """The connected clients and what each is owed, from the frames of the change log."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.ready: set[Client] = set()  # clients with frames queued since the last write
        self.last_seq = 0
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}
        self.pending_seq = 0
        # camera id → its grid: a video frame names cameras only, and a scoped client's copy
        # leaves out those outside its scope (one entry per camera of the city)
        self.camera_places: dict[str, str | None] = {}

    # -- the live stream -----------------------------------------------------------------

    def gap(self, frames: list[dict[str, Any]]) -> bool:
        """Whether a published list of frames skips sequence numbers (then catch up first)."""
        return bool(frames) and frames[0]["seq"] > self.last_seq + 1

    def receive(self, frames: list[dict[str, Any]]) -> None:
        """Route every frame newer than the last one routed."""
        for frame in frames:
            if frame["seq"] > self.last_seq:
                self.route(frame)

    def catch_up(self, current: int, entries: list[Entry], limit: int) -> None:
        """Close a gap from the log's `entries` after `last_seq`; when the log no longer
        covers it (trimmed, `limit` reached, or Redis reset to an older `current`), every
        client resyncs from a snapshot."""
        if current < self.last_seq or (entries and entries[0][0] > self.last_seq + 1) or (
            len(entries) >= limit
        ):
            self.pending.clear()
            self.last_seq = current
            for client in self.clients:
                client.mark_resync()
            return
        for seq, kind, op, data in entries:
            self.route({"type": "delta", "seq": seq, "kind": kind, "op": op,
                        "data": json.loads(data)})

    def route(self, frame: dict[str, Any]) -> None:
        self.last_seq = frame["seq"]
        if frame["kind"] == "camera":
            self.camera_places[str(frame["data"].get("id"))] = place_of(frame["data"])
        # Camera changes wait for the next batch too, online/offline included: the wall's
        # camera layer redraws at most once a second anyway, and a delta would flush the
        # pending worker moves early (hundreds of camera changes a second from a 42,000-camera
        # platform would otherwise make the units layer redraw several times a second).
        if frame["op"] == "move" or frame["kind"] == "camera":
            self.pending[(frame["kind"], frame["data"]["id"])] = frame
            self.pending_seq = frame["seq"]
            return
        self.flush()
        kinds = frozenset((frame["kind"],))
        if frame["kind"] == "video":
            self._broadcast_video(frame, kinds)
            return
        self.broadcast(frame["seq"], encode(frame), kinds, place_of(frame["data"]))

    def flush(self) -> None:
        """Send the coalesced moves as one batch per scope among the clients."""
        if not self.pending:
            return
        items = [{"kind": f["kind"], "op": "move", "data": f["data"]}
                 for f in self.pending.values()]
        self.pending.clear()
        seq, now = self.pending_seq, time.monotonic()
        for scope, clients in self.by_scope().items():
            mine = items if scope is None else [
                item for item in items if covers(scope, place_of(item["data"]))]
            if not mine:
                continue
            frame = encode({"type": "batch", "seq": seq, "items": mine})
            self._offer(clients, seq, frame, now, frozenset(item["kind"] for item in mine))

    def broadcast(self, seq: int, frame: bytes, kinds: frozenset[str] | None = None,
                  place: Any = EVERYWHERE) -> None:
        self._offer(self.clients, seq, frame, time.monotonic(), kinds, place)

    def _offer(self, clients: Iterable[Client], seq: int, frame: bytes, now: float,
               kinds: frozenset[str] | None, place: Any = EVERYWHERE) -> None:
        """Offer one frame to `clients`; those that queued it are written next."""
        ready = self.ready
        for client in clients:
            if client.offer(seq, frame, now, kinds, place):
                ready.add(client)

    def take_ready(self) -> list[Client]:
        """The clients with frames to write, once each; the set starts over."""
        ready = list(self.ready)
        self.ready.clear()
        return ready

    def by_scope(self) -> dict[str | None, list[Client]]:
        groups: dict[str | None, list[Client]] = {}
        for client in self.clients:
            groups.setdefault(client.scope, []).append(client)
        return groups

    def _broadcast_video(self, frame: dict[str, Any], kinds: frozenset[str]) -> None:
        """A video frame names cameras (and an event): each scope among the clients gets a
        copy without the cameras outside it, encoded once per scope."""
        whole = encode(frame)
        for scope, clients in self.by_scope().items():
            data = frame["data"] if scope is None else self.video_for(frame["data"], scope)
            scoped = whole if data is frame["data"] else encode({**frame, "data": data})
            self._offer(clients, frame["seq"], scoped, time.monotonic(), kinds)

    def video_for(self, data: dict[str, Any], scope: str) -> dict[str, Any]:
        """A video frame's data without the cameras outside `scope` (empty tiles instead)."""
        def shown(camera: Any) -> bool:
            return covers(scope, self.camera_places.get(str(camera)))

        out = dict(data)
        if isinstance(out.get("tiles"), list):
            out["tiles"] = [c if c is None or shown(c) else None for c in out["tiles"]]
        if isinstance(out.get("cameras"), list):
            out["cameras"] = [c for c in out["cameras"] if shown(c)]
        if isinstance(out.get("wall"), dict):
            inner = out["wall"]
            out["wall"] = {**inner, "tiles": [c if c is None or shown(c) else None
                                              for c in inner.get("tiles") or []]}
        return out

    # -- a reconnecting wall -------------------------------------------------------------

    def replay(self, client: Client, since: int, current: int, entries: list[Entry],
               limit: int) -> list[bytes] | None:
        """The frames a wall that last saw `since` missed, from the log's `entries` after it
        (moves coalesced into batches, cut to its kinds and scope); None when only a snapshot
        will do (the log lost part of the gap, or Redis was reset)."""
        if since > current:
            return None  # the wall knows more than Redis: Redis was reset
        if len(entries) >= limit or (entries and entries[0][0] != since + 1) or (
            not entries and since < current
        ):
            return None
        out: list[bytes] = []
        moves: dict[tuple[str, str], dict[str, Any]] = {}
        last = since
        for seq, kind, op, data in entries:
            last = seq
            if not client.wants(frozenset((kind,))):
                continue
            record = json.loads(data)
            if client.scope and kind == "video":
                record = self.video_for(record, client.scope)
            elif client.scope and not covers(client.scope, place_of(record)):
                continue
            if op == "move":
                moves[(kind, record["id"])] = {"kind": kind, "op": op, "data": record}
                continue
            if moves:
                out.append(encode({"type": "batch", "seq": seq - 1,
                                   "items": list(moves.values())}))
                moves.clear()
            out.append(encode({"type": "delta", "seq": seq, "kind": kind, "op": op,
                               "data": record}))
        if moves:
            out.append(encode({"type": "batch", "seq": last, "items": list(moves.values())}))
        client.skip_upto = last
        return out


SNAPSHOT_KINDS: Final = {"event": "events", "worker": "workers", "resource": "resources",
                         "camera": "cameras", "task": "tasks", "alert": "alerts"}


def snapshot_frame(parts: dict[str, Any], scope: str | None, kinds: frozenset[str] | None,
                   stats: dict[str, Any], server_ts: int) -> bytes:
    """A snapshot frame from the store's raw records: only the kinds a page wants (None:
    all), cut to `scope` (None: the whole city), as the bytes sent."""
    if kinds is not None:
        parts = {**parts, **{name: [] for kind, name in SNAPSHOT_KINDS.items()
                             if kind not in kinds}}
    if scope:
        parts = scoped_parts(parts, scope)
    lists = ",".join(f'"{name}":[{",".join(parts[name])}]' for name in SNAPSHOT_KINDS.values())
    return (f'{{"type":"snapshot","seq":{parts["seq"]},"server_ts":{server_ts},{lists},'
            f'"stats":{dumps(stats)}}}').encode()


def scoped_parts(parts: dict[str, Any], scope: str) -> dict[str, Any]:
    """A snapshot's raw records cut to what lies in `scope` (dashboard.scope.cut: the rule
    the replayed wall cuts by too)."""
    return cut(parts, scope, json.loads)
