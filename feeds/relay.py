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

Built for hundreds of walls on one process (bench/walls.py): the same bytes go to every wall
that wants them, written straight into each socket once per routing step (no task wakes per
wall per frame); a snapshot is read once for all the walls that asked while the previous one
was being read and each (scope, kinds) cut of it encoded once, and at most SNAPSHOT_SENDS go
out at a time, so a reconnect storm after a relay restart costs a few reads, not one per
wall. A wall whose socket buffer stays full is resynchronised once it drains. No
permessage-deflate by default (CC_WS_COMPRESSION): it would compress every frame once per
wall.
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
from websockets.protocol import State

import feeds.relay_metrics
from dashboard.access.auth import Auth
from dashboard.backoff import reconnecting
from dashboard.config import Settings
from dashboard.connect import is_cluster, open_async, open_redis, sharded
from dashboard.scope import place_of
from dashboard.store import Store, day_of
from feeds.fanout import Client, Fanout, encode, snapshot_frame
from feeds.service import instance_id, run_service

log = logging.getLogger("cc.relay")

REPLAY_MAX: Final = 50_000  # a longer gap is cheaper to close with a snapshot
STATS_S: Final = 1.0
SESSION_CHECK_S: Final = 15.0  # how often open sockets slide (and re-check) their sessions
CLOSE_SIGNED_OUT: Final = 4401  # close code the wall reads as "go to /login"
CLOSE_TOO_MANY: Final = 4429  # this session already holds CC_WS_PER_SESSION sockets
COOKIE: Final = "cc_session"
KINDS_MAX: Final = 16
WRITE_LIMIT: Final = 2**20  # a wall whose socket buffer stays over this is behind
SNAPSHOT_SENDS: Final = 8  # snapshots in flight at once: a reconnect storm's memory is bounded
PING_TIMEOUT_S: Final = 2.0  # a silent subscription's server must answer a PING this fast


class Snapshot:
    """One read of the state, shared by the walls that asked before it began; each
    (scope, kinds) cut is encoded once, in a task of its own so a wall that leaves while it
    is made does not leave the others waiting."""

    def __init__(self, parts: dict[str, Any]) -> None:
        self.parts = parts
        self.seq: int = parts["seq"]
        self.frames: dict[tuple[str | None, frozenset[str] | None], asyncio.Task[bytes]] = {}


