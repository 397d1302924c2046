"""The cockpit's fixed history (tests/fixtures/cockpit_history.json), played into a real
Valkey through the real paths: the apply script for reports, the desk for the lifecycle,
the alert script for cards, the watch service for patrols. And the same history computed
by hand, in plain Python from the fixture alone, for the tests to compare with."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from dashboard.city import load_city
from dashboard.command.alerts import Alerts
from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.models import category_of
from dashboard.store import Store
from feeds.watch import Watch

from .units_util import put

FIXTURE = Path(__file__).parent / "fixtures" / "cockpit_history.json"
TZ = "+08:00"


def ms(text: str) -> int:
    """Epoch ms of a fixture time (local +08:00 unless it says otherwise)."""
    if "+" not in text[10:]:
        text += TZ
    return int(datetime.fromisoformat(text).timestamp() * 1000)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Hand:
    """One event as the fixture says, in seconds (0 = never)."""

    id: str
    category: str
    source: str
    severity: int
    town: str
    community: str
    grid: str
    report: int
    dispatch: int = 0
    arrive: int = 0
    handle: int = 0
    close: int = 0
    status: str = "reported"
    cards: set[str] = field(default_factory=set)
    overdue: bool = False
    title: str = ""
    address: str = ""
    type: str = ""


def fixture() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def now_ms() -> int:
    return ms(fixture()["now"])


def by_hand() -> list[Hand]:
    """The fixture's events with their times, status, cards and overdue, by hand."""
    doc = fixture()
    city = load_city()
    deadlines = Deadlines.load()
    now_s = ms(doc["now"]) // 1000
    out = []
    for e in doc["events"]:
        grid = doc["grids"][e["grid"]]
        town, community = (u.code for u in city.parents(grid))
        h = Hand(e["id"], category_of(e["type"]), e["source"], e["severity"], town, community,
                 grid, ms(e["reported"]) // 1000, title=e.get("title", ""),
                 address=e.get("address", ""), type=e["type"])
        for step in e.get("steps", []):
            t = ms(step[1]) // 1000
            if step[0] == "dispatch":
                h.dispatch, h.status = t, "dispatched"
            elif step[0] == "arrived":
                h.arrive, h.status = t, "in_progress"
            elif step[0] == "handled":
                h.handle, h.status = t, "handled"
            elif step[0] == "verify":
                h.status = "verified"
            elif step[0] == "evaluate":
                h.close, h.status = t, "closed"
        if e.get("cancel"):
            h.close, h.status = ms(e["cancel"]) // 1000, "cancelled"
        h.cards = {c[0] for c in e.get("cards", [])}
        lim = deadlines.limits({"type": e["type"], "category": h.category,
                                "severity": e["severity"]})
        end = h.close or now_s
        late = (h.dispatch or end) - h.report > lim.dispatch_s
        if h.dispatch:
            late |= (h.arrive or end) - h.dispatch > lim.arrive_s
            late |= (h.handle or end) - h.dispatch > lim.handle_s
        h.overdue = late
        out.append(h)
    return out


def play_step(store: Store, desk: Desk, alerts: Alerts, city: Any, doc: dict[str, Any], t: int,
              what: str, e: dict[str, Any], arg: Any) -> None:
    """One step of a fixture event's life at time `t` (the cockpit's and the handover's
    fixtures share the form): report, cancel, card, dispatch, arrived/handled, verify,
    evaluate."""
    eid = e["id"]
    grid = doc["grids"][e["grid"]]
    town, community = (u.code for u in city.parents(grid))
    fields = {"type": e["type"], "severity": e["severity"], "source": e["source"],
              "category": category_of(e["type"]), "grid_id": grid,
              "community_id": community, "town_id": town, "title": e.get("title", ""),
              "address": e.get("address", ""), "first_ts": ms(e["reported"])}
    lon, lat = city.unit(grid).centroid
    if what == "report":
        put(store, "event", eid, lon, lat, ts=t, **fields)
    elif what == "cancel":
        put(store, "event", eid, lon, lat, ts=t, status="cancelled", **fields)
    elif what == "card":
        alerts.raise_once(arg[0], eid, eid, f"{arg[0]} {arg[1]}", e["severity"], cause=arg[1])
    elif what == "dispatch":
        desk.dispatch(eid, by="zhihui", key=f"k-{eid}",
                      assignees=[{"id": arg[2], "kind": "worker"}], plan_id=None,
                      override_reason="fixture")
    elif what in ("arrived", "handled"):
        task = desk.task_of_event(eid)
        assert task is not None, eid
        actor = task["assignees"][0]["id"]
        desk.on_feedback({"task_id": task["id"], "event_id": eid, "actor_id": actor,
                          "stage": what, "ts": t})
    elif what == "verify":
        desk.verify(eid, by="zhiban", passed=True)
    elif what == "evaluate":
        desk.evaluate(eid, by="zhiban", score=5)


def load_history(r: redis.Redis, settings: Settings | None = None) -> dict[str, Any]:
    """Play the fixture into Redis; returns the fixture. Workers' last positions go through
    the watch service (patrol coverage)."""
    settings = settings or Settings()
    doc = fixture()
    city = load_city()
    store = Store(r, settings.prefix)
    now = ms(doc["now"])
    clock = Clock(now)
    desk = Desk(store, PlanLibrary.load(), Deadlines.load(), settings, clock=clock)
    alerts = Alerts(store, clock)
    start = ms("2025-01-01T00:00:00")
    workers = {}
    for w in doc["workers"]:
        grid = doc["grids"][w["grid"]]
        lon, lat = city.unit(grid).centroid  # type: ignore[union-attr]
        workers[w["id"]] = (lon, lat, grid)
        put(store, "worker", w["id"], lon, lat, ts=start, grid_id=grid, loc_grid_id=grid,
            name=f"网格员{w['id']}", status="on_duty")
    actions: list[tuple[int, int, str, dict[str, Any], list[Any]]] = []
    for e in doc["events"]:
        actions.append((ms(e["reported"]), 0, "report", e, []))
        for n, step in enumerate(e.get("steps", [])):
            actions.append((ms(step[1]), 1 + n, step[0], e, step))
        for card in e.get("cards", []):
            actions.append((ms(card[2]), 0, "card", e, card))
        if e.get("cancel"):
            actions.append((ms(e["cancel"]), 9, "cancel", e, []))
    actions.sort(key=lambda a: (a[0], a[1], a[3]["id"]))
    for t, _, what, e, arg in actions:
        clock.now = t
        play_step(store, desk, alerts, city, doc, t, what, e, arg)
    # today's positions: the watch service sees them and keeps the patrolled grids
    clock.now = now
    for w in doc["workers"]:
        lon, lat, grid = workers[w["id"]]
        at = doc["grids"][w["at"]]
        stored = store.records("worker", [w["id"]])[w["id"]][0]
        status = "off_duty" if w["status"] == "off_duty" else stored["status"]
        put(store, "worker", w["id"], lon, lat, ts=now - 60_000, grid_id=grid,
            loc_grid_id=at, name=stored.get("name"), status=status)
    watch = Watch(settings, "", clock=clock)
    watch.attach(r)
    while watch.process():
        pass
    return doc
