"""Nothing leaked (issue 13): two towns, one user each; every route of the app and the
websocket show a town's user nothing of the other town."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from dashboard.city import load_city
from dashboard.command.alerts import Alerts
from dashboard.store import Store
from feeds.fanout import EVERYWHERE, Client, Fanout, scoped_parts
from feeds.relay import origin_allowed

from ..auth_util import cookie_header, make_user, session_key, session_token
from ..conftest import Stack, running_stack

CITY = load_city("pingdu")
TOWN_A, TOWN_B = CITY.towns[0].code, CITY.towns[1].code
# Everything of town B a town-A user must never see: ids, names, a phone, a stream URL.
MARKERS_B = ("EVB1", "EVB2", "WKB1", "RSB1", "CMB1", "MARK-B", "13900000002", "cam-b.example")


def _grid_in(town: str) -> str:
    return next(g.code for g in CITY.grids if g.code.startswith(town))


def _spot(town: str, seed: int) -> tuple[float, float]:
    return CITY.random_point_in(_grid_in(town), random.Random(seed))


def _seed(stack: Stack) -> dict[str, str]:
    """An event, a worker, a resource and a camera in each town; returns B's ids."""
    now = int(time.time() * 1000)
    for town, tag, phone in ((TOWN_A, "A", "13900000001"), (TOWN_B, "B", "13900000002")):
        lon, lat = _spot(town, 7)
        stack.publish("event", {"id": f"EV{tag}1", "type": "fire", "severity": 1, "lon": lon,
                                "lat": lat, "ts": now, "title": f"MARK-{tag} fire"})
        stack.publish("worker", {"id": f"WK{tag}1", "lon": lon + 0.001, "lat": lat, "ts": now,
                                 "name": f"MARK-{tag} worker", "phone": phone,
                                 "status": "on_duty", "grid_id": _grid_in(town)})
        stack.publish("resource", {"id": f"RS{tag}1", "kind": "fire_engine", "lon": lon,
                                   "lat": lat + 0.001, "ts": now, "name": f"MARK-{tag} truck",
                                   "status": "available"})
        stack.publish("camera", {"id": f"CM{tag}1", "lon": lon, "lat": lat + 0.0005,
                                 "name": f"MARK-{tag} cam", "online": True,
                                 "stream_url": f"http://cam-{tag.lower()}.example/1.m3u8"})
    stack.wait_seq(8, timeout=30)  # a cold ingest first loads the city to locate them
    return {"event": "EVB1", "worker": "WKB1", "resource": "RSB1", "camera": "CMB1"}


def _leaks(text: str) -> list[str]:
    return [m for m in MARKERS_B if m in text]


@pytest.fixture
def towns(redis_url: str) -> Iterator[Stack]:
    with running_stack(redis_url, watch=False) as live:
        yield live


def _signed_in(stack: Stack, name: str, role: str, scope: str | None) -> Any:
    http = stack.app.server.test_client()
    user, password = make_user(stack.client, role, name, scope=scope)
    res = http.post("/api/login", json={"username": user, "password": password})
    assert res.status_code == 200, res.get_data(as_text=True)
    return http


def _b_history(stack: Stack) -> dict[str, str]:
    """Town B's task, alert and handover, made by a city-wide commander and B's user."""
    city = _signed_in(stack, "city-chief", "commander", None)
    res = city.post("/api/events/EVB1/dispatch", json={
        "key": "k-b-1", "assignees": [{"id": "WKB1", "kind": "worker"}],
        "override_reason": "the grid's own worker"})
    assert res.status_code == 201, res.get_data(as_text=True)
    task_id = res.get_json()["task"]["id"]
    alert = Alerts(Store(stack.client, stack.settings.prefix)).raise_once(
        "critical_event", "EVB1", "EVB1", "MARK-B alarm", 1)
    assert alert is not None and alert["grid_id"].startswith(TOWN_B)
    b_user = _signed_in(stack, "town-b", "commander", TOWN_B)
    res = b_user.post("/api/handover", json={})
    assert res.status_code == 201, res.get_data(as_text=True)
    return {"task": task_id, "alert": alert["id"], "handover": res.get_json()["handover"]["id"]}


