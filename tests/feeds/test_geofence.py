"""Geofence: a grid worker on duty who leaves the grid assigned to them raises one
`geofence_exit` alert per exit, through the real ingest and the watch on its own clock."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from dashboard.city import load_city
from feeds.watch import GEOFENCE_SEVERITY

from ..command.test_alerts import Clock
from ..conftest import Stack
from .test_ingest import TS
from .test_watch import alerts_of, watch_on

CITY = load_city()
HOME = CITY.grids[10]
AWAY = next(g for g in CITY.grids if g.code[:12] != HOME.code[:12])


class Walker:
    """Publishes one worker's positions: at home, away, or a little further away."""

    def __init__(self, stack: Stack, worker_id: str = "W1") -> None:
        self.stack = stack
        self.id = worker_id
        self.n = 0

    def at(self, grid: Any, status: str = "on_duty", step: int = 0) -> None:
        self.n += 1
        lon, lat = grid.centroid
        self.stack.publish("worker", {
            "id": self.id, "name": "李强", "grid_id": HOME.code, "status": status,
            "lon": round(lon + step * 1e-5, 6), "lat": lat, "ts": TS + self.n * 1000})

    def settle(self, r: redis.Redis) -> None:
        """Until ingest has stored the last position (alerts take log seqs too, so the
        log's seq says nothing about this worker)."""
        want = TS + self.n * 1000
        deadline = time.monotonic() + 5
        while True:
            raw = r.hget("cc:state:worker", self.id)
            if raw and json.loads(raw).get("ts") == want:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"ingest did not store {self.id} at {want}")
            time.sleep(0.01)


def test_fence001_one_alert_per_exit_not_per_position(stack: Stack, r: redis.Redis) -> None:
    watch = watch_on(stack, r, Clock(TS))
    w = Walker(stack)
    w.at(HOME)
    w.settle(r)
    watch.process()
    for step in range(4):  # out, and keeps moving out there: one exit
        w.at(AWAY, step=step)
        w.settle(r)
        watch.process()
        assert len(alerts_of(r, "geofence_exit")) == 1  # at the first and every later one
    fences = alerts_of(r, "geofence_exit")
    assert len(fences) == 1
    alert = fences[0]
    assert alert["subject_id"] == "W1" and alert["event_id"] is None
    assert alert["severity"] == GEOFENCE_SEVERITY
    assert alert["message"] == f"网格员李强离开责任网格{HOME.name}（现位于{AWAY.name}）"
    assert r.hget("cc:geofence:out", "W1") is not None
    # back in their grid ends the episode; out again is a second exit
    w.at(HOME)
    w.settle(r)
    watch.process()
    assert r.hget("cc:geofence:out", "W1") is None
    w.at(AWAY)
    w.at(AWAY, step=1)
    w.settle(r)
    watch.process()
    assert len(alerts_of(r, "geofence_exit")) == 2


def test_fence002_a_restarted_watch_does_not_raise_again(stack: Stack, r: redis.Redis) -> None:
    w = Walker(stack)
    w.at(HOME)
    w.at(AWAY)
    w.settle(r)
    watch_on(stack, r, Clock(TS)).process()
    assert len(alerts_of(r, "geofence_exit")) == 1
    for step in range(1, 4):
        w.at(AWAY, step=step)
    w.settle(r)
    restarted = watch_on(stack, r, Clock(TS + 60_000))  # a new process: no memory of its own
    restarted.process()
    assert len(alerts_of(r, "geofence_exit")) == 1


def test_fence003_sent_on_a_task_or_off_duty_raises_nothing(stack: Stack, r: redis.Redis) -> None:
    watch = watch_on(stack, r, Clock(TS))
    sent = Walker(stack, "W1")
    sent.at(HOME)
    sent.settle(r)
    watch.process()
    r.set("cc:task:unit:worker:W1", "T1")  # dispatched: their task takes them out
    sent.at(AWAY)
    sent.settle(r)
    watch.process()
    r.delete("cc:task:unit:worker:W1")  # the task is over: the walk back is still excused
    sent.at(AWAY, step=1)
    sent.settle(r)
    watch.process()
    assert alerts_of(r, "geofence_exit") == []
    assert r.hget("cc:geofence:out", "W1") == "excused:task"
    sent.at(HOME)  # home: the next exit of their own counts again
    sent.at(AWAY, step=2)
    sent.settle(r)
    watch.process()
    assert [a["subject_id"] for a in alerts_of(r, "geofence_exit")] == ["W1"]

    off = Walker(stack, "W2")
    off.n = sent.n
    off.at(HOME, status="off_duty")
    off.at(AWAY, status="off_duty")
    off.at(AWAY, status="off_duty", step=1)
    off.settle(r)
    watch.process()
    assert [a["subject_id"] for a in alerts_of(r, "geofence_exit")] == ["W1"]
    off.at(AWAY, status="on_duty", step=2)  # on duty, and not in their grid: that counts
    off.settle(r)
    watch.process()
    assert [a["subject_id"] for a in alerts_of(r, "geofence_exit")] == ["W1", "W2"]


def test_fence004_back_home_in_one_round_trip_a_block(stack: Stack, r: redis.Redis) -> None:
    """Workers back in their grid end their episodes together at the block's end (a
    restart's first positions were one HDEL each); one who comes back and leaves again
    within the block keeps the new episode and its alert."""
    watch = watch_on(stack, r, Clock(TS))
    a, b = Walker(stack, "W1"), Walker(stack, "W2")
    for w in (a, b):
        w.at(AWAY)
        w.settle(r)
    watch.process()
    assert set(r.hkeys("cc:geofence:out")) == {"W1", "W2"}
    a.at(HOME)
    b.at(HOME)
    b.at(AWAY, step=1)
    for w in (a, b):
        w.settle(r)
    watch.process()  # one block: W1 home, W2 home and out again
    assert r.hkeys("cc:geofence:out") == ["W2"]
    assert len([x for x in alerts_of(r, "geofence_exit") if x["subject_id"] == "W2"]) == 2
    assert len([x for x in alerts_of(r, "geofence_exit") if x["subject_id"] == "W1"]) == 1
