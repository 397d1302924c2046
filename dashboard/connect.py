"""One place where every process opens its Redis clients from a `REDIS_URL`.

A URL names one server (`redis://`, `rediss://`, `unix://`), Sentinels, or a Cluster
(issue 15), so the ingest, relay, watch, web workers and the simulator follow a failover or
a cluster without knowing which they talk to.

Redis without a single point of failure is named by the Sentinels and the service they watch:

    redis+sentinel://[[user]:password@]host1:26379,host2:26380[,…]/service[/db]
                     [?sentinel_password=…]

The user and password are the data nodes' (primary and replicas share them); the Sentinels'
own password, if they have one, is `sentinel_password`. A client asks the Sentinels for the
primary on every new connection, so every process follows a failover by reconnecting as it
already does after any lost connection (docs/OPERATIONS.md, "Sentinel").

A Valkey/Redis Cluster is named by `redis+cluster://[[user]:password@]host:port[,host:port…]`
(`rediss+cluster://` for TLS): any few of its nodes, from which the client learns the rest.
On a cluster every key and channel of one prefix must lie in one hash slot, so the prefix
must carry a hash tag (`{pingdu}:`): `check_prefix` says so at start-up (docs/OPERATIONS.md,
"Cluster").
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, unquote

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel as sentinel
from redis.cluster import ClusterNode

CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")


def open_redis(url: str, **options: Any) -> redis.Redis:
    """A blocking client for `url`; `options` are redis-py's (decode_responses, timeouts…)."""
    if is_cluster_url(url):
        return _open_cluster(url, options)  # type: ignore[return-value]
    if is_sentinel(url):
        return _open_sentinel(url, options)
    return redis.Redis.from_url(url, **options)


def open_async(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client for `url` (the relay's subscriber)."""
    if is_cluster_url(url):
        return _open_cluster(url, options, asynchronous=True)  # type: ignore[return-value]
    if is_sentinel(url):
        return _open_sentinel(url, options, asynchronous=True)  # type: ignore[return-value]
    return aioredis.Redis.from_url(url, **options)


# -- Sentinel ----------------------------------------------------------------------------

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


def _open_sentinel(url: str, options: dict[str, Any], asynchronous: bool = False) -> Any:
    target = parse_sentinel(url)
    watchers, nodes = _kwargs(target, options)
    if asynchronous:
        manager: Any = aiosentinel.Sentinel(list(target.sentinels), sentinel_kwargs=watchers)
        client = manager.master_for(target.service, redis_class=_AsyncSentinelRedis, **nodes)
    else:
        manager = sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=watchers)
        client = manager.master_for(target.service, redis_class=_SentinelRedis, **nodes)
    client.cc_opened = (url, options)  # what `sibling` opens again
    return client


def server_id(client: redis.Redis) -> str:
    """The run id of the server `client` talks to: it changes when a replica is promoted
    (or the server restarts), which is when a log read before may not match its log."""
    return str(client.info("server").get("run_id", ""))


# -- Cluster -----------------------------------------------------------------------------

def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def is_cluster(client: Any) -> bool:
    """Whether `client` (sync or asyncio) talks to a cluster."""
    return isinstance(client, (redis.RedisCluster, aiocluster.RedisCluster))


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes and the connection options (username, password, ssl) of a cluster URL."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(f"not a cluster URL: {scheme}://…")
    rest = rest.split("/", 1)[0].split("?", 1)[0]
    auth, _, hosts = rest.rpartition("@")
    options: dict[str, Any] = {"ssl": scheme.lower().startswith("rediss")}
    if auth:
        user, _, password = auth.partition(":")
        if user:
            options["username"] = unquote(user)
        if password:
            options["password"] = unquote(password)
    nodes = []
    for part in hosts.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"a cluster URL names its nodes as host:port, got {part!r}")
        nodes.append((host.strip("[]"), int(port)))
    return nodes, options


def _open_cluster(url: str, options: dict[str, Any], asynchronous: bool = False) -> Any:
    nodes, auth = parse_cluster_url(url)
    if not auth["ssl"]:
        del auth["ssl"]
    if asynchronous:
        client: Any = aiocluster.RedisCluster(
            startup_nodes=[aiocluster.ClusterNode(h, p) for h, p in nodes], **auth, **options)
    else:
        client = redis.RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes],
                                    **auth, **options)
    client.cc_opened = (url, options)  # what `sibling` opens again
    return client


def sibling(client: redis.Redis, **options: Any) -> redis.Redis:
    """A second client on the same server or cluster with some options changed (bytes
    instead of text…)."""
    opened = getattr(client, "cc_opened", None)
    if opened is not None:
        url, before = opened
        return open_redis(url, **{**before, **options})
    kwargs = {**client.connection_pool.connection_kwargs, **options}
    pool = redis.ConnectionPool(connection_class=client.connection_pool.connection_class,
                                **kwargs)
    return redis.Redis(connection_pool=pool)


def dedicated_connection(client: redis.Redis, key: str) -> Any:
    """A connection of its own (outside the pool) to the server holding `key`: the ingest
    pipelines its batches on one, in order. On a cluster, the master of the key's slot."""
    if is_cluster(client):
        node = client.get_node_from_key(key)  # type: ignore[attr-defined]
        pool = client.get_redis_connection(node).connection_pool  # type: ignore[attr-defined]
        return pool.make_connection()
    conn = client.connection_pool.make_connection()
    if isinstance(client.connection_pool, sentinel.SentinelConnectionPool):
        # a Sentinel connection asks for the primary's address only in connect(), which a
        # send skips: it would dial the default localhost:6379
        conn.connect()
    return conn


def hash_tag(prefix: str) -> str | None:
    """The hash tag every `prefix + name` key hashes by (Redis' rule: the text between the
    first `{` and the first `}` after it, if not empty), or None."""
    start = prefix.find("{")
    end = prefix.find("}", start + 1) if start >= 0 else -1
    return prefix[start + 1:end] if end > start + 1 else None


def sharded(prefix: str) -> bool:
    """Whether the prefix's internal channels (`ui`) use sharded pub/sub (SPUBLISH/
    SSUBSCRIBE): yes when the prefix carries a hash tag, on a cluster or a single server
    alike, so a script and the relay agree without knowing which they run on."""
    return hash_tag(prefix) is not None


def check_prefix(client: Any, prefix: str) -> None:
    """Refuse an untagged prefix on a cluster (`client` a client or a URL): its keys would
    spread over every slot, and the scripts that touch many of them at once would fail with
    CROSSSLOT mid-run."""
    on_cluster = is_cluster_url(client) if isinstance(client, str) else is_cluster(client)
    if on_cluster and hash_tag(prefix) is None:
        raise ValueError(
            f"CC_PREFIX={prefix!r} on a Redis Cluster needs a hash tag, e.g. '{{pingdu}}:' "
            "(braces around a name), so all of one city's keys share one hash slot")


def home_node(client: redis.Redis, prefix: str) -> redis.Redis:
    """The client that holds all of `prefix`'s keys: on a cluster the master of the prefix's
    slot (a plain client, so SCAN and scripts in a pipeline work as on one server), else
    `client` itself."""
    if is_cluster(client):
        node = client.get_node_from_key(prefix)  # type: ignore[attr-defined]
        return client.get_redis_connection(node)  # type: ignore[attr-defined,no-any-return]
    return client
