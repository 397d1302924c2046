"""The handover's fixed history (tests/fixtures/handover_history.json), played into a real
Valkey through the real paths (the apply script for reports, the desk for the lifecycle, the
alert script for alerts and acknowledgements), and what it says by hand, from the fixture
alone, for the tests to compare with."""

from __future__ import annotations

import json
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

from .cockpit_util import Clock, ms, play_step
from .units_util import put

FIXTURE = Path(__file__).parent / "fixtures" / "handover_history.json"
NOTABLE = {"critical_event", "sos", "sla_red", "geofence_exit"}


def fixture() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def window() -> tuple[int, int, int]:
    """(from, to, now) in epoch ms."""
    doc = fixture()
    return ms(doc["from"]), ms(doc["to"]), ms(doc["now"])


def expected() -> dict[str, list[str]]:
    """Each section's ids, by hand from the fixture: times, final status, and overdue from
    the limits in data/sla.json (the cockpit's definition)."""
    doc = fixture()
    lo, hi, now = window()
    deadlines = Deadlines.load()
    out: dict[str, list[str]] = {k: [] for k in ("opened", "closed", "open", "overdue",
                                                 "pending_verification")}
    opened: list[tuple[int, str]] = []
    closed: list[tuple[int, str]] = []
    for e in doc["events"]:
        times: dict[str, int] = {}
        status = "reported"
        for step in e.get("steps", []):
            t = ms(step[1])
            times.setdefault(step[0], t)
            status = {"dispatch": "dispatched", "arrived": "in_progress", "handled": "handled",
                      "verify": "verified", "evaluate": "closed"}[step[0]]
        if e.get("cancel"):
            times["evaluate"], status = ms(e["cancel"]), "cancelled"
        report, close = ms(e["reported"]), times.get("evaluate")
        if lo <= report < hi:
            opened.append((report, e["id"]))
        if close is not None and lo <= close < hi:
            closed.append((close, e["id"]))
        if status in ("closed", "cancelled"):
            continue
        out["open"].append(e["id"])
        if status == "handled":
            out["pending_verification"].append(e["id"])
        lim = deadlines.limits({"type": e["type"], "category": category_of(e["type"]),
                                "severity": e["severity"]})
        dispatch = times.get("dispatch")
        late = (dispatch or now) - report > lim.dispatch_s * 1000
        if dispatch:
            late |= times.get("arrived", now) - dispatch > lim.arrive_s * 1000
            late |= times.get("handled", now) - dispatch > lim.handle_s * 1000
        if late:
            out["overdue"].append(e["id"])
    # opened by report time, closed by close time, alarms and notes by time: as listed
    out["opened"] = [i for _, i in sorted(opened)]
    out["closed"] = [i for _, i in sorted(closed)]
    out["alarms"] = [a["key"] for a in sorted(doc["alerts"], key=lambda a: ms(a["ts"]))
                     if a["kind"] in NOTABLE and lo <= ms(a["ts"]) < hi]
    out["notes"] = [a["key"] for a in sorted(doc["alerts"], key=lambda a: ms(a["ack"][0])
                                             if a.get("ack") else 0)
                    if a.get("ack") and a["ack"][2] and lo <= ms(a["ack"][0]) < hi]
    return out


def load_history(r: redis.Redis, settings: Settings | None = None) -> dict[str, str]:
    """Play the fixture into Redis; returns alert key → stored alert id."""
    settings = settings or Settings()
    doc = fixture()
    city = load_city()
    store = Store(r, settings.prefix)
    clock = Clock(ms(doc["now"]))
    desk = Desk(store, PlanLibrary.load(), Deadlines.load(), settings, clock=clock)
    alerts = Alerts(store, clock)
    start = ms("2026-11-24T00:00:00")
    for w in doc["workers"]:
        grid = doc["grids"][w["grid"]]
        lon, lat = city.unit(grid).centroid  # type: ignore[union-attr]
        put(store, "worker", w["id"], lon, lat, ts=start, grid_id=grid, loc_grid_id=grid,
            name=f"网格员{w['id']}", status="on_duty")
    actions: list[tuple[int, int, str, Any, Any]] = []
    for e in doc["events"]:
        actions.append((ms(e["reported"]), 0, "report", e, None))
        for n, step in enumerate(e.get("steps", [])):
            actions.append((ms(step[1]), 1 + n, step[0], e, step))
        if e.get("cancel"):
            actions.append((ms(e["cancel"]), 9, "cancel", e, None))
    for a in doc["alerts"]:
        actions.append((ms(a["ts"]), 0, "alert", a, None))
        if a.get("ack"):
            actions.append((ms(a["ack"][0]), 1, "ack", a, a["ack"]))
    actions.sort(key=lambda x: (x[0], x[1], x[2]))
    ids: dict[str, str] = {}
    for t, _, what, e, arg in actions:
        clock.now = t
        if what == "alert":
            found = alerts.raise_once(e["kind"], e["subject"], e["event"], f"{e['kind']} "
                                      f"{e['subject']}", 2 if e["kind"] != "sla_red" else 4)
            assert found is not None
            ids[e["key"]] = found["id"]
            continue
        if what == "ack":
            alerts.ack(ids[e["key"]], by=arg[1], note=arg[2])
            continue
        play_step(store, desk, alerts, city, doc, t, what, e, arg)
    return ids
