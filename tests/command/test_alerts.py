"""Alerts on a real Redis: raised once per cause, acknowledged once, published, bounded."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import redis

from dashboard.command.alerts import ACKED_KEEP_MS, OPEN_KEEP_MS, AlertNotFound, Alerts
from dashboard.store import Store

TS = 1_795_312_800_000
ALERT_FIELDS = {"kind", "subject_id", "event_id", "ts", "message"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, ms: int = TS) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def subscribe(r: redis.Redis, *channels: str) -> Any:
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(*channels)
    while not sub.subscribed:
        sub.get_message(timeout=0.05)
    return sub


def messages(sub: Any, rounds: int = 10) -> list[dict[str, Any]]:
    out = []
    for _ in range(rounds):
        message = sub.get_message(timeout=0.05)
        if message is not None:
            out.append({"channel": message["channel"], "data": json.loads(message["data"])})
    return out


def test_alert001_raised_once_stored_framed_and_published(r: redis.Redis) -> None:
    alerts = Alerts(Store(r), clock=Clock())
    sub = subscribe(r, "cc:alert", "cc:ui")
    first = alerts.raise_once("critical_event", "E1", "E1", "I级事件：仓库起火", 1)
    again = alerts.raise_once("critical_event", "E1", "E1", "I级事件：仓库起火", 1)
    assert first is not None and again is None
    assert first["severity"] == 1 and first["acked_by"] is None and first["ts"] == TS
    assert json.loads(r.hget("cc:state:alert", first["id"])) == first
    assert r.zscore("cc:alerts:open", first["id"]) == TS
    assert 0 < r.ttl("cc:alert:once:critical_event:E1:E1") <= 86400
    got = messages(sub)
    published = [m["data"] for m in got if m["channel"] == "cc:alert"]
    assert published == [{"kind": "critical_event", "subject_id": "E1", "event_id": "E1",
                          "ts": TS, "message": "I级事件：仓库起火"}]
    assert set(published[0]) == ALERT_FIELDS
    frames = [f for m in got if m["channel"] == "cc:ui" for f in m["data"]]
    assert [(f["kind"], f["data"]["id"]) for f in frames] == [("alert", first["id"])]
    assert Store(r).log_since(0, 10)[0][1] == "alert"
    sub.close()


def test_alert002_causes_are_distinct_and_bad_input_refused(r: redis.Redis) -> None:
    alerts = Alerts(Store(r), clock=Clock())
    assert alerts.raise_once("sos", "W1", None, "SOS", 1, cause="5") is not None
    assert alerts.raise_once("sos", "W1", None, "SOS", 1, cause="5") is None
    assert alerts.raise_once("sos", "W1", None, "SOS", 1, cause="9") is not None
    assert alerts.raise_once("sla_red", "E1", "E1", "超时", 3, cause="dispatch") is not None
    assert alerts.raise_once("sla_red", "E1", "E1", "超时", 3, cause="arrive") is not None
    with pytest.raises(ValueError):
        alerts.raise_once("nonsense", "E1", "E1", "x", 1)
    with pytest.raises(ValueError):
        alerts.raise_once("sos", "E1", "E1", "x", 7)
    assert r.zcard("cc:alerts:open") == 4


def test_alert003_twenty_threads_raise_one(redis_url: str, r: redis.Redis) -> None:
    results: list[Any] = []
    barrier = threading.Barrier(20)

    def worker() -> None:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        alerts = Alerts(Store(client), clock=Clock())
        barrier.wait()
        results.append(alerts.raise_once("critical_event", "E9", "E9", "II级事件", 2))
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len([a for a in results if a is not None]) == 1
    assert r.hlen("cc:state:alert") == 1


def test_alert004_ack_once_then_same_answer(r: redis.Redis) -> None:
    clock = Clock()
    alerts = Alerts(Store(r), clock=clock)
    raised = alerts.raise_once("critical_event", "E1", "E1", "I级事件", 1)
    assert raised is not None
    clock.ms = TS + 60_000
    acked = alerts.ack(raised["id"], by="li", note="已通知消防")
    assert acked["acked_by"] == "li" and acked["acked_ts"] == TS + 60_000
    assert acked["note"] == "已通知消防"
    seq = Store(r).seq()
    clock.ms = TS + 120_000
    assert alerts.ack(raised["id"], by="zhang", note="again") == acked
    assert Store(r).seq() == seq  # no second change, no second frame
    assert alerts.open() == []
    assert alerts.recent() == [acked]
    with pytest.raises(AlertNotFound):
        alerts.ack("A-nope", by="li")


def test_alert005_open_first_then_acked(r: redis.Redis) -> None:
    clock = Clock()
    alerts = Alerts(Store(r), clock=clock)
    ids = []
    for i in range(3):
        clock.ms = TS + i
        raised = alerts.raise_once("critical_event", f"E{i}", f"E{i}", f"事件{i}", 2)
        assert raised is not None
        ids.append(raised["id"])
    alerts.ack(ids[2], by="li")
    assert [a["id"] for a in alerts.open()] == [ids[1], ids[0]]
    assert [a["id"] for a in alerts.recent()] == [ids[1], ids[0], ids[2]]
    # the open ones raised up to a moment, oldest first (the history's duty officer)
    assert alerts.open_until(TS) == [ids[0]]
    assert alerts.open_until(TS + 5) == [ids[0], ids[1]]
    assert alerts.open_until(TS - 1) == []


def test_alert006_trim_bounds_the_hash(r: redis.Redis) -> None:
    clock = Clock()
    alerts = Alerts(Store(r), clock=clock)
    old = alerts.raise_once("critical_event", "E1", "E1", "旧", 2)
    stale = alerts.raise_once("critical_event", "E2", "E2", "无人确认", 2)
    assert old is not None and stale is not None
    alerts.ack(old["id"], by="li")
    clock.ms = TS + ACKED_KEEP_MS - 1
    fresh = alerts.raise_once("critical_event", "E3", "E3", "新", 2)
    assert fresh is not None
    assert alerts.trim() == 0
    clock.ms = TS + ACKED_KEEP_MS + 1
    assert alerts.trim() == 1  # the acknowledged one went; the open ones stay
    assert alerts.get(old["id"]) is None and alerts.get(stale["id"]) is not None
    clock.ms = TS + OPEN_KEEP_MS + 1
    assert alerts.trim() == 1  # a month unacknowledged: dropped too
    assert [a["id"] for a in alerts.open()] == [fresh["id"]]
    assert r.hlen("cc:state:alert") == 1


# -- the HTTP API --------------------------------------------------------------------


@pytest.fixture
def app_client(redis_url: str) -> Any:
    import dataclasses

    from app import create_app
    from dashboard.config import Settings

    app = create_app(dataclasses.replace(Settings(), redis_url=redis_url))
    return app.server


def ack_entries(r: redis.Redis) -> list[dict[str, Any]]:
    from dashboard.access.audit import Audit

    return [e for e in Audit(r, "cc:").entries(100) if e["action"] == "alert.ack"]


def test_alert007_api_lists_open_first_any_role(app_client: Any, r: redis.Redis) -> None:
    from ..auth_util import sign_in

    clock = Clock()
    alerts = Alerts(Store(r), clock=clock)
    first = alerts.raise_once("critical_event", "E1", "E1", "I级事件：<b>仓库</b>起火", 1)
    clock.ms += 1
    second = alerts.raise_once("sos", "W1", None, "李强发出SOS求助", 1, cause="1")
    assert first is not None and second is not None
    alerts.ack(second["id"], by="li")
    anonymous = app_client.test_client()
    res = anonymous.get("/api/alerts")
    assert res.status_code == 401 and res.get_json()["error"]
    for role in ("display", "leader", "duty_officer", "commander"):
        client = app_client.test_client()
        sign_in(client, r, role)
        body = client.get("/api/alerts").get_json()
        assert [a["id"] for a in body["alerts"]] == [first["id"], second["id"]]
        assert body["alerts"][0]["message"] == "I级事件：<b>仓库</b>起火"  # text, as sent
    res = client.get("/api/alerts?limit=0")
    assert res.status_code == 400 and "limit" in res.get_json()["error"]
    assert client.get("/api/alerts?limit=1").get_json()["alerts"] == [first]


def test_alert008_api_ack_roles_and_one_audit_entry(app_client: Any, r: redis.Redis) -> None:
    from ..auth_util import sign_in

    alerts = Alerts(Store(r), clock=Clock())
    raised = alerts.raise_once("sla_red", "E1", "E1", "派遣超时", 2, cause="dispatch")
    assert raised is not None
    path = f"/api/alerts/{raised['id']}/ack"
    assert app_client.test_client().post(path, json={"note": "x"}).status_code == 401
    for role in ("leader", "display"):
        client = app_client.test_client()
        sign_in(client, r, role)
        res = client.post(path, json={"note": "x"})
        assert res.status_code == 403 and res.get_json()["error"]
    assert alerts.open() == [raised]  # nothing changed
    # the anonymous and the display requests are refused by the sign-in guard before the
    # route; the leader's reaches it and is refused there, with an entry
    assert [(e["user"], e["outcome"]) for e in ack_entries(r)] == [("t-leader", "denied")]
    r.delete("cc:audit")

    duty = app_client.test_client()
    sign_in(duty, r, "duty_officer", name="li")
    res = duty.post(path, json={"note": "已电话督办"})
    assert res.status_code == 200
    acked = res.get_json()["alert"]
    assert acked["acked_by"] == "li" and acked["note"] == "已电话督办"
    assert alerts.open() == [] and alerts.get(raised["id"]) == acked
    entries = ack_entries(r)
    assert len(entries) == 1
    assert (entries[0]["user"], entries[0]["role"], entries[0]["target"],
            entries[0]["outcome"]) == ("li", "duty_officer", raised["id"], "success")

    commander = app_client.test_client()
    sign_in(commander, r, "commander", name="zhang")
    again = commander.post(path, json={"note": "再次确认"})
    assert again.status_code == 200 and again.get_json() == {"alert": acked, "duplicate": True}
    assert [e["outcome"] for e in ack_entries(r)] == ["duplicate", "success"]

    missing = commander.post("/api/alerts/A-nope/ack", json={})
    assert missing.status_code == 404 and missing.get_json()["code"] == "no_alert"
    for bad in ("[1, 2]", '{"note": 5}', "not json", '{"note": "' + "长" * 501 + '"}'):
        res = commander.post(path, data=bad, content_type="application/json")
        assert res.status_code == 400 and res.get_json()["error"], bad
    assert [e["outcome"] for e in ack_entries(r)][:5] == ["failure"] * 5


def test_alert009_scoped_user_sees_and_acks_only_their_area(app_client: Any,
                                                            r: redis.Redis) -> None:
    from dashboard.city import load_city

    from .. import units_util as units
    from ..auth_util import make_user

    city = load_city()
    here = city.grids[10].code
    there = next(g.code for g in city.grids if g.code[:9] != here[:9])
    town = city.parents(here)[0].code
    store = Store(r)
    units.event(store, "E1", grid_id=here)
    units.event(store, "E2", grid_id=there)
    units.worker(store, "W1", 0, grid_id=there, loc_grid_id=here)  # out of area, but here now
    clock = Clock()
    alerts = Alerts(store, clock=clock)
    mine = alerts.raise_once("critical_event", "E1", "E1", "II级事件：本镇", 2)
    clock.ms += 1
    theirs = alerts.raise_once("critical_event", "E2", "E2", "II级事件：外镇", 2)
    clock.ms += 1
    sos = alerts.raise_once("sos", "W1", None, "网格员W1发出SOS求助", 1, cause="1")
    assert mine is not None and theirs is not None and sos is not None
    user, password = make_user(r, "duty_officer", "town-duty", scope=town)
    client = app_client.test_client()
    assert client.post("/api/login", json={"username": user,
                                           "password": password}).status_code == 200
    listed = {a["id"] for a in client.get("/api/alerts").get_json()["alerts"]}
    assert listed == {mine["id"], sos["id"]}
    refused = client.post(f"/api/alerts/{theirs['id']}/ack", json={})
    # outside the scope answers as unknown (ids do not leak); audited as denied
    assert refused.status_code == 404 and refused.get_json()["code"] == "no_alert"
    assert client.post(f"/api/alerts/{mine['id']}/ack", json={}).status_code == 200
    assert [e["outcome"] for e in ack_entries(r)] == ["success", "denied"]
    assert [a["id"] for a in alerts.open()] == [sos["id"], theirs["id"]]