def _fill(rule: Any, ids: dict[str, str]) -> str:
    values = {"event_id": ids["event"], "task_id": ids["task"], "alert_id": ids["alert"],
              "report_id": ids["handover"], "kind": "worker", "unit_id": ids["worker"],
              "level": "town", "name": "x", "rest": "x", "path": "x", "package": "x",
              "filename": "x"}
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values.get(m.group(1), "x"), rule.rule)


def test_scp001_every_route_shows_a_town_nothing_of_another(towns: Stack) -> None:
    ids = {**_seed(towns)}
    ids.update(_b_history(towns))
    a_user = _signed_in(towns, "town-a", "commander", TOWN_A)
    app = towns.app
    seen = 0
    for rule in app.server.url_map.iter_rules():
        path = _fill(rule, ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if path in ("/api/logout", "/logout"):
                continue
            res = a_user.open(path, method=method, json={"event_id": ids["event"],
                                                          "tiles": [ids["camera"]]})
            body = res.get_data().decode("utf-8", "replace")
            if res.status_code >= 400:  # an error may name what was asked for, no more
                for asked in (ids["event"], ids["camera"], ids["worker"]):
                    body = body.replace(asked, "")
            assert _leaks(body) == [], (method, path, res.status_code, body[:300])
            if any(f"<{arg}>" in rule.rule for arg in ("event_id", "task_id", "alert_id",
                                                        "report_id", "unit_id")):
                # outside the scope answers as unknown (or, for a change, refused)
                assert res.status_code in (400, 404, 405), (method, path, res.status_code)
            seen += 1
    assert seen > 30
    # the lists that do answer hold town A's own things
    events = a_user.get("/api/events").get_json()["events"]
    assert [e["id"] for e in events] == ["EVA1"]
    detail = a_user.get("/api/events/EVA1").get_json()
    assert [c["id"] for c in detail["nearby"]["cameras"]] == ["CMA1"]
    # a town's commander is proposed and may send only the town's own units
    proposal = a_user.get("/api/events/EVA1/proposal").get_json()
    offered = [u["id"] for call in proposal["calls"] for u in call["units"]] + [
        u["id"] for u in proposal["candidates"]["workers"] + proposal["candidates"]["resources"]]
    assert offered and set(offered) <= {"WKA1", "RSA1"}
    res = a_user.post("/api/events/EVA1/dispatch", json={
        "key": "k-a-1", "assignees": [{"id": "WKB1", "kind": "worker"}],
        "override_reason": "over the border"})
    assert res.status_code == 400 and res.get_json()["code"] == "unit_unknown"
    # and B's own user still sees B's
    b_user = _signed_in(towns, "town-b2", "commander", TOWN_B)
    assert b_user.get("/api/events/EVB1").status_code == 200
    assert b_user.get(f"/api/tasks/{ids['task']}").status_code == 200


def test_scp002_export_and_stats_stay_in_scope(towns: Stack) -> None:
    _seed(towns)
    a_user = _signed_in(towns, "town-a", "leader", TOWN_A)
    for fmt in ("csv", "json"):
        res = a_user.get(f"/api/export?format={fmt}")
        assert res.status_code in (200, 400), res.get_data(as_text=True)[:200]
        assert _leaks(res.get_data(as_text=True)) == []
    assert a_user.get(f"/api/stats?scope={TOWN_B}").status_code == 403


def _frames(ws: Any, until: Any, timeout: float = 8.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            raw = ws.recv(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        assert isinstance(raw, str)
        assert _leaks(raw) == [], raw[:300]
        got.append(json.loads(raw))
        if until(got):
            return got
    raise AssertionError(f"condition not met in {timeout}s; got {[f['type'] for f in got]}")


def test_scp003_websocket_snapshot_deltas_batches_replay_in_scope(towns: Stack) -> None:
    _seed(towns)
    _b_history(towns)
    token = session_token(towns.client, "commander", "town-a", scope=TOWN_A)
    headers = cookie_header(token)
    with connect(towns.ws_url, additional_headers=headers) as ws:
        snap = _frames(ws, lambda g: g[-1]["type"] == "snapshot")[-1]
        assert [e["id"] for e in snap["events"]] == ["EVA1"]
        assert [w["id"] for w in snap["workers"]] == ["WKA1"]
        assert [c["id"] for c in snap["cameras"]] == ["CMA1"]
        assert snap["tasks"] == [] and snap["alerts"] == []
        now = int(time.time() * 1000) + 1
        lon_a, lat_a = _spot(TOWN_A, 8)
        lon_b, lat_b = _spot(TOWN_B, 8)
        towns.publish("event", {"id": "EVB2", "type": "fire", "severity": 1, "lon": lon_b,
                                "lat": lat_b, "ts": now, "title": "MARK-B second"})
        towns.publish("worker", {"id": "WKB1", "lon": lon_b, "lat": lat_b, "ts": now})
        towns.publish("worker", {"id": "WKA1", "lon": lon_a, "lat": lat_a, "ts": now})
        towns.publish("event", {"id": "EVA2", "type": "fire", "severity": 2, "lon": lon_a,
                                "lat": lat_a, "ts": now})

        def done(got: list[dict[str, Any]]) -> bool:
            ids = {f.get("data", {}).get("id") for f in got if f["type"] == "delta"}
            moved = {i["data"]["id"] for f in got if f["type"] == "batch" for i in f["items"]}
            return "EVA2" in ids and "WKA1" in moved

        _frames(ws, done)
    # a wall coming back with ?since= gets the gap, filtered the same way
    with connect(towns.ws_url + f"?since={snap['seq']}", additional_headers=headers) as ws:
        got = _frames(ws, lambda g: any(f.get("data", {}).get("id") == "EVA2"
                                        for f in g if f["type"] == "delta"))
        assert all(f["type"] != "snapshot" for f in got)


def test_scp004_a_batch_is_encoded_once_per_scope_not_per_client() -> None:
    fan = Fanout()
    a1, a2, b, city = (Client(None, 100, 60.0, "t", None, s)
                       for s in (TOWN_A, TOWN_A, TOWN_B, None))
    fan.clients.update((a1, a2, b, city))
    for i, town in enumerate((TOWN_A, TOWN_B)):
        fan.route({"type": "delta", "kind": "worker", "op": "move", "seq": i + 1,
                   "data": {"id": f"W{i}", "grid_id": _grid_in(town)}})
    assert all(not c.queue for c in (a1, a2, b, city))  # moves wait for the batch
    fan.flush()
    frame_a1, frame_a2 = a1.queue[0][1], a2.queue[0][1]
    assert frame_a1 is frame_a2  # one bytes object shared by the scope's clients
    assert b"W0" in frame_a1 and b"W1" not in frame_a1
    assert b"W1" in b.queue[0][1] and b"W0" not in b.queue[0][1]
    assert b"W0" in city.queue[0][1] and b"W1" in city.queue[0][1]
    # a stats frame goes to everyone
    fan.broadcast(-1, b'{"type":"stats"}', None, EVERYWHERE)
    assert all(len(c.queue) == 2 for c in (a1, a2, b, city))


def test_scp005_snapshot_parts_cut_to_scope_tasks_by_their_event() -> None:
    grid_a, grid_b = _grid_in(TOWN_A), _grid_in(TOWN_B)
    parts = {"seq": 1, "events": [json.dumps({"id": "E1", "grid_id": grid_a}),
                                  json.dumps({"id": "E2", "grid_id": grid_b})],
             "workers": [], "resources": [], "cameras": [json.dumps({"id": "C", "x": 1})],
             "tasks": [json.dumps({"id": "T1", "event_id": "E1"}),
                       json.dumps({"id": "T2", "event_id": "E2"})],
             "alerts": [json.dumps({"id": "A1", "grid_id": grid_b})]}
    cut = scoped_parts(parts, TOWN_A)
    assert [json.loads(x)["id"] for x in cut["events"]] == ["E1"]
    assert [json.loads(x)["id"] for x in cut["tasks"]] == ["T1"]
    assert cut["cameras"] == [] and cut["alerts"] == []  # no place: outside every scope


def test_scp006_desk_report_creates_never_rewrites(towns: Stack) -> None:
    _seed(towns)
    officer = _signed_in(towns, "desk-a", "duty_officer", TOWN_A)
    res = officer.post("/api/events", json={"id": "EVB1", "type": "fire", "severity": 4,
                                             "lon": 120.0, "lat": 36.8, "status": "closed"})
    assert res.status_code == 400 and res.get_json()["code"] == "not_reportable"
    assert "id" in res.get_json()["error"] and "status" in res.get_json()["error"]
    lon_b, lat_b = _spot(TOWN_B, 9)
    res = officer.post("/api/events", json={"type": "fire", "severity": 3, "lon": lon_b,
                                             "lat": lat_b, "title": "over the border"})
    assert res.status_code == 403 and res.get_json()["code"] == "out_of_scope"
    lon_a, lat_a = _spot(TOWN_A, 9)
    res = officer.post("/api/events", json={"type": "fire", "severity": 3, "lon": lon_a,
                                             "lat": lat_a, "title": "in my town"})
    assert res.status_code == 201, res.get_data(as_text=True)
    event = res.get_json()["event"]
    assert event["id"].startswith("R") and event["reporter"] == "desk-a"
    assert event["source"] == "other"
    stored = Store(towns.client, towns.settings.prefix).event("EVB1")
    assert stored is not None and stored["status"] != "closed" and stored["severity"] == 1


def test_scp007_websocket_origin_checked(towns: Stack, r: redis.Redis) -> None:
    headers = towns.headers
    with pytest.raises(InvalidStatus) as refused:
        connect(towns.ws_url, additional_headers=headers, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    page = "http://127.0.0.1:8050"
    with connect(towns.ws_url, additional_headers=headers, origin=page) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
    with connect(towns.ws_url, additional_headers=headers) as ws:  # no Origin: no browser
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"


@pytest.mark.parametrize(("origin", "host", "allowed", "ok"), [
    ("http://wall.local:8050", "wall.local:8765", (), True),
    ("http://wall.local:9999", "wall.local:8765", (), True),  # one host: its pages
    ("http://wall.local.evil.example:8050", "wall.local:8765", (), False),
    ("http://other.local:8050", "wall.local:8765", (), False),
    ("https://cc.example", "cc.example", (), True),
    ("https://cc.example", "cc.example", ("https://proxy.example",), False),
    ("https://proxy.example", "cc.example", ("https://proxy.example",), True),
    ("null", "wall.local:8765", (), False),
])
def test_scp008_origin_rule(origin: str, host: str, allowed: tuple[str, ...],
                            ok: bool) -> None:
    import dataclasses

    from websockets.datastructures import Headers

    from dashboard.config import Settings

    settings = dataclasses.replace(Settings(), ws_origins=allowed)
    assert origin_allowed(origin, Headers({"Host": host}), settings) is ok


def test_scp009_sockets_per_session_capped(redis_url: str) -> None:
    with running_stack(redis_url, ws_per_session=2) as live, live.connect() as first, \
            live.connect() as second:
        for ws in (first, second):
            assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
        with live.connect() as third, pytest.raises(ConnectionClosed) as closed:
            third.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429


def test_scp010_socket_closed_when_scope_changes(redis_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import feeds.relay

    monkeypatch.setattr(feeds.relay, "SESSION_CHECK_S", 0.2)
    with running_stack(redis_url) as live:
        token = session_token(live.client, "commander", "mover", scope=TOWN_A)
        with connect(live.ws_url, additional_headers=cookie_header(token)) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
            # what a changed session looks like to the relay: same token, another scope
            key = session_key(token, live.settings.prefix)
            assert live.client.hget(key, "user") == "mover"
            live.client.hset(key, "scope", TOWN_B)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_scp011_walls_of_one_scope_share_a_cut_but_not_its_kinds(towns: Stack) -> None:
    _seed(towns)
    token = session_token(towns.client, "commander", "town-a", scope=TOWN_A)
    headers = cookie_header(token)
    with connect(towns.ws_url + "?kinds=alert", additional_headers=headers) as desk:
        first = _frames(desk, lambda g: g[-1]["type"] == "snapshot")[-1]
        assert first["workers"] == [] and first["events"] == []
        with connect(towns.ws_url, additional_headers=headers) as wall:
            snap = _frames(wall, lambda g: g[-1]["type"] == "snapshot")[-1]
            assert [w["id"] for w in snap["workers"]] == ["WKA1"]
            assert [e["id"] for e in snap["events"]] == ["EVA1"]
