"""The command loop over HTTP (callbacks/command/loop.py) on the real stack: roles, audit, JSON
errors, report through ingest, dispatch, verify, evaluate and the event detail."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from dashboard.city import load_city
from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines
from dashboard.store import Store

from ..auth_util import make_user, sign_in
from ..conftest import Stack
from ..units_util import TS, east

MUTATIONS = [  # (path, body, roles allowed)
    ("/api/events", {"id": "E9", "type": "dispute", "severity": 3, "lon": 119.95,
                     "lat": 36.78, "ts": TS}, {"commander", "duty_officer"}),
    ("/api/events/E1/dispatch", {"key": "k-denied", "assignees": None}, {"commander"}),
    ("/api/events/E1/verify", {"passed": True}, {"commander", "duty_officer"}),
    ("/api/events/E1/evaluate", {"score": 5}, {"commander", "duty_officer"}),
]


def client_as(stack: Stack, r: redis.Redis, role: str | None) -> Any:
    client = stack.app.server.test_client()
    if role is not None:
        sign_in(client, r, role)
    return client


def scene(stack: Stack) -> None:
    """E1, a level III dispute at the origin; one worker 200 m away."""
    lon, lat = east(0)
    stack.publish("event", {"id": "E1", "type": "dispute", "severity": 3, "lon": lon,
                            "lat": lat, "ts": TS, "title": "邻里纠纷"})
    lon, lat = east(200)
    stack.publish("worker", {"id": "W1", "lon": lon, "lat": lat, "ts": TS, "name": "李强",
                             "status": "on_duty"})
    stack.wait_seq(2)


def redis_state(r: redis.Redis) -> dict[str, Any]:
    """What a refused mutation must not touch."""
    return {"events": r.hgetall("cc:state:event"), "meta": r.hgetall("cc:meta:event"),
            "workers": r.hgetall("cc:meta:worker"), "tasks": r.hgetall("cc:state:task"),
            "keys": sorted(r.keys("cc:task*") + r.keys("cc:idem:*")), "seq": r.get("cc:seq")}


def mutation_entries(r: redis.Redis) -> list[dict[str, Any]]:
    entries = [fields for _, fields in r.xrange("cc:audit")]
    return [e for e in entries if e.get("action", "").startswith("event.")]


def test_cmd001_no_session_401_wrong_role_403_nothing_changed(stack: Stack,
                                                              r: redis.Redis) -> None:
    scene(stack)
    before = redis_state(r)
    anonymous = client_as(stack, r, None)
    for path, body, _roles in MUTATIONS:
        res = anonymous.post(path, json=body)
        assert res.status_code == 401 and res.is_json, path
    for role in ("commander", "duty_officer", "leader", "display"):
        client = client_as(stack, r, role)
        for path, body, roles in MUTATIONS:
            if role in roles:
                continue
            res = client.post(path, json=body)
            assert res.status_code == 403 and res.is_json, (role, path)
        res = client.get("/api/events/E1/proposal")
        assert res.status_code == (200 if role == "commander" else 403), role
    stack.wait_seq(2)
    assert redis_state(r) == before
    # each refused role check is an audit entry with its outcome
    denied = [e for e in mutation_entries(r) if e["outcome"] == "denied"]
    assert {(e["role"], e["action"]) for e in denied} == {
        ("duty_officer", "event.dispatch"), ("leader", "event.report"),
        ("leader", "event.dispatch"), ("leader", "event.verify"), ("leader", "event.evaluate")}


def test_cmd002_report_dispatch_verify_evaluate_over_http(stack: Stack, r: redis.Redis) -> None:
    scene(stack)
    commander = client_as(stack, r, "commander")
    officer = client_as(stack, r, "duty_officer")
    res = officer.post("/api/events", json={"type": "garbage", "severity": 4, "lon": 119.951,
                                            "lat": 36.781, "title": "垃圾堆放<b>"})
    assert res.status_code == 201, res.get_json()
    reported = res.get_json()["event"]
    assert reported["category"] == "grid_governance" and reported["reporter"] == "t-duty_officer"
    stack.wait_seq(3)
    stored = json.loads(r.hget("cc:state:event", reported["id"]))
    assert stored["title"] == "垃圾堆放<b>" and stored["status"] == "reported"

    proposal = commander.get("/api/events/E1/proposal").get_json()
    assert proposal["plan"]["plan"]["id"] == "P-DISPUTE-01"
    assert [u["id"] for u in proposal["calls"][0]["units"]] == ["W1"]
    body = {"key": "click-1", "plan_id": "P-DISPUTE-01",
            "assignees": [{"id": "W1", "kind": "worker"}], "note": "请尽快到场"}
    res = commander.post("/api/events/E1/dispatch", json=body)
    assert res.status_code == 201, res.get_json()
    task = res.get_json()["task"]
    assert task["by"] == "t-commander" and task["assignees"][0]["id"] == "W1"
    again = commander.post("/api/events/E1/dispatch", json=body)
    assert again.status_code == 200
    assert again.get_json() == {"task": task, "duplicate": True}
    other = commander.post("/api/events/E1/dispatch", json={**body, "key": "click-2"})
    assert other.status_code == 409
    assert other.get_json()["task_id"] == task["id"] and other.get_json()["error"]
    assert officer.get(f"/api/tasks/{task['id']}").get_json() == {"task": task}
    assert officer.get("/api/tasks/T-nope").status_code == 404

    res = officer.post("/api/events/E1/verify", json={"passed": True})
    assert res.status_code == 409 and res.get_json()["code"] == "bad_stage"
    desk = Desk(Store(r), PlanLibrary.load(), Deadlines.load(), stack.settings)
    for n, stage in enumerate(("accepted", "arrived", "handled")):
        desk.on_feedback({"task_id": task["id"], "event_id": "E1", "actor_id": "W1",
                          "stage": stage, "ts": TS + n})
    res = officer.post("/api/events/E1/verify", json={"passed": True, "note": "已调解"})
    assert res.status_code == 200 and res.get_json()["task"]["verify"]["by"] == "t-duty_officer"
    res = officer.post("/api/events/E1/evaluate", json={"score": 5, "note": "满意"})
    assert res.status_code == 200
    assert res.get_json()["task"]["stage"] == "closed"
    detail = officer.get("/api/events/E1").get_json()
    assert detail["event"]["status"] == "closed" and detail["task"]["stage"] == "closed"

    entries = mutation_entries(r)
    assert [(e["action"], e["outcome"], e["user"]) for e in entries] == [
        ("event.report", "success", "t-duty_officer"),
        ("event.dispatch", "success", "t-commander"),
        ("event.dispatch", "duplicate", "t-commander"),
        ("event.dispatch", "failure", "t-commander"),
        ("event.verify", "failure", "t-duty_officer"),
        ("event.verify", "success", "t-duty_officer"),
        ("event.evaluate", "success", "t-duty_officer"),
    ]
    assert entries[0]["target"] == reported["id"] and entries[1]["target"] == "E1"
    assert json.loads(entries[1]["detail"])["task_id"] == task["id"]
    assert json.loads(entries[3]["detail"])["code"] == "has_task"


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/api/events", "{not json", 400, "bad_json"),
    ("/api/events", [1, 2], 400, "bad_json"),
    ("/api/events", {"type": "fire", "severity": 9, "lon": 119.9, "lat": 36.8}, 400,
     "bad_value"),
    ("/api/events", {"type": "fire", "severity": 2, "lon": 519.9, "lat": 36.8}, 400,
     "bad_coordinates"),
    ("/api/events/E1/dispatch", "{", 400, "bad_json"),
    ("/api/events/E1/dispatch", {"assignees": None}, 400, "bad_key"),
    ("/api/events/E1/dispatch", {"key": "k", "assignees": "W1"}, 400, "no_units"),
    ("/api/events/E1/dispatch", {"key": "k", "assignees": [{"id": "W2", "kind": "worker"}]},
     400, "override_reason_required"),
    ("/api/events/NOPE/dispatch", {"key": "k"}, 404, "no_event"),
    ("/api/events/E1/verify", {"passed": "yes"}, 400, "bad_body"),
    ("/api/events/E1/evaluate", {"score": 7}, 400, "bad_score"),
    ("/api/events/NOPE/evaluate", {"score": 3}, 404, "no_event"),
])
def test_cmd003_bad_requests_are_json_errors_and_audited(stack: Stack, r: redis.Redis,
                                                         path: str, body: Any, status: int,
                                                         code: str) -> None:
    scene(stack)
    commander = client_as(stack, r, "commander")
    lon, lat = east(600)
    stack.publish("worker", {"id": "W2", "lon": lon, "lat": lat, "ts": TS, "status": "on_duty"})
    stack.wait_seq(3)
    if isinstance(body, str):
        res = commander.post(path, data=body, content_type="application/json")
    else:
        res = commander.post(path, json=body)
    assert res.status_code == status and res.is_json
    answer = res.get_json()
    assert answer["code"] == code and answer["error"]
    assert "Traceback" not in res.get_data(as_text=True)
    entries = mutation_entries(r)
    assert len(entries) == 1 and entries[0]["outcome"] == "failure"
    assert json.loads(entries[0]["detail"])["code"] == code
    assert r.hlen("cc:state:task") == 0


def test_cmd004_event_detail_has_plans_free_units_and_task(stack: Stack, r: redis.Redis) -> None:
    scene(stack)
    lon, lat = east(300)
    stack.publish("worker", {"id": "W2", "lon": lon, "lat": lat, "ts": TS, "status": "off_duty"})
    stack.wait_seq(3)
    leader = client_as(stack, r, "leader")
    body = leader.get("/api/events/E1").get_json()
    assert body["plans"][0]["plan"]["id"] == "P-DISPUTE-01"
    assert [w["id"] for w in body["nearby"]["workers"]] == ["W1"]  # W2 is off duty
    assert body["nearby"]["workers"][0]["rule135"]["limit_s"] == 180
    assert body["task"] is None
    commander = client_as(stack, r, "commander")
    res = commander.post("/api/events/E1/dispatch", json={"key": "k"})
    assert res.status_code == 201
    body = leader.get("/api/events/E1").get_json()
    assert body["task"]["id"] == res.get_json()["task"]["id"]
    assert body["nearby"]["workers"] == []  # W1 is engaged now


def test_cmd005_a_scoped_commander_acts_only_inside_the_scope(stack: Stack,
                                                             r: redis.Redis) -> None:
    city = load_city()
    mine, other = city.towns[0], city.towns[1]
    for event_id, town in (("E-IN", mine), ("E-OUT", other)):
        lon, lat = town.centroid
        stack.publish("event", {"id": event_id, "type": "dispute", "severity": 3, "lon": lon,
                                "lat": lat, "ts": TS})
        stack.publish("worker", {"id": f"W-{event_id}", "lon": lon + 0.001, "lat": lat,
                                 "ts": TS, "status": "on_duty"})
    stack.wait_seq(4)
    user, password = make_user(r, "commander", "town-commander", scope=mine.code)
    client = stack.app.server.test_client()
    assert client.post("/api/login", json={"username": user,
                                           "password": password}).status_code == 200
    # outside the scope answers as unknown (ids do not leak); audited as denied
    assert client.get("/api/events/E-OUT/proposal").status_code == 404
    res = client.post("/api/events/E-OUT/dispatch", json={"key": "k1"})
    assert res.status_code == 404 and res.get_json()["code"] == "no_event"
    assert client.post("/api/events/E-IN/dispatch", json={"key": "k2"}).status_code == 201
    assert r.hlen("cc:state:task") == 1 and not r.exists("cc:task:event:E-OUT")
    assert [(e["action"], e["outcome"]) for e in mutation_entries(r)] == [
        ("event.dispatch", "denied"), ("event.dispatch", "success")]
