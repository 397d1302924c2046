"""Nearest free units (dashboard/command/nearby.py) on a real Valkey: status, engagement, kind,
widening, distance, ETA and the 1-3-5 verdict."""

from __future__ import annotations

import math
import random

import pytest
import redis

from dashboard.command import proposal
from dashboard.command.nearby import eta_s, nearest, nearest_many, rule135_limit_s
from dashboard.command.plans import PlanLibrary
from dashboard.config import Settings
from dashboard.models import EVENT_TYPES, RESOURCE_KINDS
from dashboard.store import Store

from ..units_util import LAT0, LON0, east, resource, worker

SETTINGS = Settings()


def test_near001_only_free_unengaged_workers_nearest_first(r: redis.Redis) -> None:
    store = Store(r)
    worker(store, "W1", 300)
    worker(store, "W2", 100, status="busy")
    worker(store, "W3", 200)
    worker(store, "W4", 50, status="off_duty")
    worker(store, "W5", 80, status="sos")
    worker(store, "W6", 120)
    r.set("cc:task:unit:worker:W6", "T20261122-0001")  # engaged although on duty
    found = nearest(store, SETTINGS, LON0, LAT0, kind="worker")
    assert [u["id"] for u in found] == ["W3", "W1"]
    first = found[0]
    assert first["kind"] == "worker" and first["resource_kind"] is None
    assert first["name"] == "网格员W3" and first["status"] == "on_duty"
    assert abs(first["distance_m"] - 200) <= 1
    # 200 m × 1.4 detour at 6 km/h = 168 s (positions are kept to 6 decimals: ±0.1 m)
    assert first["eta_s"] in (168, 169)
    assert first["rule135"] == {"limit_s": 180, "ok": True}
    assert found[1]["rule135"]["ok"] is False  # 300 m on foot takes 252 s


def test_near002_resources_of_one_kind_with_their_speed_and_limit(r: redis.Redis) -> None:
    store = Store(r)
    resource(store, "R1", "fire_engine", 100)
    resource(store, "R2", "volunteer", 400)
    resource(store, "R3", "volunteer", 50)
    resource(store, "R4", "volunteer", 30, status="dispatched")
    resource(store, "R5", "police_car", 2000)
    vols = nearest(store, SETTINGS, LON0, LAT0, kind="resource", resource_kind="volunteer")
    assert [u["id"] for u in vols] == ["R3", "R2"]
    assert all(u["resource_kind"] == "volunteer" for u in vols)
    assert vols[0]["rule135"] == {"limit_s": 60, "ok": True}  # 50 m: 42 s
    assert vols[1]["rule135"] == {"limit_s": 60, "ok": False}  # 400 m: 336 s
    police = nearest(store, SETTINGS, LON0, LAT0, kind="resource", resource_kind="police_car")
    assert [u["id"] for u in police] == ["R5"]
    assert abs(police[0]["eta_s"] - math.ceil(2000 * 1.4 / (40 / 3.6))) <= 1
    assert police[0]["rule135"] == {"limit_s": 300, "ok": True}
    anything = nearest(store, SETTINGS, LON0, LAT0, kind="resource", count=2)
    assert [u["id"] for u in anything] == ["R3", "R1"]
    fire = nearest(store, SETTINGS, LON0, LAT0, kind="resource", resource_kind="fire_engine")
    assert fire[0]["rule135"] == {"limit_s": None, "ok": True}


def test_near003_widens_without_a_radius_and_stays_inside_one(r: redis.Redis) -> None:
    store = Store(r)
    worker(store, "FAR", 20_000)
    worker(store, "NEAR", 1_000)
    assert [u["id"] for u in nearest(store, SETTINGS, LON0, LAT0, kind="worker")] == [
        "NEAR", "FAR"]
    assert [u["id"] for u in nearest(store, SETTINGS, LON0, LAT0, kind="worker",
                                     radius_m=5_000)] == ["NEAR"]
    assert [u["id"] for u in nearest(store, SETTINGS, LON0, LAT0, kind="worker",
                                     radius_m=500)] == []


