"""One place where every process opens its Redis clients from a `REDIS_URL`.

A URL names one server (`redis://`, `rediss://`, `unix://`) or, for Redis without a single
point of failure, a set of Sentinels and the service they watch:

    redis+sentinel://[[user]:password@]host1:26379,host2:26380[,…]/service[/db]
                     [?sentinel_password=…]

The user and password are the data nodes' (primary and replicas share them); the Sentinels'
own password, if they have one, is `sentinel_password`. A client asks the Sentinels for the
primary on every new connection, so the ingest, relay, watch, web workers and the simulator
follow a failover by reconnecting as they already do after any lost connection
(docs/OPERATIONS.md, "Sentinel"). Cluster URLs (issue 15) are resolved here too.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, unquote

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel as sentinel

SENTINEL_SCHEME: Final = "redis+sentinel"
SENTINEL_PORT: Final = 26379
# Asking a Sentinel is a loopback or LAN round trip; a dead one must not hold up finding the
# primary (each is tried in turn), so their timeouts are short whatever the data nodes' are.
SENTINEL_TIMEOUT_S: Final = 0.5
# A primary whose host died (power, network) sends no reset: without keepalive a subscriber
# would wait on it for hours. Probes after 2 s idle, 1 s apart, 3 unanswered: ~5 s to notice.
KEEPALIVE: Final = {getattr(socket, name): value for name, value in (
    ("TCP_KEEPIDLE", 2), ("TCP_KEEPINTVL", 1), ("TCP_KEEPCNT", 3)) if hasattr(socket, name)}
# A hung primary (alive to TCP, answering nothing) is what Sentinel fails over from too: under
# Sentinel a command waits at most this long (a caller's shorter timeout stands), then the
# process reconnects and asks the Sentinels again. Far above any command the stack sends.
NODE_TIMEOUT_S: Final = 3.0


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """What a `redis+sentinel://` URL names."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def is_sentinel(url: str) -> bool:
    """Whether `url` names Sentinels rather than one server."""
    return url.split("://", 1)[0].lower() == SENTINEL_SCHEME


def parse_sentinel(url: str) -> SentinelTarget:
    """The parts of a `redis+sentinel://` URL; ValueError when it is malformed.

    Written by hand: urllib reads one host and port per URL, and this one has several."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(h) for h in hosts.split(",") if h.strip())
    if not sentinels:
        raise ValueError("a sentinel URL names at least one sentinel host")
    service, _, db = path.strip("/").partition("/")
    if not service:
        raise ValueError("a sentinel URL names the service: redis+sentinel://hosts/service")
    if db and not db.isdigit():
        raise ValueError(f"the database must be a number, not {db!r}")
    params = parse_qs(query)
    unknown = set(params) - {"sentinel_password"}
    if unknown:
        raise ValueError(f"unknown sentinel URL option(s): {', '.join(sorted(unknown))}")
    return SentinelTarget(sentinels, unquote(service), int(db or 0), username, password,
                          params.get("sentinel_password", [None])[0])


def _host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [::1]:26379
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host or (port and not port.isdigit()):
        raise ValueError(f"bad sentinel address {text!r}")
    return host, int(port or SENTINEL_PORT)


def _kwargs(target: SentinelTarget, options: dict[str, Any]) -> tuple[dict[str, Any],
                                                                       dict[str, Any]]:
    """(the Sentinels' connection options, the data nodes' connection options)."""
    nodes = {"db": target.db, "username": target.username, "password": target.password,
             "socket_keepalive": True, "socket_keepalive_options": KEEPALIVE, **options}
    nodes["socket_timeout"] = min(options.get("socket_timeout") or NODE_TIMEOUT_S,
                                  NODE_TIMEOUT_S)
    watchers: dict[str, Any] = {"socket_connect_timeout": SENTINEL_TIMEOUT_S,
                                "socket_timeout": SENTINEL_TIMEOUT_S}
    if target.sentinel_password:
        watchers["password"] = target.sentinel_password
    return watchers, nodes


class _SentinelRedis(redis.Redis):
    """The primary's client; closing it closes its Sentinel connections too (each reconnect
    loop opens a fresh client: without this every loop left sentinel sockets behind)."""

    def close(self) -> None:
        super().close()
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        for watcher in getattr(manager, "sentinels", ()):
            watcher.close()


class _AsyncSentinelRedis(aioredis.Redis):
    """The asyncio twin of `_SentinelRedis`."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        for watcher in getattr(manager, "sentinels", ()):
            await watcher.aclose()


def open_redis(url: str, **options: Any) -> redis.Redis:
    """A blocking client for `url`; `options` are redis-py's (decode_responses, timeouts…)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel(url)
    watchers, nodes = _kwargs(target, options)
    manager = sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=watchers)
    return manager.master_for(target.service, redis_class=_SentinelRedis, **nodes)


def open_async(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client for `url` (the relay's subscriber)."""
    if not is_sentinel(url):
        return aioredis.Redis.from_url(url, **options)
    target = parse_sentinel(url)
    watchers, nodes = _kwargs(target, options)
    manager = aiosentinel.Sentinel(list(target.sentinels), sentinel_kwargs=watchers)
    return manager.master_for(target.service, redis_class=_AsyncSentinelRedis, **nodes)


def reopen(client: redis.Redis, **options: Any) -> redis.Redis:
    """A new client on the same server (or the same Sentinel service) as `client`, with
    some of its options changed (e.g. decode_responses=False for binary columns)."""
    pool = client.connection_pool
    # the pool's own back-reference and class are set by the pool itself, not options
    kwargs = {k: v for k, v in pool.connection_kwargs.items()
              if k not in ("connection_pool", "connection_class")}
    kwargs.update(options)
    if isinstance(pool, sentinel.SentinelConnectionPool):
        return pool.sentinel_manager.master_for(pool.service_name, redis_class=_SentinelRedis,
                                                **kwargs)
    return redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, **kwargs))


def server_id(client: redis.Redis) -> str:
    """The run id of the server `client` talks to: it changes when a replica is promoted
    (or the server restarts), which is when a log read before may not match its log."""
    return str(client.info("server").get("run_id", ""))
