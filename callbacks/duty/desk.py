"""The duty desk's API (docs/DUTY.md, "The duty desk"): duty officers and commanders.

`GET /api/duty/queue`, `POST /api/duty/alerts/<id>/note` {text}, `POST
/api/duty/alerts/<id>/handoff` {to?}, `POST /api/duty/silence` {reason, minutes},
`DELETE /api/duty/silence`. Acknowledging is `POST /api/alerts/<id>/ack`
(callbacks/command/alerts.py).

A user with a scope sees and changes only the alarms of their area. Every change attempt
leaves exactly one audit entry with its outcome (`success`, `duplicate`, `failure`,
`denied`), as the alerts API does. Answers are JSON, errors too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

import flask
from flask import Blueprint, g, jsonify

from callbacks.access.auth import EXT_AUTH, require
from callbacks.access.mutation import Done, mutation, scoped_alert
from callbacks.errors import json_body
from dashboard.access.auth import Auth
from dashboard.city import City
from dashboard.command.alerts import AlertBusy, AlertNotFound
from dashboard.duty.desk import Duty
from dashboard.errors import Refused

ID_MAX: Final = 64
DESK_ROLES: Final = ("duty_officer", "commander")


def create_duty_api(duty: Duty, city: City | None = None) -> Blueprint:
    """The duty desk's routes over `duty`; audit entries through `callbacks.access.auth.audited`.
    With `city`, every listed alert carries `area_name` (town · community · grid) and
    `area_name_en` too."""
    api = Blueprint("duty", __name__)

    @api.get("/api/duty/queue")
    @require(*DESK_ROLES)
    def queue() -> Any:
        board = duty.board(g.session.scope)
        if city is not None:
            for name in ("queue", "handed", "recent"):
                for alert in board[name]:
                    alert["area_name"] = _area_name(city, alert.get("area"), "zh-CN")
                    alert["area_name_en"] = _area_name(city, alert.get("area"), "en")
        return jsonify(board)

    @api.post("/api/duty/alerts/<alert_id>/note")
    @mutation("duty.note", *DESK_ROLES, target="alert_id")
    def note(alert_id: str) -> Done:
        scoped_alert(duty.alerts, alert_id)
        text = json_body(optional=True).get("text")
        alert = _changed(lambda: duty.note(alert_id, by=g.session.user, text=text), alert_id)
        detail = _detail(alert)
        detail["text"] = (alert.get("notes") or [{}])[-1].get("text", "")[:200]
        return Done({"alert": alert}, detail=detail)

    @api.post("/api/duty/alerts/<alert_id>/handoff")
    @mutation("duty.handoff", *DESK_ROLES, target="alert_id")
    def handoff(alert_id: str) -> Done:
        before = scoped_alert(duty.alerts, alert_id)
        to = json_body(optional=True).get("to")
        if to is not None:
            if not isinstance(to, str) or not to:
                raise Refused("bad_to", 400, "to must be a commander's user name")
            found = _auth().user(to)
            if not found or found.get("role") != "commander":
                raise Refused("not_a_commander", 400, f"{to[:ID_MAX]!r} is not a commander")
        alert = _changed(lambda: duty.handoff(alert_id, by=g.session.user, to=to), alert_id)
        same = bool(before.get("handed_to_role")) and before.get("handed_to") == to
        detail = {**_detail(alert), "to": alert.get("handed_to")}
        if same:
            return Done({"alert": alert, "duplicate": True}, outcome="duplicate", detail=detail)
        return Done({"alert": alert}, detail=detail)

    @api.post("/api/duty/silence")
    @mutation("duty.silence", *DESK_ROLES)
    def silence() -> Done:
        body = json_body(optional=True)
        sounding = duty.board(g.session.scope)["sounding"]
        state = duty.silence(by=g.session.user, reason=body.get("reason"),
                             minutes=body.get("minutes"), sounding=sounding)
        return Done({"silence": state}, detail={"reason": state["reason"],
                                                "minutes": state["minutes"],
                                                "covers": len(state["covers"])})

    @api.delete("/api/duty/silence")
    @mutation("duty.unsilence", *DESK_ROLES)
    def unsilence() -> Done:
        before = duty.unsilence()
        return Done({"silence": None, "ended": before},
                    outcome="success" if before else "duplicate",
                    detail={"reason": (before or {}).get("reason")})

    return api


def _changed(step: Callable[[], dict[str, Any]], alert_id: str) -> dict[str, Any]:
    """Run a change of an alert; the store's own refusals become the API's."""
    try:
        return step()
    except AlertNotFound:  # dropped by the trim in between
        raise Refused("no_alert", 404, f"no alert {alert_id[:ID_MAX]!r}") from None
    except AlertBusy:
        raise Refused("busy", 409, "the alert kept changing; try again") from None


def _detail(alert: dict[str, Any]) -> dict[str, Any]:
    return {"kind": alert.get("kind"), "event_id": alert.get("event_id")}


def _auth() -> Auth:
    return cast(Auth, flask.current_app.extensions[EXT_AUTH])


def _area_name(city: City, code: str | None, lang: str) -> str | None:
    """"凤台街道 · 林家寨社区 · 第5网格" (in `lang`): a grid's own name repeats in every
    community."""
    unit = city.unit(code) if code else None
    if unit is None:
        return None
    return " · ".join([p.label(lang) for p in city.parents(code or "")] + [unit.label(lang)])
