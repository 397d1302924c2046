"""The replay's HTTP routes on a real Valkey: roles, scope, errors as JSON, the audit trail,
the actions' CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

import redis

from dashboard.access.audit import Audit
from dashboard.config import Settings
from dashboard.store import Store

from ..archive.test_tracks import client_for
from ..replay_util import TOWN_A, TOWN_B, ids, play
from .test_history import start_ms


def replay_app(redis_url: str, now: int) -> Any:
    """The auth guard and the replay routes on a Flask app with its own clock."""
    from flask import Flask

    from callbacks.access.auth import install_auth
    from callbacks.api import install_error_handlers
    from callbacks.archive.replay import create_replay_api
    from dashboard.access.auth import Auth

    settings = dataclasses.replace(Settings(), redis_url=redis_url)
    server = Flask(__name__)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    install_auth(server, Auth(client, settings.prefix, settings), Audit(client, settings.prefix),
                 settings)
    server.register_blueprint(create_replay_api(Store(client), settings, clock=lambda: now))
    install_error_handlers(server)
    return server


def played(r: redis.Redis, redis_url: str) -> Any:
    settings = dataclasses.replace(Settings(), redis_url=redis_url)
    story, _ = play(Store(r, settings.prefix), settings, redis_url, start_ms())
    return story, replay_app(redis_url, story.end + 60_000)


def audit_of(r: redis.Redis, action: str) -> list[dict[str, Any]]:
    return Audit(r, "cc:").entries(limit=100, action=action)


def test_rpl010_roles_moments_and_the_trail(r: redis.Redis, redis_url: str) -> None:
    story, app = played(r, redis_url)
    moment = story.moments[1]
    path = f"/api/replay/wall?at={story.at(moment)}"
    assert client_for(app, r, None).get(path).status_code == 401
    for role in ("display", "duty_officer"):
        res = client_for(app, r, role).get(path)
        assert res.status_code == 403 and res.is_json, role
    leader = client_for(app, r, "leader")
    res = leader.get(path)
    assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"
    body = res.json
    assert body["type"] == "snapshot" and body["replay"] is True
    assert {k: v["status"] for k, v in ids(body["events"]).items()} == moment.events
    span = leader.get("/api/replay/span").json
    assert span["from"] == story.t0 and span["days"] == 7 and span["to"] >= story.at(moment)
    views = audit_of(r, "replay.view")
    assert len(views) == 1 and views[0]["user"] == "t-leader-None"
    assert views[0]["detail"]["at"] == story.at(moment)
    # playing on: the changes after it, and the stretch is in the trail too
    res = leader.get(f"/api/replay/changes?after={body['seq']}&from={story.at(moment)}"
                     f"&to={story.at(moment) + 600_000}")
    assert res.status_code == 200 and res.json["changes"] and not res.json["more"]
    plays = audit_of(r, "replay.play")
    assert len(plays) == 1 and plays[0]["detail"]["from"] == story.at(moment)
    commander = client_for(app, r, "commander")
    res = commander.post("/api/replay/exported", json={"at": story.at(moment)})
    assert res.status_code == 200 and len(audit_of(r, "replay.png")) == 1


def test_rpl011_errors_are_json(r: redis.Redis, redis_url: str) -> None:
    story, app = played(r, redis_url)
    commander = client_for(app, r, "commander")
    for path, status, code in [
        ("/api/replay/wall", 400, "bad_time"),
        ("/api/replay/wall?at=soon", 400, "bad_time"),
        (f"/api/replay/wall?at={story.end + 3_600_000}", 400, "out_of_range"),
        (f"/api/replay/wall?at={story.t0 - 8 * 86_400_000}", 400, "out_of_range"),
        (f"/api/replay/wall?at={story.t0 - 60_000}", 404, "no_history"),
        (f"/api/replay/changes?after=0&from={story.t0}&to={story.t0 + 3_600_000}", 400,
         "bad_span"),
        (f"/api/replay/changes?after=x&from={story.t0}&to={story.t0}", 400, "bad_time"),
        (f"/api/replay/actions.csv?from={story.end}&to={story.t0}", 400, "bad_span"),
    ]:
        res = commander.get(path)
        assert (res.status_code, res.is_json, res.json["code"]) == (status, True, code), path
    res = commander.post("/api/replay/exported", json={"at": "now"})
    assert res.status_code == 400 and res.json["code"] == "bad_time"
    failed = audit_of(r, "replay.view")
    assert failed and all(e["outcome"] == "failure" for e in failed)


def test_rpl012_scope_holds_on_every_route(r: redis.Redis, redis_url: str) -> None:
    story, app = played(r, redis_url)
    moment = story.moments[1]
    town_a = client_for(app, r, "leader", scope=TOWN_A)
    body = town_a.get(f"/api/replay/wall?at={story.at(moment)}").json
    assert set(ids(body["events"])) == {"E1", "E3"} and set(ids(body["workers"])) == {"W1"}
    town_b = client_for(app, r, "commander", scope=TOWN_B)
    got = town_b.get(f"/api/replay/changes?after=0&from={story.t0}"
                     f"&to={story.t0 + 600_000}").json["changes"]
    assert got and {c[4].get("grid_id", "")[:9] for c in got} == {TOWN_B}
    res = town_b.get(f"/api/replay/actions.csv?from={story.t0}&to={story.end}")
    rows = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == 1 and res.headers["X-Rows"] == "0"  # the header only


def test_rpl013_the_actions_csv_names_who_did_what_when(r: redis.Redis, redis_url: str) -> None:
    story, app = played(r, redis_url)
    res = client_for(app, r, "commander").get(
        f"/api/replay/actions.csv?from={story.t0}&to={story.end}&lang=en")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    assert res.headers["Content-Disposition"].startswith("attachment; filename=replay-actions-")
    text = res.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["Time", "Action", "Event", "Task / alert", "By", "Note",
                       "Units / alert"]
    assert [(row[1], row[2], row[4]) for row in rows[1:]] == [
        ("Dispatched", "E1", "zhihui"), ("Alert acknowledged", "E3", "zhiban"),
        ("Arrived", "E1", "W1"), ("Verified", "E1", "zhiban")]
    exports = audit_of(r, "replay.export")
    assert len(exports) == 1 and exports[0]["detail"]["rows"] == 4
    zh = client_for(app, r, "leader").get(f"/api/replay/actions.csv?from={story.t0}"
                                          f"&to={story.end}").get_data(as_text=True)
    assert "派单" in zh and "确认告警" in zh


def test_rpl014_create_app_serves_the_routes(redis_url: str, r: redis.Redis) -> None:
    from app import create_app

    app = create_app(dataclasses.replace(Settings(), redis_url=redis_url))
    res = client_for(app.server, r, "commander").get("/api/replay/span")
    assert res.status_code == 200 and res.json == {"from": None, "to": None, "days": 7}


def test_rpl015_the_next_alert_and_the_next_change_of_an_event(r: redis.Redis,
                                                               redis_url: str) -> None:
    story, app = played(r, redis_url)
    leader = client_for(app, r, "leader")
    got = leader.get(f"/api/replay/next?from={story.t0}&what=alert").json
    assert got["at"] == story.t0 + 300_000  # the level I event's and the SOS' alerts
    assert leader.get(f"/api/replay/next?from={story.t0 + 300_000}&what=alert").json["at"] \
        is None  # the acknowledgement is no new alert
    changes = []
    at = story.t0
    while True:
        status = {0: "reported"}.get(len(changes), changes[-1][1] if changes else "")
        res = leader.get(f"/api/replay/next?from={at}&what=event&id=E1&status={status}").json
        if res["at"] is None:
            break
        at = res["at"]
        wall = leader.get(f"/api/replay/wall?at={at}").json
        changes.append((at - story.t0, ids(wall["events"])["E1"]["status"]))
    assert changes == [(60_000, "dispatched"), (420_000, "in_progress"), (700_000, "closed")]
    town_b = client_for(app, r, "commander", scope=TOWN_B)
    assert town_b.get(f"/api/replay/next?from={story.t0}&what=event&id=E1&status=x"
                      ).json["at"] is None  # another town's event: never found
    res = leader.get(f"/api/replay/next?from={story.t0}&what=task")
    assert res.status_code == 400 and res.json["code"] == "bad_what"


def test_rpl016_html_to_image_is_served_by_the_app_never_a_cdn(redis_url: str,
                                                              r: redis.Redis) -> None:
    from app import create_app
    from callbacks.vendor import FILES, NODE_MODULES

    app = create_app(dataclasses.replace(Settings(), redis_url=redis_url))
    client = client_for(app.server, r, "leader")
    res = client.get("/vendor/html-to-image.js")
    assert res.status_code == 200 and res.mimetype == "text/javascript"
    assert res.get_data() == (NODE_MODULES / FILES["html-to-image.js"][0]).read_bytes()
    assert b"htmlToImage" in res.get_data()
    installed = (NODE_MODULES / "html-to-image" / "package.json").read_text(encoding="utf-8")
    assert '"version": "1.11.13"' in installed
    assert client.get("/vendor/html-to-image-LICENSE.txt").status_code == 200
