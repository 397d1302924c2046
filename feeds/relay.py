"""Relay: the websocket server that fans the change stream out to every wall.

Run as `python -m feeds.relay`. A connecting browser gets a snapshot and its sequence
number, or — when it says `?since=N` and the log still holds N — only what it missed; then
live frames. Moves of units are coalesced (latest per unit, flushed every `coalesce_s` or
before any other change, so frames stay in sequence order). Each client has a bounded queue;
one that falls behind is resynchronised with a fresh snapshot and never slows the others.

A page that needs only some kinds says so with `?kinds=alert,video` (empty: none): its
snapshot lists only those and it is sent only their frames and batches holding them; stats
frames (connection state, data age) go to everyone. The cockpit and the handover need none,
the duty desk only alerts, so they do not carry a city's units and cameras.

Only signed-in walls are served: the browser sends its `cc_session` cookie (the relay is on
the same host, so the cookie goes along); without a live session the socket is closed with
code 4401, which the wall takes as "signed out". Open sockets keep their session alive and
are closed the same way once it is gone or its role or scope changed (signed out, expired,
user changed). A browser's `Origin` must be the pages' own (or one of CC_WS_ORIGINS), else
the handshake gets a 403: another site cannot ride a signed-in user's cookie. A session
holds at most CC_WS_PER_SESSION sockets; one more is closed with 4429.

A scoped user's socket carries only what lies in their scope (dashboard/scope.py): the
snapshot, deltas, batches and replays are filtered by each record's place. A delta is
encoded once and offered to the clients whose scope covers it; a batch of moves is encoded
once per scope among the connected clients, never per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import redis
import redis.asyncio as aioredis
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from dashboard.access.auth import Auth
from dashboard.backoff import Backoff
from dashboard.config import Settings
from dashboard.scope import covers, place_of
from dashboard.store import Store, day_of
from feeds.service import run_service

log = logging.getLogger("cc.relay")

REPLAY_MAX: Final = 50_000  # a longer gap is cheaper to close with a snapshot
STATS_S: Final = 1.0
SESSION_CHECK_S: Final = 15.0  # how often open sockets slide (and re-check) their sessions
CLOSE_SIGNED_OUT: Final = 4401  # close code the wall reads as "go to /login"
CLOSE_TOO_MANY: Final = 4429  # this session already holds CC_WS_PER_SESSION sockets
EVERYWHERE: Final = object()  # the place of a frame for every client (stats)
COOKIE: Final = "cc_session"
SNAPSHOT_KINDS: Final = {"event": "events", "worker": "workers", "resource": "resources",
                         "camera": "cameras", "task": "tasks", "alert": "alerts"}
KINDS_MAX: Final = 16


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class Client:
    """One connected wall: a bounded queue of (seq, frame, queued at) and a flag to resync.

    Frames are shared strings, so a queue costs pointers. A client is behind when its oldest
    queued frame has waited `lag_s`, or the queue reaches `maxlen`: a burst that drains at
    once is not lag, a stalled socket is.
    """

    def __init__(self, ws: ServerConnection, maxlen: int, lag_s: float,
                 token: str = "", kinds: frozenset[str] | None = None,
                 scope: str | None = None, role: str = "") -> None:
        self.ws = ws
        self.token = token
        self.kinds = kinds  # None: every kind
        self.scope = scope  # None: the whole city
        self.role = role
        self.maxlen = maxlen
        self.lag_s = lag_s
        self.queue: deque[tuple[int, str, float]] = deque()
        self.wake = asyncio.Event()
        self.resync = False
        self.skip_upto = -1
        self.resyncs = 0

    def wants(self, kinds: frozenset[str] | None) -> bool:
        """A frame about `kinds` (None: stats, for everyone) is for this client."""
        return kinds is None or self.kinds is None or not self.kinds.isdisjoint(kinds)

    def sees(self, place: Any) -> bool:
        """A frame about something at `place` (EVERYWHERE: stats) is for this client."""
        return place is EVERYWHERE or covers(self.scope, place)

    def offer(self, seq: int, frame: str, now: float,
              kinds: frozenset[str] | None = None, place: Any = EVERYWHERE) -> None:
        """Never blocks: a client that fell behind drops its queue and is resynced."""
        if self.resync or not self.wants(kinds) or not self.sees(place):
            return
        if len(self.queue) >= self.maxlen or (self.queue and now - self.queue[0][2] > self.lag_s):
            self.queue.clear()
            self.resync = True
        else:
            self.queue.append((seq, frame, now))
        self.wake.set()


class Relay:
    """Reads the ingest's change frames from Redis and serves them over websockets."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.prefix = settings.prefix
        self.clients: set[Client] = set()
        self.last_seq = 0
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}
        self.pending_seq = 0
        self.store: Store | None = None  # sync client, used from worker threads
        self.auth: Auth | None = None
        self.server: Server | None = None
        self.stats: dict[str, Any] = {}
        # camera id → its grid: a video frame names cameras only, and a scoped client's copy
        # leaves out those outside its scope (one entry per camera of the city)
        self.camera_places: dict[str, str | None] = {}
        # scope → (seq, its cut of the snapshot at seq): walls of one town reconnecting
        # together (a relay restart) share one cut; scopes without a client are dropped
        self.cuts: dict[str, tuple[int, dict[str, Any]]] = {}

    # -- running ---------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event, host: str | None = None,
                    port: int | None = None, ready: threading.Event | None = None) -> None:
        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2,
                                      socket_timeout=10)
        self.store = Store(client, self.prefix)
        text_client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2,
                                           socket_timeout=10, decode_responses=True)
        self.auth = Auth(text_client, self.prefix, self.settings)
        async with serve(self._handler, host or self.settings.host,
                         port or self.settings.ws_port, process_request=self._check_origin,
                         max_size=2**16, ping_interval=20, ping_timeout=20,
                         write_limit=2**20) as server:
            self.server = server
            tasks = [asyncio.create_task(coro) for coro in (
                self._follow(), self._flush_moves(), self._broadcast_stats(),
                self._check_sessions())]
            if ready is not None:
                ready.set()
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        client.close()
        text_client.close()

    def run(self, stop: threading.Event, host: str | None = None, port: int | None = None,
            ready: threading.Event | None = None) -> None:
        """Blocking entry for a thread or process; returns soon after `stop` is set."""

        async def main() -> None:
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)),
                             daemon=True).start()
            await self.serve(done, host, port, ready)

        asyncio.run(main())

    async def _io(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    # -- the change stream -------------------------------------------------------------

    async def _follow(self) -> None:
        """Subscribe to the ingest's frames; on any gap or reconnect, fill from the log."""
        backoff = Backoff(0.1, 5.0)
        while True:
            conn = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
            pubsub = conn.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(f"{self.prefix}ui")
                if self.last_seq == 0:
                    self.last_seq = await self._io(self._store().seq)
                    self.camera_places = await self._io(self._read_camera_places)
                else:
                    await self._catch_up()
                backoff.reset()
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is None:
                        continue
                    frames = json.loads(msg["data"])
                    if frames and frames[0]["seq"] > self.last_seq + 1:
                        await self._catch_up()
                    for frame in frames:
                        if frame["seq"] > self.last_seq:
                            self._route(frame)
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                log.warning("relay lost Redis: %s; reconnecting", exc)
                await asyncio.sleep(backoff.next())
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await conn.aclose()

    async def _catch_up(self) -> None:
        entries = await self._io(self._store().log_since, self.last_seq, REPLAY_MAX)
        current = await self._io(self._store().seq)
        if current < self.last_seq or (entries and entries[0][0] > self.last_seq + 1) or (
            len(entries) >= REPLAY_MAX
        ):
            # The log no longer covers the gap (or Redis was reset): everyone resyncs.
            self.pending.clear()
            self.last_seq = current
            for client in self.clients:
                client.queue.clear()
                client.resync = True
                client.wake.set()
            return
        for seq, kind, op, data in entries:
            self._route({"type": "delta", "seq": seq, "kind": kind, "op": op,
                         "data": json.loads(data)})

    def _read_camera_places(self) -> dict[str, str | None]:
        store = self._store()
        return {_text(k): place_of(json.loads(v))
                for k, v in store.r.hgetall(store.key("state:camera")).items()}

    def _route(self, frame: dict[str, Any]) -> None:
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
        self._flush()
        kinds = frozenset((frame["kind"],))
        if frame["kind"] == "video":
            self._broadcast_video(frame, kinds)
            return
        self._broadcast(frame["seq"], _dumps(frame), kinds, place_of(frame["data"]))

    def _broadcast_video(self, frame: dict[str, Any], kinds: frozenset[str]) -> None:
        """A video frame names cameras (and an event): each scope among the clients gets a
        copy without the cameras outside it, encoded once per scope."""
        text = _dumps(frame)
        for scope, clients in self._by_scope().items():
            data = frame["data"] if scope is None else self._video_for(frame["data"], scope)
            if data is None:
                continue
            scoped = text if data is frame["data"] else _dumps({**frame, "data": data})
            now = time.monotonic()
            for client in clients:
                client.offer(frame["seq"], scoped, now, kinds)

    def _video_for(self, data: dict[str, Any], scope: str) -> dict[str, Any] | None:
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

    def _by_scope(self) -> dict[str | None, list[Client]]:
        groups: dict[str | None, list[Client]] = {}
        for client in self.clients:
            groups.setdefault(client.scope, []).append(client)
        return groups

    def _flush(self) -> None:
        if not self.pending:
            return
        items = [{"kind": f["kind"], "op": "move", "data": f["data"]}
                 for f in self.pending.values()]
        self.pending.clear()
        seq, now = self.pending_seq, time.monotonic()
        groups = self._by_scope()
        for scope, clients in groups.items():
            mine = items if scope is None else [
                item for item in items if covers(scope, place_of(item["data"]))]
            if not mine:
                continue
            frame = _dumps({"type": "batch", "seq": seq, "items": mine})
            kinds = frozenset(item["kind"] for item in mine)
            for client in clients:
                client.offer(seq, frame, now, kinds)

    def _broadcast(self, seq: int, frame: str, kinds: frozenset[str] | None = None,
                   place: Any = EVERYWHERE) -> None:
        now = time.monotonic()
        for client in self.clients:
            client.offer(seq, frame, now, kinds, place)

    async def _flush_moves(self) -> None:
        while True:
            await asyncio.sleep(self.settings.coalesce_s)
            self._flush()

    async def _broadcast_stats(self) -> None:
        while True:
            try:
                # at once, then every STATS_S: the heartbeat says "listening" (health's ready)
                self.stats = await self._io(self._read_stats)
            except (redis.RedisError, OSError):
                self.stats = {**self.stats, "redis": "down"}
            frame = _dumps({"type": "stats", "server_ts": int(time.time() * 1000),
                            "stats": self.stats})
            self._broadcast(-1, frame)
            await asyncio.sleep(STATS_S)

    def _read_stats(self) -> dict[str, Any]:
        store = self._store()
        stats = store.stats(day_of(int(time.time() * 1000), self.settings.timezone))
        stats["clients"] = len(self.clients)
        stats["redis"] = "ok"
        store.r.hset(store.key("relay:hb"), mapping={"ts": int(time.time() * 1000),
                                                     "clients": len(self.clients)})
        store.r.expire(store.key("relay:hb"), 15)
        return stats

    def _store(self) -> Store:
        assert self.store is not None
        return self.store

    def _auth(self) -> Auth:
        assert self.auth is not None
        return self.auth

    async def _check_sessions(self) -> None:
        """Slide the sessions of open sockets; close those whose session is gone or whose
        role or scope changed (the socket was opened for what the session was)."""
        while True:
            await asyncio.sleep(SESSION_CHECK_S)
            clients = [c for c in self.clients if c.token]
            if not clients:
                continue
            try:
                now = await self._io(self._sessions, [c.token for c in clients])
            except (redis.RedisError, OSError):
                continue  # Redis down is not a sign-out
            for client, session in zip(clients, now, strict=True):
                if session is None or (session.role, session.scope) != (client.role,
                                                                         client.scope):
                    await client.ws.close(CLOSE_SIGNED_OUT, "signed out")

    def _sessions(self, tokens: list[str]) -> list[Any]:
        """Each token's live session (its TTL slid forward), or None."""
        auth = self._auth()
        return [auth.session(token) for token in tokens]

    def _check_origin(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse a handshake from a page of another origin (cross-site websocket hijacking:
        the browser would send the user's cookie along). No Origin: not a browser."""
        origin = request.headers.get("Origin")
        if origin is None or origin_allowed(origin, request.headers, self.settings):
            return None
        log.warning("relay refused a socket from origin %r", origin[:100])
        return connection.respond(403, "origin not allowed\n")

    # -- one client ----------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "/").query)
        since = _int_or_none(query.get("since", [None])[0])
        kinds = _kinds(query.get("kinds"))
        token = _session_cookie(ws.request.headers.get("Cookie", "") if ws.request else "")
        try:
            session = await self._io(self._auth().session, token) if token else None
        except (redis.RedisError, OSError):
            session = None
        if session is None:
            # a close code (not an HTTP 401) is what a browser's WebSocket can see
            await ws.close(CLOSE_SIGNED_OUT, "sign in")
            return
        if sum(c.token == session.token for c in self.clients) >= self.settings.ws_per_session:
            await ws.close(CLOSE_TOO_MANY, "too many sockets for one session")
            return
        client = Client(ws, self.settings.client_queue_max, self.settings.client_lag_s,
                        session.token, kinds, session.scope, session.role)
        self.clients.add(client)
        try:
            if since is None or not await self._replay(client, since):
                await self._send_snapshot(client)
            while True:
                await client.wake.wait()
                client.wake.clear()
                if client.resync:
                    client.resync = False
                    client.resyncs += 1
                    await self._send_snapshot(client)
                while client.queue and not client.resync:
                    seq, frame, _ = client.queue.popleft()
                    if seq == -1 or seq > client.skip_upto:
                        await ws.send(frame)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)

    async def _send_snapshot(self, client: Client) -> None:
        parts = await self._io(self._store().snapshot_parts)
        if client.scope:
            parts = await self._cut(parts, client.scope)
        if client.kinds is not None:
            parts = dict(parts)  # a shared cut stays whole for the scope's other walls
            for kind, name in SNAPSHOT_KINDS.items():
                if kind not in client.kinds:
                    parts[name] = []
        frame = (
            f'{{"type":"snapshot","seq":{parts["seq"]},"server_ts":{int(time.time() * 1000)},'
            f'"events":[{",".join(parts["events"])}],"workers":[{",".join(parts["workers"])}],'
            f'"resources":[{",".join(parts["resources"])}],'
            f'"cameras":[{",".join(parts["cameras"])}],"tasks":[{",".join(parts["tasks"])}],'
            f'"alerts":[{",".join(parts["alerts"])}],"stats":{_dumps(self.stats)}}}'
        )
        client.skip_upto = parts["seq"]
        await client.ws.send(frame)

    async def _cut(self, parts: dict[str, Any], scope: str) -> dict[str, Any]:
        cached = self.cuts.get(scope)
        if cached is not None and cached[0] == parts["seq"]:
            return cached[1]
        cut = await self._io(scoped_parts, parts, scope)
        live = {c.scope for c in self.clients}
        for old in [s for s in self.cuts if s not in live]:
            del self.cuts[old]
        self.cuts[scope] = (parts["seq"], cut)
        return cut

    async def _replay(self, client: Client, since: int) -> bool:
        """Send what a reconnecting wall missed after `since`; False when a snapshot is due."""
        store = self._store()
        current = await self._io(store.seq)
        if since > current:
            return False  # the wall knows more than Redis: Redis was reset
        entries = await self._io(store.log_since, since, REPLAY_MAX)
        if len(entries) >= REPLAY_MAX or (entries and entries[0][0] != since + 1) or (
            not entries and since < current
        ):
            return False
        moves: dict[tuple[str, str], dict[str, Any]] = {}
        last = since
        for seq, kind, op, data in entries:
            last = seq
            if not client.wants(frozenset((kind,))):
                continue
            record = json.loads(data)
            if client.scope and kind == "video":
                record = self._video_for(record, client.scope) or record
            elif client.scope and not covers(client.scope, place_of(record)):
                continue
            if op == "move":
                moves[(kind, record["id"])] = {"kind": kind, "op": op, "data": record}
                continue
            if moves:
                await client.ws.send(_dumps({"type": "batch", "seq": seq - 1,
                                             "items": list(moves.values())}))
                moves.clear()
            await client.ws.send(_dumps({"type": "delta", "seq": seq, "kind": kind, "op": op,
                                         "data": record}))
        if moves:
            await client.ws.send(_dumps({"type": "batch", "seq": last,
                                         "items": list(moves.values())}))
        client.skip_upto = last
        if self.stats:
            await client.ws.send(_dumps({"type": "stats", "server_ts": int(time.time() * 1000),
                                         "stats": self.stats}))
        return True


def scoped_parts(parts: dict[str, Any], scope: str) -> dict[str, Any]:
    """A snapshot's raw records cut to what lies in `scope`. A task or alert written before
    they carried their grid lies where its event lies."""
    out = dict(parts)
    grids: dict[str, str | None] = {}
    for name in ("events", "workers", "resources", "cameras", "tasks", "alerts"):
        kept = []
        for raw in parts[name]:
            record = json.loads(raw)
            place = place_of(record)
            if place is None and record.get("event_id"):
                place = grids.get(str(record["event_id"]))
            if name == "events":
                grids[str(record.get("id"))] = place
            if covers(scope, place):
                kept.append(raw)
        out[name] = kept
    return out


def origin_allowed(origin: str, headers: Headers, settings: Settings) -> bool:
    """Whether a page at `origin` may open a socket: one of CC_WS_ORIGINS when set, else a
    page on the relay's own host name (any port: the pages and the relay are one host, and
    another site is another host name)."""
    origin = origin.rstrip("/")
    if settings.ws_origins:
        return origin in settings.ws_origins
    try:
        page = urlsplit(origin)
        host = urlsplit("//" + headers.get("Host", "")).hostname
        page_host = page.hostname
    except ValueError:
        return False
    return page.scheme in ("http", "https") and bool(host) and page_host == host


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _session_cookie(header: str) -> str:
    """The `cc_session` value of a Cookie header, or "" (a malformed header counts as none)."""
    try:
        morsel = SimpleCookie(header).get(COOKIE)
    except CookieError:
        return ""
    return morsel.value if morsel is not None else ""


def _kinds(values: list[str] | None) -> frozenset[str] | None:
    """`?kinds=a,b` → the kinds a page wants (empty: none); absent → None, every kind."""
    if values is None:
        return None
    names = [k.strip() for v in values for k in v.split(",") if k.strip()]
    return frozenset(n[:32] for n in names[:KINDS_MAX])


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def main() -> None:
    """`python -m feeds.relay`: one relay against REDIS_URL on CC_WS_PORT."""
    run_service("feeds.relay", lambda settings, url, stop: Relay(settings, url).run(stop))


if __name__ == "__main__":
    main()
