"""The command loop over HTTP (docs/COMMAND-LOOP.md): proposal, report, dispatch, verify,
evaluate and reading a task.

Each route checks the role (`require`) and every mutation attempt leaves exactly one audit
entry with its outcome — refusals and errors included. The work is done by `dashboard`
(the Desk); this module only turns JSON into arguments and refusals into answers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

import orjson
from flask import Blueprint, g, jsonify

from callbacks.access.auth import require, scoped_event
from callbacks.access.mutation import Done, mutation, name_target
from callbacks.errors import error, json_body, refusal
from dashboard import protocol
from dashboard.access.audit import Audit
from dashboard.city import City, load_city
from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.errors import Refused
from dashboard.scope import covers, sees
from dashboard.store import Store

F = TypeVar("F", bound=Callable[..., Any])

REPORTERS: Final = ("commander", "duty_officer")
# What a person reports at the desk; the server gives the id, time, reporter and source, and
# the status only ever changes through the command loop's own routes.
REPORT_FIELDS: Final = frozenset({"type", "severity", "lon", "lat", "crs", "title",
                                  "description", "address"})
REPORT_SOURCE: Final = "other"  # the protocol names no desk source; a ninth overflows the cockpit


def _scoped(store: Store, event_id: str) -> dict[str, Any]:
    """The event, or the desk's own 404 for one that is unknown *or* outside the session's
    scope: the answer must not tell which, so ids of other areas do not leak."""
    event = scoped_event(store, event_id)
    if event is None:
        raise Refused("no_event", 404, f"no event {event_id!r}")
    return event


def _report(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of a desk report; anything else (an id, a time, a status) is refused, so a
    report can only create an event, never rewrite one."""
    other = sorted(str(k)[:32] for k in body if k not in REPORT_FIELDS)
    if other:
        raise Refused("not_reportable", 400, f"a report takes only "
                            f"{', '.join(sorted(REPORT_FIELDS))}; not {', '.join(other[:8])}")
    return dict(body)


def _task_id(task: Any) -> dict[str, Any] | None:
    """The audit detail of a task-changing step."""
    return {"task_id": task["id"]} if isinstance(task, dict) else None


def _task_seen(store: Store, task: dict[str, Any]) -> bool:
    """A task lies where its event lies (older tasks carry no grid: ask the event)."""
    scope = g.session.scope
    if not scope:
        return True
    if task.get("grid_id"):
        return covers(scope, task["grid_id"])
    return sees(scope, store.event(str(task.get("event_id") or "")))


def create_command_api(store: Store, desk: Desk, plans: PlanLibrary, audit: Audit,
                       city: City | None = None) -> Blueprint:
    """The command loop's routes of docs/HTTP.md except `/api/alerts*`."""
    api = Blueprint("command", __name__)
    settings = desk.settings
    area = city or load_city(settings.city)
    tz = ZoneInfo(settings.timezone)

    @api.get("/api/events/<event_id>/proposal")
    @require("commander")
    def proposal(event_id: str) -> Any:
        try:
            _scoped(store, event_id)
            return jsonify(desk.proposal(event_id, g.session.scope))
        except Refused as exc:
            return refusal(exc)

    @api.post("/api/events")
    @mutation("event.report", *REPORTERS)
    def report() -> Done:
        message = _report(json_body())
        now = int(desk.clock())
        stamp = datetime.fromtimestamp(now / 1000, tz).strftime("%Y%m%d%H%M%S")
        message.update(id=f"R{stamp}-{secrets.token_hex(4)}", ts=now,
                       reporter=g.session.user, source=REPORT_SOURCE)
        name_target(message["id"])
        raw = orjson.dumps(message)
        parsed = protocol.parse("event", raw, now)
        if isinstance(parsed, protocol.Rejected):
            raise Refused(parsed.code, 400, parsed.reason)
        scope = g.session.scope
        if scope:
            record = parsed.record
            grid = area.locate(record["lon"], record["lat"])
            if not covers(scope, grid):
                raise Refused("out_of_scope", 403, f"the place lies outside your scope {scope}")
        # ingest validates it again and stores it: one path for every source
        if not store.r.publish(store.key("event"), raw):
            raise Refused("ingest_down", 503, "ingest is not listening; the report was not taken")
        return Done({"event": parsed.record}, 201)

    @api.post("/api/events/<event_id>/dispatch")
    @mutation("event.dispatch", "commander", target="event_id")
    def dispatch(event_id: str) -> Done:
        _scoped(store, event_id)
        body = json_body()
        task, duplicate = desk.dispatch(
            event_id, by=g.session.user, key=body.get("key"),
            assignees=body.get("assignees"), plan_id=body.get("plan_id"),
            note=body.get("note") or "", override_reason=body.get("override_reason") or "",
            scope=g.session.scope)
        if duplicate:
            return Done({"task": task, "duplicate": True}, 200, "duplicate", _task_id(task))
        return Done({"task": task}, 201, detail=_task_id(task))

    @api.post("/api/events/<event_id>/verify")
    @mutation("event.verify", "duty_officer", target="event_id")
    def verify(event_id: str) -> Done:
        _scoped(store, event_id)
        body = json_body()
        task = desk.verify(event_id, by=g.session.user, passed=body.get("passed"),
                           note=body.get("note") or "")
        return Done({"task": task}, detail=_task_id(task))

    @api.post("/api/events/<event_id>/evaluate")
    @mutation("event.evaluate", "duty_officer", target="event_id")
    def evaluate(event_id: str) -> Done:
        _scoped(store, event_id)
        body = json_body()
        task = desk.evaluate(event_id, by=g.session.user, score=body.get("score"),
                             note=body.get("note") or "")
        return Done({"task": task}, detail=_task_id(task))

    @api.get("/api/tasks/<task_id>")
    @require()
    def task(task_id: str) -> Any:
        found = desk.task(task_id)
        if found is None or not _task_seen(store, found):
            return error(404, "no_task", f"no task {task_id!r}")
        return jsonify({"task": found})

    return api
