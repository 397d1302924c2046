"""The alerts API: list alerts (open first) and acknowledge one (duty officer, commander).

A user with a scope (a town, community or grid code) sees and acknowledges only alerts
about that area: the event's grid, or for an SOS without an event, the worker's.

Every acknowledgement attempt leaves exactly one audit entry with its outcome (`success`,
`duplicate`, `failure`, `denied`), as the command API does. Answers are JSON.
"""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, g, jsonify, request

from callbacks.access.auth import require
from callbacks.access.mutation import Done, mutation, scoped_alert
from callbacks.errors import error, json_body
from dashboard.access.audit import Audit
from dashboard.access.auth import ROLES
from dashboard.command.alerts import NOTE_MAX, AlertNotFound, Alerts
from dashboard.errors import Refused
from dashboard.scope import covers

LIST_DEFAULT: Final = 200
LIST_MAX: Final = 500
ID_MAX: Final = 64
ACKERS: Final = ("duty_officer", "commander")


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
            return error(400, "bad_limit", f"limit must be a whole number 1-{LIST_MAX}")
        limit, scope = int(raw), g.session.scope
        if not scope:
            return jsonify({"alerts": alerts.recent(limit)})
        found = alerts.recent(LIST_MAX)
        areas = alerts.areas(found)
        mine = [a for a in found if covers(scope, areas.get(a["id"]))]
        return jsonify({"alerts": mine[:limit]})

    @api.post("/api/alerts/<alert_id>/ack")
    @mutation("alert.ack", *ACKERS, target="alert_id")
    def ack(alert_id: str) -> Done:
        note = _note()
        before = scoped_alert(alerts, alert_id)
        try:
            alert = alerts.ack(alert_id, by=g.session.user, note=note)
        except AlertNotFound:  # dropped by the trim in between
            raise Refused("no_alert", 404, f"no alert {alert_id[:ID_MAX]!r}") from None
        duplicate = bool(before.get("acked_by"))
        detail = {"kind": alert["kind"], "event_id": alert.get("event_id"), "note": note[:200]}
        if duplicate:
            return Done({"alert": alert, "duplicate": True}, outcome="duplicate", detail=detail)
        return Done({"alert": alert}, detail=detail)

    return api


def _note() -> str:
    """The optional `note` of a JSON object body (an empty body means no note)."""
    note = json_body(optional=True).get("note")
    if note is None:
        return ""
    if not isinstance(note, str):
        raise Refused("bad_note", 400, "note must be text")
    if len(note) > NOTE_MAX:
        raise Refused("bad_note", 400, f"note is longer than {NOTE_MAX} characters")
    return note


