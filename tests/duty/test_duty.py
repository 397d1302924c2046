"""The duty desk on a real Redis: the queue, notes, hand-over to a commander, silence, and
the API's roles, scopes, audit entries and JSON errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from dashboard.access.audit import Audit
from dashboard.command.alerts import Alerts
from dashboard.duty.desk import NOTES_MAX, Duty
from dashboard.errors import Refused
from dashboard.store import Store

from ..auth_util import XHR, make_user, sign_in
from ..command.test_alerts import TS, Clock, app_client  # noqa: F401  (a fixture)


def desk(r: redis.Redis, clock: Clock) -> tuple[Duty, Alerts]:
    alerts = Alerts(Store(r), clock=clock)
    return Duty(alerts.store, alerts, clock=clock), alerts


def entries(r: redis.Redis, prefix: str = "duty.") -> list[dict[str, Any]]:
    return [e for e in Audit(r, "cc:").entries(100) if e["action"].startswith(prefix)]


def raise_set(alerts: Alerts, clock: Clock) -> dict[str, dict[str, Any]]:
    """One of each kind, at increasing times."""
    out: dict[str, dict[str, Any]] = {}
    for name, args in (
        ("crit2", ("critical_event", "E2", "E2", "II级事件：燃气泄漏", 2)),
        ("red3", ("sla_red", "E3", "E3", "【占道】派遣超时", 3, 86400, "dispatch")),
        ("yellow1", ("sla_yellow", "E1", "E1", "【爆炸】即将超时", 1, 86400, "dispatch")),
        ("crit1", ("critical_event", "E1", "E1", "I级事件：化工厂爆炸", 1)),
        ("fence", ("geofence_exit", "W2", None, "网格员离开责任网格", 3, 86400, "9")),
        ("sos", ("sos", "W1", None, "李强发出SOS求助", 2, 86400, "7")),
        ("crit2b", ("critical_event", "T9", "E4", "任务T9被退回", 2, 86400, "rejected:1")),
    ):
        clock.ms += 1000
        found = alerts.raise_once(*args)  # type: ignore[arg-type]
        assert found is not None
        out[name] = found
    return out


def test_duty001_queue_most_severe_first_then_newest(r: redis.Redis) -> None:
    clock = Clock(TS)
    duty, alerts = desk(r, clock)
    raised = raise_set(alerts, clock)
    board = duty.board()
    # SOS first (a person's safety, whatever its severity), then level I, then level II
    # newest first, then level III newest first; the yellow card is not a desk alarm
    assert [a["id"] for a in board["queue"]] == [raised[k]["id"] for k in (
        "sos", "crit1", "crit2b", "crit2", "fence", "red3")]
    assert board["sounding"] == [a["id"] for a in board["queue"]]
    assert board["handed"] == [] and board["recent"] == [] and board["silence"] is None
    assert (board["waiting"], board["more"]) == (6, False)  # the yellow card is not counted
    alerts.ack(raised["crit1"]["id"], by="li")
    board = duty.board()
    assert raised["crit1"]["id"] not in [a["id"] for a in board["queue"]]
    assert [a["id"] for a in board["recent"]] == [raised["crit1"]["id"]]


def test_duty002_notes_are_kept_bounded_and_framed(r: redis.Redis) -> None:
    clock = Clock(TS)
    duty, alerts = desk(r, clock)
    alert = alerts.raise_once("sos", "W1", None, "李强发出SOS求助", 1, cause="1")
    assert alert is not None
    seq = int(r.get("cc:seq") or 0)
    clock.ms += 5000
    noted = duty.note(alert["id"], by="li", text="  已联系本人，正在核实  ")
    assert noted["notes"] == [{"by": "li", "ts": TS + 5000, "text": "已联系本人，正在核实"}]
    assert json.loads(r.hget("cc:state:alert", alert["id"])) == noted
    # the change went to the change log as an alert upsert (walls and desks follow)
    frames = Store(r).log_since(seq, 10)
    assert [(kind, op) for _, kind, op, _ in frames] == [("alert", "upsert")]
    assert json.loads(frames[0][3]) == noted
    for i in range(NOTES_MAX + 3):
        duty.note(alert["id"], by="li", text=f"第{i}条")
    notes = alerts.get(alert["id"])["notes"]  # type: ignore[index]
    assert len(notes) == NOTES_MAX and notes[-1]["text"] == f"第{NOTES_MAX + 2}条"
    for bad in ("", "   ", None, 5, "长" * 501):
        with pytest.raises(Refused):
            duty.note(alert["id"], by="li", text=bad)  # type: ignore[arg-type]
    assert alerts.get(alert["id"])["acked_by"] is None  # type: ignore[index]
    assert alerts.open() == [alerts.get(alert["id"])]


def test_duty003_handed_to_a_commander_leaves_the_sounding_set(r: redis.Redis) -> None:
    clock = Clock(TS)
    duty, alerts = desk(r, clock)
    raised = raise_set(alerts, clock)
    crit = raised["crit1"]["id"]
    clock.ms += 1000
    handed = duty.handoff(crit, by="li", to="zhang")
    assert (handed["handed_to"], handed["handed_by"], handed["handed_ts"],
            handed["handed_to_role"]) == ("zhang", "li", clock.ms, "commander")
    assert handed["acked_by"] is None and r.zscore("cc:alerts:open", crit) is not None
    board = duty.board()
    assert crit not in board["sounding"] and crit not in [a["id"] for a in board["queue"]]
    assert [a["id"] for a in board["handed"]] == [crit]
    assert duty.handoff(crit, by="li", to="zhang") == handed  # again: nothing changes
    # the commander's acknowledgement closes it
    acked = alerts.ack(crit, by="zhang")
    assert acked["handed_to"] == "zhang" and acked["acked_by"] == "zhang"
    assert duty.board()["handed"] == []
    with pytest.raises(Refused) as exc:
        duty.handoff(crit, by="li")
    assert exc.value.status == 409


def test_duty004_silence_covers_the_alarms_of_now_and_a_new_one_sounds(r: redis.Redis) -> None:
    clock = Clock(TS)
    duty, alerts = desk(r, clock)
    first = alerts.raise_once("critical_event", "E1", "E1", "I级事件：爆炸", 1)
    assert first is not None
    for reason in ("", "  ", None):
        with pytest.raises(Refused) as exc:
            duty.silence(by="li", reason=reason, minutes=5,  # type: ignore[arg-type]
                         sounding=[first["id"]])
        assert exc.value.code in ("no_reason", "bad_reason")
    for minutes in (0, 61, "5", 2.5, True):
        with pytest.raises(Refused):
            duty.silence(by="li", reason="正在电话处置", minutes=minutes,  # type: ignore[arg-type]
                         sounding=[first["id"]])
    assert duty.silence_state() is None
    state = duty.silence(by="li", reason="正在电话处置", minutes=15,
                         sounding=duty.board()["sounding"])
    assert state["covers"] == [first["id"]] and state["until"] == TS + 15 * 60_000
    assert 0 < r.ttl("cc:duty:silence") <= 15 * 60
    assert duty.board()["sounding"] == []
    clock.ms += 1000
    second = alerts.raise_once("sos", "W1", None, "李强发出SOS求助", 1, cause="3")
    assert second is not None
    assert duty.board()["sounding"] == [second["id"]]  # a new alarm sounds again
    # silencing again extends it and keeps the first covered
    state = duty.silence(by="li", reason="已派人前往", minutes=5, sounding=[second["id"]])
    assert state["covers"] == [first["id"], second["id"]]
    clock.ms += 5 * 60_000 + 1  # the silence is over: both sound again
    assert duty.board()["sounding"] == [second["id"], first["id"]]
    assert duty.unsilence() is None


def test_duty005_api_roles_scope_audit_and_json_errors(app_client: Any,  # noqa: F811
                                                       r: redis.Redis) -> None:
    from dashboard.city import load_city

    from .. import units_util as units

    city = load_city()
    here = city.grids[10].code
    there = next(g.code for g in city.grids if g.code[:9] != here[:9])
    town = city.parents(here)[0].code
    store = Store(r)
    units.event(store, "E1", grid_id=here)
    units.event(store, "E2", grid_id=there)
    units.worker(store, "W1", 0, grid_id=here, loc_grid_id=there)  # left their grid
    clock = Clock(TS)
    alerts = Alerts(store, clock=clock)
    mine = alerts.raise_once("critical_event", "E1", "E1", "II级事件：本镇", 2)
    clock.ms += 1
    theirs = alerts.raise_once("critical_event", "E2", "E2", "II级事件：外镇", 2)
    clock.ms += 1
    fence = alerts.raise_once("geofence_exit", "W1", None, "网格员离开责任网格", 3, cause="1")
    assert mine and theirs and fence

    anon = app_client.test_client()
    assert anon.get("/api/duty/queue").status_code == 401
    leader = app_client.test_client()
    sign_in(leader, r, "leader")
    assert leader.get("/api/duty/queue").status_code == 403
    res = leader.post(f"/api/duty/alerts/{mine['id']}/note", json={"text": "x"})
    assert res.status_code == 403 and res.get_json()["error"]
    assert [(e["action"], e["outcome"]) for e in entries(r)] == [("duty.note", "denied")]
    r.delete("cc:audit")

    user, password = make_user(r, "duty_officer", "town-duty", scope=town)
    scoped = app_client.test_client()
    assert scoped.post("/api/login", json={"username": user,
                                           "password": password}).status_code == 200
    board = scoped.get("/api/duty/queue").get_json()
    # the geofence alarm belongs to the worker's own grid, not where they wandered to
    assert [a["id"] for a in board["queue"]] == [mine["id"], fence["id"]]
    assert board["queue"][0]["area"] == here
    path = [*city.parents(here), city.unit(here)]
    assert board["queue"][0]["area_name"] == " · ".join(u.name for u in path if u)
    refused = scoped.post(f"/api/duty/alerts/{theirs['id']}/note", json={"text": "看看"})
    # outside the scope answers as unknown (ids do not leak)
    assert refused.status_code == 404 and refused.get_json()["code"] == "no_alert"
    refused = scoped.post(f"/api/duty/alerts/{theirs['id']}/handoff", json={})
    assert refused.status_code == 404
    ok = scoped.post(f"/api/duty/alerts/{mine['id']}/note", json={"text": "已电话督办"})
    assert ok.status_code == 200 and ok.get_json()["alert"]["notes"][0]["by"] == user

    make_user(r, "commander", "zhang")
    bad = scoped.post(f"/api/duty/alerts/{mine['id']}/handoff", json={"to": user})
    assert bad.status_code == 400 and bad.get_json()["code"] == "not_a_commander"
    handed = scoped.post(f"/api/duty/alerts/{mine['id']}/handoff", json={"to": "zhang"})
    assert handed.status_code == 200 and handed.get_json()["alert"]["handed_to"] == "zhang"
    again = scoped.post(f"/api/duty/alerts/{mine['id']}/handoff", json={"to": "zhang"})
    assert again.status_code == 200 and again.get_json()["duplicate"] is True

    no_reason = scoped.post("/api/duty/silence", json={"minutes": 5})
    assert no_reason.status_code == 400 and no_reason.get_json()["code"] == "no_reason"
    silenced = scoped.post("/api/duty/silence", json={"reason": "正在处置", "minutes": 5})
    assert silenced.status_code == 200
    # covers what this desk sounded: not the handed one, not another town's
    assert silenced.get_json()["silence"]["covers"] == [fence["id"]]
    assert scoped.get("/api/duty/queue").get_json()["sounding"] == []
    assert scoped.delete("/api/duty/silence", headers=XHR).status_code == 200
    assert scoped.get("/api/duty/queue").get_json()["sounding"] == [fence["id"]]

    for path, body in ((f"/api/duty/alerts/{mine['id']}/note", "[1]"),
                       (f"/api/duty/alerts/{mine['id']}/note", "not json"),
                       (f"/api/duty/alerts/{mine['id']}/note", '{"text": 5}'),
                       (f"/api/duty/alerts/{mine['id']}/handoff", '{"to": 5}'),
                       ("/api/duty/silence", '{"reason": "x", "minutes": 90}')):
        res = scoped.post(path, data=body, content_type="application/json")
        assert res.status_code == 400 and res.get_json()["error"], (path, body)
    missing = scoped.post("/api/duty/alerts/A-nope/note", json={"text": "x"})
    assert missing.status_code == 404 and missing.get_json()["code"] == "no_alert"

    got = [(e["action"], e["target"], e["outcome"], e["user"]) for e in entries(r)][::-1]
    assert got[:8] == [
        ("duty.note", theirs["id"], "denied", user),
        ("duty.handoff", theirs["id"], "denied", user),
        ("duty.note", mine["id"], "success", user),
        ("duty.handoff", mine["id"], "failure", user),
        ("duty.handoff", mine["id"], "success", user),
        ("duty.handoff", mine["id"], "duplicate", user),
        ("duty.silence", "-", "failure", user),
        ("duty.silence", "-", "success", user),
    ]
    assert got[8] == ("duty.unsilence", "-", "success", user)
    assert [e[2] for e in got[9:]] == ["failure"] * 6
    assert len(got) == 15
