"""Restart drills: SIGKILL each process under a steady load; nothing accepted is lost and a
connected wall misses nothing (it resumes with `?since=`).

One stack of real processes for the module (tests/faults_util.py); each drill kills one
process, restarts it as a supervisor would, and checks every event some ingest received was
stored, seen by the wall, and that the wall's seq never went back. Recovery times are printed
and bounded generously (a loaded two-core machine); bench/failover.py measures them properly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from ..faults_util import Cluster, Load, Wall, wait

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(Path(tmp_path_factory.mktemp("faults"))).start()
    yield running
    running.stop()


def _drill(cluster: Cluster, fault: Any, *, severity: int = 4,
           settle_s: float = 3.0) -> tuple[list[str], Wall, float]:
    """Load and a wall; `fault()` midway; returns what was sent, the wall, the fault time."""
    wall = Wall(cluster.url, cluster.ws_port)
    wall.start()
    wait(lambda: wall.snapshots >= 1, 10, "the wall got no snapshot")
    load = Load(cluster.url, rate=200, severity=severity)
    load.start()
    time.sleep(1.5)
    moment = time.monotonic()
    fault()
    time.sleep(settle_s)
    sent = load.stop()
    client = cluster.client()

    def stored() -> bool:
        values = client.hmget("cc:state:event", sent) if sent else []
        return all(v is not None for v in values)

    try:
        wait(stored, 15, "events some ingest received were not stored")
        wait(lambda: set(sent) <= wall.events, 10, "the wall missed events")
    finally:
        wall.stop()
    assert len(sent) >= 100  # the load ran throughout (40 events a second)
    assert not wall.backwards, f"the wall's seq went back: {wall.backwards[:3]}"
    assert client.llen("cc:deadletter") == 0
    client.close()
    return sent, wall, moment


def test_flt001_kill_the_active_ingest(cluster: Cluster, record_property: Any) -> None:
    victim = cluster.active_ingest()
    assert victim is not None
    took: list[float] = []

    def fault() -> None:
        started = time.monotonic()
        cluster.kill(victim)
        wait(lambda: cluster.active_ingest() not in (victim, None), 5, "no standby took over")
        took.append(time.monotonic() - started)
        time.sleep(0.5)  # a supervisor restarts it; it comes back as the standby
        cluster.spawn(victim)

    sent, _, _ = _drill(cluster, fault)
    record_property("takeover_s", round(took[0], 2))
    print(f"flt001: takeover {took[0]:.2f} s, {len(sent)} events sent, 0 lost")
    assert took[0] < 2.5
    client = cluster.client()
    hb = wait(lambda: client.hgetall("cc:ingest:hb").get("last_takeover"), 5)
    assert json.loads(hb)["replayed"] > 0  # it applied what the dead one had not
    wait(lambda: client.hget("cc:ingest:standby", "instance"), 10, "no standby again")
    client.close()


def test_flt002_kill_the_standby_ingest(cluster: Cluster) -> None:
    active = cluster.active_ingest()
    standby = "ingest-b" if active == "ingest-a" else "ingest-a"

    def fault() -> None:
        cluster.kill(standby)
        time.sleep(0.5)
        cluster.spawn(standby)

    _drill(cluster, fault)
    assert cluster.active_ingest() == active  # the active one never noticed


def test_flt003_kill_the_relay_with_a_wall_connected(cluster: Cluster,
                                                     record_property: Any) -> None:
    def fault() -> None:
        cluster.kill("relay")
        time.sleep(0.5)
        cluster.spawn("relay")

    _, wall, moment = _drill(cluster, fault)
    resumed = wall.frame_after(moment + 0.5)
    record_property("relay_resume_s", resumed)
    print(f"flt003: the wall resumed {resumed:.2f} s after the relay restarted")
    assert wall.reconnects >= 1 and wall.snapshots == 1  # resumed with ?since=, no snapshot
    assert resumed is not None and resumed < 5


def test_flt004_kill_the_watch_service(cluster: Cluster) -> None:
    """Level I events arrive while the watch is down: once back, it raises an alert for
    every one of them (resumed from its cursor, nothing skipped)."""
    def fault() -> None:
        cluster.kill("watch")
        time.sleep(1.0)
        cluster.spawn("watch")

    sent, _, _ = _drill(cluster, fault, severity=1)
    client = cluster.client()

    def alerted() -> bool:
        subjects = {json.loads(v)["subject_id"] for v in client.hvals("cc:state:alert")}
        return set(sent) <= subjects

    wait(alerted, 20, "the watch skipped events")
    wait(lambda: int(client.hget("cc:watch:hb", "cursor") or 0) >= int(client.get("cc:seq")),
         10, "the watch did not catch up")
    client.close()


def test_flt005_kill_valkey_and_restart_it(cluster: Cluster, record_property: Any) -> None:
    client = cluster.client()
    before = client.hlen("cc:state:event")
    client.close()
    back: list[float] = []

    def fault() -> None:
        cluster.restart_redis()
        restarted = time.monotonic()
        probe = cluster.client()

        def live() -> bool:
            """A new event is stored: ingest resubscribed and applies again."""
            try:
                if probe.hget("cc:state:event", "probe"):
                    return True
                probe.publish("cc:event", json.dumps({
                    "id": "probe", "type": "dispute", "severity": 4, "lon": 119.96,
                    "lat": 36.78, "ts": int(time.time() * 1000)}))
            except redis.RedisError:
                pass
            return False

        wait(live, 15, "the stack did not come back after Valkey restarted")
        back.append(time.monotonic() - restarted)
        probe.close()

    sent, _, _ = _drill(cluster, fault, settle_s=2.0)
    record_property("valkey_recovery_s", round(back[0], 2))
    print(f"flt005: live again {back[0]:.2f} s after Valkey restarted; {len(sent)} sent")
    client = cluster.client()
    assert client.hlen("cc:state:event") >= before + len(sent)  # nothing stored was lost
    client.close()
    assert back[0] < 5
