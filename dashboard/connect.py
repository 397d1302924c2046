"""One place where every process opens its Redis clients from a `REDIS_URL`.

Today a URL names one server (`redis://`, `rediss://`, `unix://`). Sentinel and Cluster
URLs (issue 15) are resolved here too, so the ingest, relay, watch, web workers and the
simulator follow a failover or a cluster without knowing which they talk to.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis


def open_redis(url: str, **options: Any) -> redis.Redis:
    """A blocking client for `url`; `options` are redis-py's (decode_responses, timeouts…)."""
    return redis.Redis.from_url(url, **options)


def open_async(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client for `url` (the relay's subscriber)."""
    return aioredis.Redis.from_url(url, **options)
