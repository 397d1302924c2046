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
from flask import Blueprint, Response, g, jsonify, request

from callbacks.access.auth import EXT_AUTH, audited, out_of_scope, require
from dashboard.access.auth import Auth
from dashboard.city import City
from dashboard.command.alerts import AlertBusy, AlertNotFound
from dashboard.duty.desk import Duty, DutyError
from dashboard.scope import covers

ID_MAX: Final = 64
DESK_ROLES: Final = ("duty_officer", "commander")


def create_duty_api(duty: Duty, city: City | None = None) -> Blueprint:
    """The duty desk's routes over `duty`; audit entries through `callbacks.access.auth.audited`.
    With `city`, every listed alert carries `area_name` too (town · community · grid)."""
    api = Blueprint("duty", __name__)

    @api.get("/api/duty/queue")
    @require(*DESK_ROLES)
    def queue() -> Any:
        board = duty.board(g.session.scope)
        if city is not None:
            for name in ("queue", "handed", "recent"):
                for alert in board[name]:
                    alert["area_name"] = _area_name(city, alert.get("area"))
        return jsonify(board)

    def guarded(action: str, fn: Callable[..., tuple[Response, int]]) -> Callable[..., Any]:
        """`fn` behind the role check; a refusal there is audited as `denied` too."""
        inner = require(*DESK_ROLES)(fn)

        def route(**kwargs: Any) -> Any:
            out = inner(**kwargs)
            if isinstance(out, tuple) and out[1] in (401, 403) and not g.get("duty_audited"):
                audited(action, str(kwargs.get("alert_id", "-"))[:ID_MAX], "denied",
                        {"status": out[1]})
            return out

        route.__name__ = f"duty_{action.replace('.', '_')}"
        return route

    def note(alert_id: str) -> tuple[Response, int]:
        def act() -> tuple[dict[str, Any], str]:
            body = _body()
            alert = duty.note(alert_id, by=g.session.user, text=body.get("text"))
            return {"alert": alert}, "success"
        return _on_alert(duty, "duty.note", alert_id, act)

    def handoff(alert_id: str) -> tuple[Response, int]:
        def act() -> tuple[dict[str, Any], str]:
            to = _body().get("to")
            if to is not None:
                if not isinstance(to, str) or not to:
                    raise DutyError(400, "bad_to", "to must be a commander's user name")
                found = _auth().user(to)
                if not found or found.get("role") != "commander":
                    raise DutyError(400, "not_a_commander", f"{to[:ID_MAX]!r} is not a commander")
            before = duty.alerts.get(alert_id) or {}
            alert = duty.handoff(alert_id, by=g.session.user, to=to)
            same = bool(before.get("handed_to_role")) and before.get("handed_to") == to
            return {"alert": alert, **({"duplicate": True} if same else {})}, \
                "duplicate" if same else "success"
        return _on_alert(duty, "duty.handoff", alert_id, act)

    def silence() -> tuple[Response, int]:
        g.duty_audited = True
        try:
            body = _body()
            minutes = body.get("minutes")
            sounding = duty.board(g.session.scope)["sounding"]
            state = duty.silence(by=g.session.user, reason=body.get("reason"),
                                 minutes=minutes, sounding=sounding)
        except DutyError as exc:
            audited("duty.silence", "-", "failure", {"code": exc.code})
            return _error(exc.status, exc.code, exc.message)
        except Exception as exc:
            audited("duty.silence", "-", "error", {"error": type(exc).__name__})
            raise
        audited("duty.silence", "-", "success",
                {"reason": state["reason"], "minutes": state["minutes"],
                 "covers": len(state["covers"])})
        return jsonify({"silence": state}), 200

    def unsilence() -> tuple[Response, int]:
        g.duty_audited = True
        before = duty.unsilence()
        audited("duty.unsilence", "-", "success" if before else "duplicate",
                {"reason": (before or {}).get("reason")})
        return jsonify({"silence": None, "ended": before}), 200

    api.add_url_rule("/api/duty/alerts/<alert_id>/note", view_func=guarded("duty.note", note),
                     methods=["POST"])
    api.add_url_rule("/api/duty/alerts/<alert_id>/handoff",
                     view_func=guarded("duty.handoff", handoff), methods=["POST"])
    api.add_url_rule("/api/duty/silence", view_func=guarded("duty.silence", silence),
                     methods=["POST"])
    api.add_url_rule("/api/duty/silence", view_func=guarded("duty.unsilence", unsilence),
                     methods=["DELETE"], endpoint="duty_unsilence")
    return api


def _on_alert(duty: Duty, action: str, alert_id: str,
              act: Callable[[], tuple[dict[str, Any], str]]) -> tuple[Response, int]:
    """Find the alert, check the user's scope, run `act`; one audit entry either way."""
    target = alert_id[:ID_MAX]
    g.duty_audited = True
    try:
        before = duty.alerts.get(alert_id) if len(alert_id) <= ID_MAX else None
        scope = g.session.scope
        # outside the scope answers as unknown: ids of other areas do not leak
        if before is not None and scope and not covers(
                scope, duty.alerts.areas([before]).get(before["id"])):
            out_of_scope()
            before = None
        if before is None:
            raise DutyError(404, "no_alert", f"no alert {target!r}")
        try:
            body, outcome = act()
        except AlertNotFound:  # dropped by the trim in between
            raise DutyError(404, "no_alert", f"no alert {target!r}") from None
        except AlertBusy:
            raise DutyError(409, "busy", "the alert kept changing; try again") from None
    except DutyError as exc:
        outcome = "denied" if exc.status == 403 else "failure"
        audited(action, target, outcome, {"code": exc.code, "status": exc.status})
        return _error(exc.status, exc.code, exc.message)
    except Exception as exc:  # the JSON 500 handler answers; the attempt is still on record
        audited(action, target, "error", {"error": type(exc).__name__})
        raise
    alert = body["alert"]
    detail: dict[str, Any] = {"kind": alert.get("kind"), "event_id": alert.get("event_id")}
    if action == "duty.note":
        detail["text"] = (alert.get("notes") or [{}])[-1].get("text", "")[:200]
    else:
        detail["to"] = alert.get("handed_to")
    audited(action, target, outcome, detail)
    return jsonify(body), 200


def _body() -> dict[str, Any]:
    """The request's JSON object (an empty body is an empty object)."""
    if not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise DutyError(400, "bad_json", "send a JSON object")
    return body


def _auth() -> Auth:
    return cast(Auth, flask.current_app.extensions[EXT_AUTH])


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": message, "code": code, "status": status}), status


def _area_name(city: City, code: str | None) -> str | None:
    """"凤台街道 · 林家寨社区 · 第5网格": a grid's own name repeats in every community."""
    unit = city.unit(code) if code else None
    if unit is None:
        return None
    return " · ".join([p.name for p in city.parents(code or "")] + [unit.name])