def test_near004_many_busy_units_in_front_are_skipped(r: redis.Redis) -> None:
    store = Store(r)
    for i in range(120):
        worker(store, f"B{i:03d}", 10 + i, status="busy")
    for i in range(5):
        worker(store, f"F{i}", 500 + i * 10)
    for i in range(60):
        resource(store, f"A{i:02d}", "ambulance", 10 + i)
    resource(store, "D1", "drone", 3000)
    found = nearest(store, SETTINGS, LON0, LAT0, kind="worker", count=3)
    assert [u["id"] for u in found] == ["F0", "F1", "F2"]
    drones = nearest(store, SETTINGS, LON0, LAT0, kind="resource", resource_kind="drone")
    assert [u["id"] for u in drones] == ["D1"]


def test_near005_rule135_mapping_and_eta() -> None:
    assert rule135_limit_s("worker", None) == 180
    assert rule135_limit_s("resource", "volunteer") == 60
    assert rule135_limit_s("resource", "patrol_car") == 180
    assert rule135_limit_s("resource", "law_enforcement") == 180
    assert rule135_limit_s("resource", "police_car") == 300
    assert rule135_limit_s("resource", "fire_engine") is None
    assert eta_s(1000, 36, 1.0) == 100
    assert eta_s(1000, 36, 1.4) == 140
    assert eta_s(0, 6, 1.4) == 0
    with pytest.raises(ValueError):
        eta_s(10, 0, 1.4)
    with pytest.raises(ValueError):
        nearest(Store(redis.Redis()), SETTINGS, LON0, LAT0, kind="camera")


def test_near006_several_queries_in_one_answer_as_one_by_one(r: redis.Redis) -> None:
    store = Store(r)
    for i, metres in enumerate((150, 300, 600)):
        worker(store, f"W{i}", metres)
    resource(store, "V1", "volunteer", 200)
    resource(store, "F1", "fire_engine", 900)
    queries = [("worker", None, 2), ("resource", "fire_engine", 1), ("resource", None, 3),
               ("worker", None, 0)]
    one_by_one = [nearest(store, SETTINGS, LON0, LAT0, kind=k, resource_kind=rk, count=n)
                  for k, rk, n in queries]
    assert nearest_many(store, SETTINGS, LON0, LAT0, queries) == one_by_one
    assert [[u["id"] for u in found] for found in one_by_one] == [
        ["W0", "W1"], ["F1"], ["V1", "F1"], []]
    with pytest.raises(ValueError):
        nearest_many(store, SETTINGS, LON0, LAT0, [("camera", None, 1)])


def test_near007_a_proposal_in_one_round_trip_proposes_what_one_by_one_did(
        r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call of the plan and both candidate lists in one script: for 150 random events
    over a crowd of units, some busy, some engaged, the same proposal as a query per call."""
    store, rng = Store(r), random.Random(6)
    for i in range(300):
        worker(store, f"W{i}", rng.uniform(0, 8000), grid_id=f"G{rng.randrange(6)}",
               status=rng.choice(("on_duty", "on_duty", "on_duty", "busy")))
    for i in range(200):
        resource(store, f"R{i}", rng.choice(RESOURCE_KINDS), rng.uniform(0, 30000),
                 status=rng.choice(("available", "available", "dispatched")))
        if rng.random() < 0.1:
            r.set(f"cc:task:unit:resource:R{i}", "T-other")
    plans = PlanLibrary.load()
    calls = sequential = filled = 0
    for n in range(150):
        lon, lat = east(rng.uniform(-2000, 10000))
        event = {"id": f"E{n}", "type": rng.choice(list(EVENT_TYPES)), "lon": lon, "lat": lat,
                 "severity": rng.randint(1, 4), "grid_id": f"G{rng.randrange(6)}"}
        for candidates in (True, False):
            batched = proposal.propose(store, plans, SETTINGS, event, candidates=candidates)
            with monkeypatch.context() as patch:
                patch.setattr(proposal, "_batch", lambda wanted: None)
                alone = proposal.propose(store, plans, SETTINGS, event, candidates=candidates)
            assert batched == alone, event
            calls += len(batched["calls"])
            filled += sum(len(c["units"]) for c in batched["calls"] if c["kind"] != "worker")
            sequential += proposal._batch([(c["kind"], c["count"], c["max_eta_s"])
                                           for c in batched["calls"]]) is None
    assert calls > 400 and sequential < 20  # plans of several calls, nearly all at once
    assert filled > 100  # resources proposed, not only empty calls
