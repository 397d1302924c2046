"""A fixed history for the replay tests: ten minutes of a small city written through the
real store (the apply script ingest uses, the alerts' and the log's own scripts) and recorded
by the real watch service on a clock the test moves, with what the wall must show at three
moments of it (docs/REPLAY.md)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from dashboard.command.alerts import Alerts
from dashboard.config import Settings
from dashboard.store import Store
from feeds.watch import Watch

from . import units_util as units

MIN = 60_000
TOWN_A, TOWN_B = "370283001", "370283002"
GRID_A, GRID_B = TOWN_A + "001001", TOWN_B + "001001"


class Clock:
    """The watch's clock, moved by the history."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@dataclass
class Moment:
    """What the wall shows at `at` (offset ms from the start), for a city-wide user."""

    offset: int
    events: dict[str, str]  # id → status
    open_events: int
    worker_status: dict[str, str]
    worker_east_m: dict[str, float]  # W1's position, metres east of units.LON0
    alerts: list[str]  # unacknowledged alerts' subjects, sorted
    today: int
    in_progress: int


@dataclass
class Story:
    t0: int
    end: int
    alert_id: str = ""
    moments: list[Moment] = field(default_factory=list)

    def at(self, moment: Moment) -> int:
        return self.t0 + moment.offset


def task(event_id: str, steps: list[tuple[int, str, str]], grid: str) -> dict[str, Any]:
    return {"id": f"T-{event_id}", "event_id": event_id, "grid_id": grid, "stage": steps[-1][1],
            "assignees": [{"id": "W1", "kind": "worker", "stage": steps[-1][1]}],
            "history": [{"ts": ts, "stage": stage, "by": by, "note": ""}
                        for ts, stage, by in steps]}


def recording_watch(settings: Settings, url: str, clock: Clock, r: Any) -> Watch:
    """A watch service on `clock` (no ticking thread: the test ticks it), attached to the
    log as a started one is."""
    watch = Watch(dataclasses.replace(settings, watch_tick_s=0), url, clock=clock)
    watch.attach(r)
    return watch


def play(store: Store, settings: Settings, url: str, t0: int) -> tuple[Story, Watch]:
    """Write the history and let a watch on its own clock record it; t0 on a minute."""
    clock = Clock(t0)
    watch = recording_watch(settings, url, clock, store.r)
    # no SLA cards: the history's alerts are the ones it tells (a level I event, an SOS)
    watch.handlers.remove(watch.cards)
    alerts = Alerts(store, clock)
    story = Story(t0, t0 + 13 * MIN)

    def at(offset_s: float) -> int:
        clock.ms = t0 + int(offset_s * 1000)
        return clock.ms

    def step() -> None:
        watch.process(5000)
        watch.tick()

    def ev(eid: str, metres: float, ts: int, **fields: Any) -> None:
        units.event(store, eid, metres, ts=ts, first_ts=fields.pop("first_ts", t0), **fields)

    ts = at(0)
    units.worker(store, "W1", 0, ts=ts, grid_id=GRID_A)
    units.worker(store, "W2", 300, ts=ts, grid_id=GRID_B)
    units.resource(store, "R1", "fire_engine", 500, ts=ts, grid_id=GRID_A)
    units.put(store, "camera", "C1", *units.east(50), ts=ts, name="东门", grid_id=GRID_A,
              online=True, status="online")
    ev("E1", 0, ts, severity=3, grid_id=GRID_A, title="仓库起火")
    ev("E2", 400, ts, severity=3, grid_id=GRID_B, type="traffic_accident", title="车辆剐蹭")
    step()  # the first keyframe, at t0

    ts = at(60)
    units.worker(store, "W1", 100, ts=ts, grid_id=GRID_A)
    ev("E1", 0, ts, severity=3, grid_id=GRID_A, title="仓库起火", status="dispatched")
    store.emit("task", "upsert", task("E1", [(ts, "dispatched", "zhihui")], GRID_A))
    step()

    ts = at(200)
    units.worker(store, "W1", 200, ts=ts, grid_id=GRID_A)
    step()

    ts = at(300)  # a level I event and an SOS: the watch raises their alerts
    ev("E3", 800, ts, severity=1, grid_id=GRID_A, type="fire", title="厂房冒烟", first_ts=ts)
    units.worker(store, "W2", 300, ts=ts, grid_id=GRID_B, status="sos")
    step()
    raised = {a["subject_id"]: a for a in alerts.open()}
    assert set(raised) == {"E3", "W2"}, raised
    story.alert_id = raised["E3"]["id"]

    ts = at(420)
    alerts.ack(story.alert_id, by="zhiban", note="已处置")
    ev("E1", 0, ts, severity=3, grid_id=GRID_A, title="仓库起火", status="in_progress")
    store.emit("task", "upsert", task("E1", [(t0 + MIN, "dispatched", "zhihui"),
                                             (ts, "arrived", "W1")], GRID_A))
    step()

    ts = at(500)  # a camera goes dark: the next keyframe names the first's camera blocks
    units.put(store, "camera", "C1", *units.east(50), ts=ts, name="东门", grid_id=GRID_A,
              online=False, status="offline")
    step()

    at(610)
    step()  # the second keyframe

    ts = at(700)
    units.worker(store, "W1", 600, ts=ts, grid_id=GRID_A)
    ev("E1", 0, ts, severity=3, grid_id=GRID_A, title="仓库起火", status="closed")
    store.emit("task", "upsert", task("E1", [(t0 + MIN, "dispatched", "zhihui"),
                                             (t0 + 7 * MIN, "arrived", "W1"),
                                             (ts, "verified", "zhiban")], GRID_A))
    step()
    at(13 * 60)
    step()  # the clock leaves the last minute: it is written

    story.moments = [
        Moment(90_000, {"E1": "dispatched", "E2": "reported"}, 2, {"W1": "on_duty",
               "W2": "on_duty"}, {"W1": 100}, [], 2, 1),
        Moment(330_000, {"E1": "dispatched", "E2": "reported", "E3": "reported"}, 3,
               {"W1": "on_duty", "W2": "sos"}, {"W1": 200}, ["E3", "W2"], 3, 1),
        Moment(750_000, {"E1": "closed", "E2": "reported", "E3": "reported"}, 2,
               {"W1": "on_duty", "W2": "sos"}, {"W1": 600}, ["W2"], 3, 0),
    ]
    return story, watch


def ids(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["id"]): r for r in records}


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
