from __future__ import annotations

from pathlib import Path

import redis

from feeds.redis_server import EmbeddedRedis


def test_redis001_embedded_server_is_real_and_persists(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "data", persist=True) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        client.set("cc:probe", "1")
        assert "valkey_version" in client.info("server") or "redis_version" in client.info("server")
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
        port = server.port
    # Restart on the same folder: the append-only file brings the data back.
    with EmbeddedRedis(tmp_path / "data", port=port, persist=True) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.get("cc:probe") == "1"
        client.close()
    assert server.process is None
