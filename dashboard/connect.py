"""One place where every process opens its Redis clients from a `REDIS_URL`.

Today a URL names one server (`redis://`, `rediss://`, `unix://`). Sentinel and Cluster
URLs (issue 15) are resolved here too, so the ingest, relay, watch, web workers and the
simulator follow a failover or a cluster without knowing which they talk to.

A Valkey/Redis Cluster is named by `redis+cluster://[[user]:password@]host:port[,host:port…]`
(`rediss+cluster://` for TLS): any few of its nodes, from which the client learns the rest.
On a cluster every key and channel of one prefix must lie in one hash slot, so the prefix
must carry a hash tag (`{pingdu}:`): `check_prefix` says so at start-up (docs/OPERATIONS.md,
"Cluster").
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import unquote

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
from redis.cluster import ClusterNode

CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")


def open_redis(url: str, **options: Any) -> redis.Redis:
    """A blocking client for `url`; `options` are redis-py's (decode_responses, timeouts…)."""
    if is_cluster_url(url):
        return _open_cluster(url, options)  # type: ignore[return-value]
    return redis.Redis.from_url(url, **options)


def open_async(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client for `url` (the relay's subscriber)."""
    if is_cluster_url(url):
        return _open_cluster(url, options, asynchronous=True)  # type: ignore[return-value]
    return aioredis.Redis.from_url(url, **options)


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
    return client.connection_pool.make_connection()


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