class Relay:
    """Reads the ingest's change frames from Redis and serves them over websockets."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.prefix = settings.prefix
        self.instance = instance_id()  # its own field of the shared heartbeat
        self.fan = Fanout()
        self.store: Store | None = None  # sync client, used from worker threads
        self.auth: Auth | None = None
        self.metrics = feeds.relay_metrics.RelayMetrics(self.instance)  # for /metrics
        self.server: Server | None = None
        self.stats: dict[str, Any] = {}
        self.stopping = False
        self._next_snapshot: asyncio.Task[Snapshot] | None = None  # not yet reading
        self._reading = asyncio.Lock()
        self._sending = asyncio.Semaphore(SNAPSHOT_SENDS)
        self.snapshots_read = 0
        self.redis_id = ""  # run id of the Redis the frames came from (see _follow)

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
                         write_limit=WRITE_LIMIT,
                         compression="deflate" if self.settings.ws_compression else None,
                         ) as server:
            self.server = server
            tasks = [asyncio.create_task(coro) for coro in (
                self._follow(), self._flush_moves(), self._broadcast_stats(),
                self._check_sessions())]
            if ready is not None:
                ready.set()
            await stop.wait()
            # A cancellation that lands inside redis-py's own connect timeout can come out as
            # a TimeoutError on Python 3.11 (taken for "Redis lost": the loop would reconnect
            # for ever): the loops also stop on this flag, and are cancelled until they end.
            self.stopping = True
            while not all(task.done() for task in tasks):
                for task in tasks:
                    task.cancel()
                await asyncio.wait(tasks, timeout=0.5)
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
        backoff = reconnecting()
        while not self.stopping:
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
                # which server the frames come from (one server or Sentinel's primary; a
                # cluster's failovers are its own business)
                server = "" if is_cluster(conn) else str(
                    (await conn.info("server")).get("run_id", ""))
                if self.fan.last_seq == 0:
                    self.fan.last_seq = await self._io(self._store().seq)
                    self.fan.camera_places = await self._io(self._read_camera_places)
                elif server != self.redis_id:
                    # Another server (a replica Sentinel promoted, or a restart): replication
                    # is asynchronous, so its log's last seqs may hold other changes than the
                    # walls were sent. No log entry can vouch for them: every wall resyncs
                    # (limit 0 makes catch_up treat the log as not covering the gap), and so
                    # will a wall resuming from a seq this far, on any relay (_replay).
                    await self._io(self._store().mark_fork, self.fan.last_seq)
                    self.fan.catch_up(await self._io(self._store().seq), [], 0)
                else:
                    await self._catch_up()
                self.redis_id = server
                backoff.reset()
                while True:
                    msg = await read(timeout=1.0)
                    if msg is None and server:
                        # A silent second: a hung server (Sentinel fails over from it; no
                        # reset reaches us) would keep the walls silent for ever.
                        await asyncio.wait_for(conn.ping(), PING_TIMEOUT_S)
                    if msg is None or msg["type"] in ("subscribe", "ssubscribe"):
                        continue
                    if msg["type"] in ("unsubscribe", "sunsubscribe"):
                        # the slot went to another master: subscribe there, fill from the log
                        raise redis.ConnectionError("the frames' channel moved")
                    frames = json.loads(msg["data"])
                    if self.fan.gap(frames):
                        await self._catch_up()
                    self.fan.receive(frames)
                    self._write_out()
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                if self.stopping:
                    return
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
        self._write_out()

    def _read_camera_places(self) -> dict[str, str | None]:
        store = self._store()
        return {_text(k): place_of(json.loads(v))
                for k, v in store.r.hgetall(store.key("state:camera")).items()}

    async def _flush_moves(self) -> None:
        while True:
            await asyncio.sleep(self.settings.coalesce_s)
            self.fan.flush()
            self._write_out()

    async def _broadcast_stats(self) -> None:
        while True:
            try:
                # at once, then every STATS_S: the heartbeat says "listening" (health's ready)
                self.stats = await self._io(self._read_stats)
                await self._io(self.metrics.publish, self._store(), self.metrics.figures(self.fan))
            except (redis.RedisError, OSError):
                self.stats = {**self.stats, "redis": "down"}
            self.fan.broadcast(-1, self._stats_frame())
            self._write_out()
            await asyncio.sleep(STATS_S)

    def _stats_frame(self) -> bytes:
        return encode({"type": "stats", "server_ts": int(time.time() * 1000),
                       "stats": self.stats})

    def _read_stats(self) -> dict[str, Any]:
        store = self._store()
        stats = store.stats(day_of(int(time.time() * 1000), self.settings.timezone))
        stats["clients"] = len(self.fan.clients)
        stats["redis"] = "ok"
        store.relay_beat(self.instance, len(self.fan.clients))  # one field per relay
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

    # -- writing -------------------------------------------------------------------------

    def _write_out(self) -> None:
        """Write what the last routing step queued, to every live wall at once."""
        now = time.monotonic()
        for client in self.fan.take_ready():
            if client.live:
                self._write(client, now)

    def _write(self, client: Client, now: float) -> None:
        """Frames into the socket without waiting (as websockets' broadcast does), in one
        write; a wall whose buffer stays full is marked for a resync instead of slowing the
        others."""
        ws = client.ws
        queue, skip = client.queue, client.skip_upto
        if ws.protocol.state is not State.OPEN or ws.transport.is_closing():
            queue.clear()
            return
        while queue:
            seq, frame, _ = queue.popleft()
            if seq == -1 or seq > skip:
                ws.protocol.send_text(frame)
        chunks = [chunk for chunk in ws.protocol.data_to_send() if chunk]
        if chunks:
            ws.transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        buffered = ws.transport.get_write_buffer_size()
        if buffered > self.settings.client_buffer_max:
            client.mark_resync()
        elif buffered > WRITE_LIMIT:
            if client.behind_since is None:
                client.behind_since = now
            elif now - client.behind_since > client.lag_s:
                client.mark_resync()
        else:
            client.behind_since = None

    def _go_live(self, client: Client) -> None:
        """The wall has its snapshot or replay: what queued meanwhile goes out, and from now
        on frames are written as they are routed."""
        if not client.resync:
            client.live = True
            self._write(client, time.monotonic())

    # -- one client ----------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        # blank values kept: `?kinds=` (a page that wants no kind, the cockpit) is not absent
        query = parse_qs(urlsplit(ws.request.path if ws.request else "/").query,
                         keep_blank_values=True)
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
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            if since is None or not await self._replay(client, since):
                await self._send_snapshot(client)
            self._go_live(client)
            while True:
                wake = asyncio.ensure_future(client.wake.wait())
                await asyncio.wait((wake, closed), return_when=asyncio.FIRST_COMPLETED)
                if closed.done():
                    wake.cancel()
                    break
                client.wake.clear()
                if client.resync:
                    await ws.drain()  # what is buffered goes first: no second backlog
                    client.resync = False
                    client.resyncs += 1
                    await self._send_snapshot(client)
                    self._go_live(client)
        except ConnectionClosed:
            pass
        finally:
            closed.cancel()
            self.fan.clients.discard(client)
            self.fan.ready.discard(client)

    async def _snapshot(self) -> Snapshot:
        """A read of the state that begins after this call: the walls that ask while one is
        being read share the next."""
        if self._next_snapshot is None:
            self._next_snapshot = asyncio.create_task(self._read_snapshot())
        return await asyncio.shield(self._next_snapshot)

    async def _read_snapshot(self) -> Snapshot:
        async with self._reading:
            self._next_snapshot = None  # from now on, a new asker waits for the next read
            parts = await self._io(self._store().snapshot_parts)
            self.snapshots_read += 1
            return Snapshot(parts)

    async def _send_snapshot(self, client: Client) -> None:
        snapshot = await self._snapshot()
        key = (client.scope, client.kinds)
        task = snapshot.frames.get(key)
        if task is None:
            task = asyncio.create_task(self._io(
                snapshot_frame, snapshot.parts, client.scope, client.kinds, self.stats,
                int(time.time() * 1000)))
            snapshot.frames[key] = task
        frame = await asyncio.shield(task)
        async with self._sending:
            client.skip_upto = snapshot.seq
            await client.ws.send(frame, text=True)

    async def _replay(self, client: Client, since: int) -> bool:
        """Send what a reconnecting wall missed after `since`; False when a snapshot is due."""
        store = self._store()
        if since <= await self._io(store.fork):
            return False  # it saw that seq before a failover: maybe another change than now
        current = await self._io(store.seq)
        entries = await self._io(store.log_since, since, REPLAY_MAX) if since <= current else []
        frames = self.fan.replay(client, since, current, entries, REPLAY_MAX)
        if frames is None:
            return False
        for frame in frames:
            await client.ws.send(frame, text=True)
        if self.stats:
            await client.ws.send(self._stats_frame(), text=True)
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
