"""Ready means ready: `starting` until ingest subscribes and the relay listens; memory."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import redis

from dashboard.config import ROOT, Settings
from feeds.redis_server import free_port

from ..conftest import running_stack
from ..feeds.test_ingest import TS, an_event, wait_for


def _app(redis_url: str) -> Any:
    from app import create_app

    return create_app(dataclasses.replace(Settings(), redis_url=redis_url))


def test_rdy001_starting_until_ingest_and_relay_then_degraded(redis_url: str,
                                                              r: redis.Redis) -> None:
    http = _app(redis_url).server.test_client()
    res = http.get("/api/health")
    assert res.status_code == 503
    body = res.get_json()
    assert body["status"] == "starting"
    assert body["reasons"] == ["ingest_starting", "relay_starting"]
    with running_stack(redis_url):
        # the heartbeats follow the subscription and the listening socket by a moment
        res = wait_for(lambda: (got := http.get("/api/health")).status_code == 200 and got)
        assert res.get_json()["reasons"] == ["watch_down"]  # no watch in this stack
        assert res.get_json()["standby"] == {"alive": False, "ring": 0}
    r.delete("cc:ingest:hb")  # ingest gone after being ready: degraded, still serving
    res = http.get("/api/health")
    assert res.status_code == 200 and res.get_json()["status"] == "degraded"
    assert "ingest_down" in res.get_json()["reasons"]


def test_rdy002_degraded_before_redis_memory_runs_out(redis_url: str, r: redis.Redis) -> None:
    with running_stack(redis_url, watch=True):
        http = _app(redis_url).server.test_client()
        try:
            body = wait_for(lambda: (b := http.get("/api/health").get_json())["status"] == "ok"
                            and b)
            assert body["redis"]["maxmemory"] == 0
            used = int(r.info("memory")["used_memory"])
            r.config_set("maxmemory", int(used / 0.9))  # 90 % used: past the 85 % warning
            body = http.get("/api/health").get_json()
            assert body["status"] == "degraded" and body["reasons"] == ["redis_memory"]
            assert body["redis"]["used_memory"] >= 0.85 * body["redis"]["maxmemory"]
        finally:
            r.config_set("maxmemory", 0)


def test_rdy003_url_printed_only_when_a_message_would_be_stored(tmp_path: Path) -> None:
    """`app.py --no-demo`: the URL line means ready; 50 events published at once after it
    are all stored; the embedded Valkey runs with its computed maxmemory; SIGTERM stops it
    and every child, the web server's too."""
    port, ws_port = free_port(), free_port()
    env = {**os.environ, "CC_DATA_DIR": str(tmp_path), "CC_DEMO_USERS": "0",
           "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, "app.py", "--no-demo", "--port", str(port),
                             "--ws-port", str(ws_port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        lines = []
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "the wall is on http://" in line or not line:
                break
        assert "the wall is on http://" in lines[-1], "".join(lines)
        url = (tmp_path / "redis" / "url").read_text().strip()
        client = redis.Redis.from_url(url, decode_responses=True)
        pipe = client.pipeline(transaction=False)
        for i in range(50):
            pipe.publish("cc:event", json.dumps(an_event(id=f"first-{i}", ts=TS + i)))
        pipe.execute()
        wait_for(lambda: client.hlen("cc:state:event") == 50, timeout=10)
        assert int(client.config_get("maxmemory")["maxmemory"]) > 1024**3
        client.close()
        # the pages come from gunicorn (a master and its workers), a child like the others
        children = psutil.Process(proc.pid).children(recursive=True)
        assert sum("gunicorn" in " ".join(c.cmdline()) for c in children) >= 2
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        assert time.monotonic() - started < 10 and proc.returncode == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == [], [" ".join(c.cmdline()) for c in alive]  # none outlives the app
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def test_rdy004_relays_side_by_side_each_beat_their_own_field(redis_url: str,
                                                              r: redis.Redis) -> None:
    """Two relays on one Redis (issue 15): neither overwrites the other's heartbeat; health
    counts both and sums their walls; a relay long gone is forgotten by the next beat."""
    with running_stack(redis_url) as one, running_stack(redis_url) as two:
        http = _app(redis_url).server.test_client()
        with one.connect(), two.connect(), two.connect():
            body = wait_for(lambda: (b := http.get("/api/health").get_json())["relay"]
                            == {"alive": True, "relays": 2, "clients": 3} and b, timeout=10)
        assert body["status"] == "degraded" and body["reasons"] == ["watch_down"]
        assert r.hlen("cc:relay:hb") == 2
        now = int(time.time() * 1000)
        # a relay SIGKILLed 20 s ago: still in the hash, no longer counted
        r.hset("cc:relay:hb", "dead:1:aa", json.dumps({"ts": now - 20_000, "clients": 50}))
        # …and one gone for two minutes: the next relay to beat deletes it
        r.hset("cc:relay:hb", "dead:2:bb", json.dumps({"ts": now - 120_000, "clients": 9}))
        r.hset("cc:relay:hb", "ts", str(now))  # an older release's field: not a relay
        body = wait_for(lambda: (b := http.get("/api/health").get_json())["relay"]["clients"]
                        == 0 and b, timeout=5)
        assert body["relay"] == {"alive": True, "relays": 2, "clients": 0}
        wait_for(lambda: not r.hexists("cc:relay:hb", "dead:2:bb"), timeout=5)
        assert r.hexists("cc:relay:hb", "dead:1:aa")
