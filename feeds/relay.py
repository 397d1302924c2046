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
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import redis
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from dashboard.access.auth import Auth
from dashboard.backoff import Backoff
from dashboard.config import Settings
from dashboard.connect import is_cluster, open_async, open_redis, sharded
from dashboard.scope import place_of
from dashboard.store import Store, day_of
from feeds.fanout import Client, Fanout, dumps, scoped_parts
from feeds.service import run_service

log = logging.getLogger("cc.relay")

REPLAY_MAX: Final = 50_000  # a longer gap is cheaper to close with a snapshot
STATS_S: Final = 1.0
SESSION_CHECK_S: Final = 15.0  # how often open sockets slide (and re-check) their sessions
CLOSE_SIGNED_OUT: Final = 4401  # close code the wall reads as "go to /login"
CLOSE_TOO_MANY: Final = 4429  # this session already holds CC_WS_PER_SESSION sockets
COOKIE: Final = "cc_session"
SNAPSHOT_KINDS: Final = {"event": "events", "worker": "workers", "resource": "resources",
                         "camera": "cameras", "task": "tasks", "alert": "alerts"}
KINDS_MAX: Final = 16


class Relay:
    """Reads the ingest's change frames from Redis and serves them over websockets."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.prefix = settings.prefix
        self.fan = Fanout()
        self.store: Store | None = None  # sync client, used from worker threads
        self.auth: Auth | None = None
        self.server: Server | None = None
        self.stats: dict[str, Any] = {}
        # scope → (seq, its cut of the snapshot at seq): walls of one town reconnecting
        # together (a relay restart) share one cut; scopes without a client are dropped
        self.cuts: dict[str, tuple[int, dict[str, Any]]] = {}

    # -- running ---------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event, host: str | None = None,
                    port: int | None = None, ready: threading.Event | None = None) -> None:
        client = open_redis(self.redis_url, socket_connect_timeout=2,
                            socket_timeout=10)
        self.store = Store(client, self.prefix)
        text_client = open_redis(self.redis_url, socket_connect_timeout=2,
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
            conn = open_async(self.redis_url, socket_connect_timeout=2)
            # subscription news kept: a cluster unsubscribes us when the slot moves
            pubsub = conn.pubsub(ignore_subscribe_messages=False)
            # A tagged prefix's frames come sharded (SPUBLISH, dashboard/connect.py): on a
            # cluster only the master of the prefix's slot carries them.
            shard = sharded(self.prefix)
            read = pubsub.get_message
            try:
                if shard and is_cluster(conn):
                    await conn.initialize()  # the slot map: which node to subscribe on
                    read = pubsub.get_sharded_message
                await (pubsub.ssubscribe if shard else pubsub.subscribe)(f"{self.prefix}ui")
                if self.fan.last_seq == 0:
                    self.fan.last_seq = await self._io(self._store().seq)
                    self.fan.camera_places = await self._io(self._read_camera_places)
                else:
                    await self._catch_up()
                backoff.reset()
                while True:
                    msg = await read(timeout=1.0)
                    if msg is None or msg["type"] in ("subscribe", "ssubscribe"):
                        continue
                    if msg["type"] in ("unsubscribe", "sunsubscribe"):
                        # the slot went to another master: subscribe there, fill from the log
                        raise redis.ConnectionError("the frames' channel moved")
                    frames = json.loads(msg["data"])
                    if self.fan.gap(frames):
                        await self._catch_up()
                    self.fan.receive(frames)
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
        entries = await self._io(self._store().log_since, self.fan.last_seq, REPLAY_MAX)
        current = await self._io(self._store().seq)
        self.fan.catch_up(current, entries, REPLAY_MAX)

    def _read_camera_places(self) -> dict[str, str | None]:
        store = self._store()
        return {_text(k): place_of(json.loads(v))
                for k, v in store.r.hgetall(store.key("state:camera")).items()}

    async def _flush_moves(self) -> None:
        while True:
            await asyncio.sleep(self.settings.coalesce_s)
            self.fan.flush()

    async def _broadcast_stats(self) -> None:
        while True:
            try:
                # at once, then every STATS_S: the heartbeat says "listening" (health's ready)
                self.stats = await self._io(self._read_stats)
            except (redis.RedisError, OSError):
                self.stats = {**self.stats, "redis": "down"}
            frame = dumps({"type": "stats", "server_ts": int(time.time() * 1000),
                           "stats": self.stats})
            self.fan.broadcast(-1, frame)
            await asyncio.sleep(STATS_S)

    def _read_stats(self) -> dict[str, Any]:
        store = self._store()
        stats = store.stats(day_of(int(time.time() * 1000), self.settings.timezone))
        stats["clients"] = len(self.fan.clients)
        stats["redis"] = "ok"
        store.r.hset(store.key("relay:hb"), mapping={"ts": int(time.time() * 1000),
                                                     "clients": len(self.fan.clients)})
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
            clients = [c for c in self.fan.clients if c.token]
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
        if sum(c.token == session.token for c in self.fan.clients) >= self.settings.ws_per_session:
            await ws.close(CLOSE_TOO_MANY, "too many sockets for one session")
            return
        client = Client(ws, self.settings.client_queue_max, self.settings.client_lag_s,
                        session.token, kinds, session.scope, session.role)
        self.fan.clients.add(client)
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
            self.fan.clients.discard(client)

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
            f'"alerts":[{",".join(parts["alerts"])}],"stats":{dumps(self.stats)}}}'
        )
        client.skip_upto = parts["seq"]
        await client.ws.send(frame)

    async def _cut(self, parts: dict[str, Any], scope: str) -> dict[str, Any]:
        cached = self.cuts.get(scope)
        if cached is not None and cached[0] == parts["seq"]:
            return cached[1]
        cut = await self._io(scoped_parts, parts, scope)
        live = {c.scope for c in self.fan.clients}
        for old in [s for s in self.cuts if s not in live]:
            del self.cuts[old]
        self.cuts[scope] = (parts["seq"], cut)
        return cut

    async def _replay(self, client: Client, since: int) -> bool:
        """Send what a reconnecting wall missed after `since`; False when a snapshot is due."""
        store = self._store()
        current = await self._io(store.seq)
        entries = await self._io(store.log_since, since, REPLAY_MAX) if since <= current else []
        frames = self.fan.replay(client, since, current, entries, REPLAY_MAX)
        if frames is None:
            return False
        for frame in frames:
            await client.ws.send(frame)
        if self.stats:
            await client.ws.send(dumps({"type": "stats", "server_ts": int(time.time() * 1000),
                                        "stats": self.stats}))
        return True


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
