"""The duty roster (dashboard/duty/roster.py, `GET/PUT /api/roster`) on a real Valkey.

Feature codes: ros001 the rotation gives the team of any date's shift; ros002 the night shift
runs across midnight (the moment after midnight is still the previous date's night); ros003
overrides replace a team or its people on one date; ros004 a bad roster is refused naming
the field; ros005 the roster is seeded into Redis once and read back; ros006 the API: any
signed-in role reads who is on duty now, only a commander may replace it, audited; ros007
the demo roster names the demo users.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest
import redis
from flask import Flask

from callbacks.access.auth import install_auth
from callbacks.api import install_error_handlers
from callbacks.duty.handover import create_handover_api
from dashboard.access.audit import Audit
from dashboard.access.auth import Auth
from dashboard.config import Settings
from dashboard.duty.roster import Roster, RosterError, RosterStore, load_file
from dashboard.store import Store

from ..auth_util import sign_in
from ..cockpit_util import ms

TZ = "Asia/Shanghai"


def api_server(r: redis.Redis, redis_url: str, clock: Any) -> Flask:
    """Sign-in, audit and the handover routes on a clock the test sets."""
    settings = dataclasses.replace(Settings(), redis_url=redis_url)
    server = Flask(__name__)
    install_auth(server, Auth(r, settings.prefix, settings), Audit(r, settings.prefix), settings)
    server.register_blueprint(create_handover_api(Store(r), settings, clock=clock))
    install_error_handlers(server)
    return server


def demo() -> dict[str, Any]:
    return load_file()


def roster(doc: dict[str, Any] | None = None) -> Roster:
    return Roster.from_doc(doc or demo(), TZ)


def test_ros001_rotation_for_given_dates() -> None:
    r = roster()
    doc = demo()
    epoch = date.fromisoformat(doc["rotation"]["epoch"])
    pattern = doc["rotation"]["pattern"]
    # by hand: the pattern repeats every len(pattern) days from the epoch, also before it
    for offset in (0, 1, 2, 3, 4, 7, 365, -1, -5):
        day = epoch + timedelta(days=offset)
        want = pattern[offset % len(pattern)]
        got = {d.shift.id: d.team for d in r.on_date(day)}
        assert got == want, day
    day_shift = r.at(ms("2026-11-25T08:00:00"))
    team = next(t for t in doc["teams"] if t["id"] == day_shift.team)
    assert (day_shift.date, day_shift.shift.id) == ("2026-11-25", "day")
    assert day_shift.leader == team["leader"] and list(day_shift.officers) == team["officers"]
    assert (day_shift.start_ms, day_shift.end_ms) == (ms("2026-11-25T08:00:00"),
                                                      ms("2026-11-25T20:00:00"))
    # a team never works two shifts in a row (at least one shift's rest)
    moment = ms("2026-11-20T08:00:00")
    for _ in range(40):
        now, nxt = r.at(moment), r.next(moment)
        assert now.end_ms == nxt.start_ms and now.team != nxt.team
        moment = nxt.start_ms


def test_ros002_night_shift_across_midnight() -> None:
    r = roster()
    for moment in ("2026-11-25T20:00:00", "2026-11-25T23:59:59", "2026-11-26T00:00:00",
                   "2026-11-26T07:59:59"):
        duty = r.at(ms(moment))
        assert (duty.date, duty.shift.id) == ("2026-11-25", "night"), moment
        assert (duty.start_ms, duty.end_ms) == (ms("2026-11-25T20:00:00"),
                                                ms("2026-11-26T08:00:00"))
    after = r.at(ms("2026-11-26T08:00:00"))
    assert (after.date, after.shift.id) == ("2026-11-26", "day")
    assert r.next(ms("2026-11-25T23:00:00")).start_ms == ms("2026-11-26T08:00:00")
    # three shifts, one of them across midnight, tile the day as well
    doc = demo()
    doc["shifts"] = [{"id": "a", "name": "早班", "start": "00:00", "end": "08:00"},
                     {"id": "b", "name": "中班", "start": "08:00", "end": "16:00"},
                     {"id": "c", "name": "晚班", "start": "16:00", "end": "00:00"}]
    doc["rotation"]["pattern"] = [{"a": "A", "b": "B", "c": "C"}]
    three = roster(doc)
    duty = three.at(ms("2026-11-25T23:30:00"))
    assert (duty.shift.id, duty.start_ms, duty.end_ms) == (
        "c", ms("2026-11-25T16:00:00"), ms("2026-11-26T00:00:00"))


def test_ros003_overrides() -> None:
    doc = demo()
    doc["overrides"] = {"2026-11-25": {"day": "D",
                                       "night": {"leader": "lingdao", "officers": ["zhiban2"]}}}
    r = roster(doc)
    day, night = r.on_date(date(2026, 11, 25))
    team_d = next(t for t in doc["teams"] if t["id"] == "D")
    assert (day.team, day.leader, list(day.officers)) == ("D", team_d["leader"],
                                                          team_d["officers"])
    assert (night.team, night.leader, night.officers) == (None, "lingdao", ("zhiban2",))
    # the next date is the rotation's again
    plain = roster()
    assert [d.team for d in r.on_date(date(2026, 11, 26))] == \
        [d.team for d in plain.on_date(date(2026, 11, 26))]


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d["shifts"][0].update(end="19:00"), "shifts"),  # a gap
    (lambda d: d["shifts"][1].update(start="7:00"), "shifts[1].start"),
    (lambda d: d["shifts"].append({"id": "x", "start": "08:00", "end": "08:00"}), "shifts"),
    (lambda d: d["teams"][0].update(leader="nobody"), "teams[0].leader"),
    (lambda d: d["teams"][1].update(officers=[]), "teams[1].officers"),
    (lambda d: d["teams"].append(dict(d["teams"][0])), "teams[4].id"),
    (lambda d: d["rotation"].update(epoch="2026-13-01"), "rotation.epoch"),
    (lambda d: d["rotation"]["pattern"].append({"day": "A"}), "rotation.pattern[4]"),
    (lambda d: d["rotation"]["pattern"][0].update(night="Z"), "rotation.pattern[0].night"),
    (lambda d: d.update(overrides={"2026-11-25": {"evening": "A"}}),
     "overrides.2026-11-25.evening"),
    (lambda d: d.update(overrides={"tomorrow": {"day": "A"}}), "overrides.tomorrow"),
    (lambda d: d["people"].update({"bad name!": {"name": "x"}}), "people.bad name!"),
    (lambda d: d.update(people=[]), "people"),
])
def test_ros004_validation_errors(change: Any, where: str) -> None:
    doc = copy.deepcopy(demo())
    change(doc)
    with pytest.raises(RosterError) as exc:
        roster(doc)
    assert exc.value.where == where
    assert where in str(exc.value)


def test_ros005_seeded_once_then_read_from_redis(r: redis.Redis) -> None:
    store = Store(r)
    rosters = RosterStore(store, TZ)
    assert not r.exists("cc:roster")
    assert rosters.get().doc == demo()
    assert r.exists("cc:roster")
    doc = demo()
    doc["overrides"] = {"2026-11-25": {"day": "C"}}
    rosters.put(doc)
    # another reader (another process) sees the change; the seed file does not come back
    again = RosterStore(store, TZ)
    assert again.get().at(ms("2026-11-25T09:00:00")).team == "C"
    with pytest.raises(RosterError):
        again.put({"shifts": []})
    assert again.get().at(ms("2026-11-25T09:00:00")).team == "C"  # nothing written


def test_ros006_api_read_by_all_replaced_by_commander_audited(r: redis.Redis,
                                                               redis_url: str) -> None:
    now = ms("2026-11-25T21:00:00")
    server = api_server(r, redis_url, lambda: now)
    client = server.test_client()
    assert client.get("/api/roster").status_code == 401
    for role in ("display", "leader", "duty_officer"):
        c = server.test_client()
        sign_in(c, r, role, name=f"ros-{role}")
        res = c.get("/api/roster")
        assert res.status_code == 200, role
        body = res.get_json()
        assert body["now"]["shift"] == "night" and body["now"]["date"] == "2026-11-25"
        assert body["now"]["from"] == ms("2026-11-25T20:00:00")
        assert body["next"]["from"] == ms("2026-11-26T08:00:00")
        assert body["roster"]["rotation"] == demo()["rotation"]
        if role != "display":
            doc = demo()
            res = c.put("/api/roster", json=doc)
            assert res.status_code == 403 and res.get_json()["error"]
    sign_in(client, r, "commander", name="ros-cmd")
    doc = demo()
    doc["overrides"] = {"2026-11-25": {"night": "C"}}
    res = client.put("/api/roster", json=doc)
    assert res.status_code == 200, res.get_data(as_text=True)
    team_c = next(t for t in doc["teams"] if t["id"] == "C")
    assert res.get_json()["now"]["team"] == "C"
    assert client.get("/api/roster").get_json()["now"]["leader"]["user"] == team_c["leader"]
    bad = client.put("/api/roster", json={**doc, "shifts": "all day"})
    assert bad.status_code == 400
    assert bad.get_json()["code"] == "bad_roster" and bad.get_json()["where"] == "shifts"
    assert client.put("/api/roster", data="not json").status_code == 400
    entries = [e for e in client.get("/api/audit?limit=50").get_json()["entries"]
               if e["action"] == "roster.put"]
    # the commander's three, and every other role's attempt refused by the role check
    assert [e["outcome"] for e in entries if e["user"] == "ros-cmd"] == [
        "failure", "failure", "success"]
    assert {e["outcome"] for e in entries if e["user"] != "ros-cmd"} == {"denied"}


def test_ros007_demo_roster_names_the_demo_users() -> None:
    from dashboard.access.demo import DEMO_USERS

    r = roster()
    users = {name for name, _ in DEMO_USERS}
    assert {"zhiban", "zhiban2", "lingdao", "zhihui"} <= users
    people = set(r.people)
    assert {"zhiban", "zhiban2", "lingdao", "zhihui"} <= people
    officers = {u for t in r.teams.values() for u in t["officers"]}
    assert {"zhiban", "zhiban2"} <= officers
    assert all(r.name_of(u) != u for u in people)  # display names, in Chinese
