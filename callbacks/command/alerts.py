"""The alerts API: list alerts (open first) and acknowledge one (duty officer, commander).

A user with a scope (a town, community or grid code) sees and acknowledges only alerts
about that area: the event's grid, or for an SOS without an event, the worker's.

Every acknowledgement attempt leaves exactly one audit entry with its outcome (`success`,
`duplicate`, `failure`, `denied`), as the command API does. Answers are JSON.
"""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, Response, g, jsonify, request

from callbacks.access.auth import audited, out_of_scope, require
from dashboard.access.audit import Audit
from dashboard.access.auth import ROLES
from dashboard.command.alerts import NOTE_MAX, AlertNotFound, Alerts
from dashboard.scope import covers

LIST_DEFAULT: Final = 200
LIST_MAX: Final = 500
ID_MAX: Final = 64
ACKERS: Final = ("duty_officer", "commander")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def create_alerts_api(alerts: Alerts, audit: Audit) -> Blueprint:
    """`GET /api/alerts` (any signed-in role) and `POST /api/alerts/<id>/ack`. Audit entries
    go through `callbacks.access.auth.audited`, i.e. to the `audit` given to install_auth."""
    api = Blueprint("alerts", __name__)
    del audit  # kept in the signature (docs/COMMAND-LOOP.md); `audited` knows the Audit

    @api.get("/api/alerts")
    @require(*ROLES)
    def list_alerts() -> Any:
        raw = request.args.get("limit") or str(LIST_DEFAULT)
        if not raw.isdigit() or not 1 <= int(raw) <= LIST_MAX:
            return _error(400, "bad_limit", f"limit must be a whole number 1-{LIST_MAX}")
        limit, scope = int(raw), g.session.scope
        if not scope:
            return jsonify({"alerts": alerts.recent(limit)})
        found = alerts.recent(LIST_MAX)
        areas = alerts.areas(found)
        mine = [a for a in found if (areas.get(a["id"]) or "").startswith(scope)]
        return jsonify({"alerts": mine[:limit]})

    guarded_ack = require(*ACKERS)(lambda alert_id: _ack(alerts, alert_id))

    @api.post("/api/alerts/<alert_id>/ack")
    def ack(alert_id: str) -> Any:
        out = guarded_ack(alert_id)
        if isinstance(out, tuple) and out[1] in (401, 403) and not g.get("alert_audited"):
            # refused by the role check, before the route wrote its own entry
            audited("alert.ack", alert_id[:ID_MAX], "denied", {"status": out[1]})
        return out

    return api


def _ack(alerts: Alerts, alert_id: str) -> tuple[Response, int]:
    target = alert_id[:ID_MAX]
    g.alert_audited = True  # every way out of here writes exactly one entry
    try:
        note = _note()
        before = alerts.get(alert_id) if len(alert_id) <= ID_MAX else None
        scope = g.session.scope
        # outside the scope answers as unknown: ids of other areas do not leak
        if before is not None and scope and not covers(
                scope, alerts.areas([before]).get(before["id"])):
            out_of_scope()
            before = None
        if before is None:
            raise _Refused(404, "no_alert", f"no alert {target!r}")
        try:
            alert = alerts.ack(alert_id, by=g.session.user, note=note)
        except AlertNotFound:  # dropped by the trim in between
            raise _Refused(404, "no_alert", f"no alert {target!r}") from None
    except _Refused as exc:
        outcome = "denied" if exc.status == 403 else "failure"  # as the command API does
        audited("alert.ack", target, outcome, {"code": exc.code, "status": exc.status})
        return _error(exc.status, exc.code, exc.message)
    except Exception as exc:  # the JSON 500 handler answers; the attempt is still on record
        audited("alert.ack", target, "error", {"error": type(exc).__name__})
        raise
    duplicate = bool(before.get("acked_by"))
    audited("alert.ack", target, "duplicate" if duplicate else "success",
            {"kind": alert["kind"], "event_id": alert.get("event_id"), "note": note[:200]})
    body: dict[str, Any] = {"alert": alert}
    if duplicate:
        body["duplicate"] = True
    return jsonify(body), 200


def _note() -> str:
    """The optional `note` of a JSON object body (an empty body means no note)."""
    if not request.get_data():
        return ""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _Refused(400, "bad_json", 'send a JSON object like {"note": "…"}')
    note = body.get("note")
    if note is None:
        return ""
    if not isinstance(note, str):
        raise _Refused(400, "bad_note", "note must be text")
    if len(note) > NOTE_MAX:
        raise _Refused(400, "bad_note", f"note is longer than {NOTE_MAX} characters")
    return note


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": message, "code": code, "status": status}), status
