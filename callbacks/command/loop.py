"""The command loop over HTTP (docs/COMMAND-LOOP.md): proposal, report, dispatch, verify,
evaluate and reading a task.

Each route checks the role (`require`) and every mutation attempt leaves exactly one audit
entry with its outcome — refusals and errors included. The work is done by `dashboard`
(the Desk); this module only turns JSON into arguments and DispatchErrors into answers.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeVar, cast
from zoneinfo import ZoneInfo

import orjson
from flask import Blueprint, Response, g, jsonify, request

from callbacks.access.auth import audited, require, scoped_event
from dashboard import protocol
from dashboard.access.audit import Audit
from dashboard.city import City, load_city
from dashboard.command.dispatch import Desk, DispatchError
from dashboard.command.plans import PlanLibrary
from dashboard.scope import covers, sees
from dashboard.store import Store

F = TypeVar("F", bound=Callable[..., Any])

REPORTERS: Final = ("commander", "duty_officer")
# What a person reports at the desk; the server gives the id, time, reporter and source, and
# the status only ever changes through the command loop's own routes.
REPORT_FIELDS: Final = frozenset({"type", "severity", "lon", "lat", "crs", "title",
                                  "description", "address"})
REPORT_SOURCE: Final = "other"  # the protocol names no desk source; a ninth overflows the cockpit


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, "status": status, **extra}), status


def _body() -> dict[str, Any]:
    """The request's JSON object, or a DispatchError (400) the route turns into JSON."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise DispatchError("bad_json", 400, "send a JSON object (Content-Type: "
                            "application/json)")
    return body


def _scoped(store: Store, event_id: str) -> dict[str, Any]:
    """The event, or the desk's own 404 for one that is unknown *or* outside the session's
    scope: the answer must not tell which, so ids of other areas do not leak."""
    event = scoped_event(store, event_id)
    if event is None:
        raise DispatchError("no_event", 404, f"no event {event_id!r}")
    return event


def _report(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of a desk report; anything else (an id, a time, a status) is refused, so a
    report can only create an event, never rewrite one."""
    other = sorted(str(k)[:32] for k in body if k not in REPORT_FIELDS)
    if other:
        raise DispatchError("not_reportable", 400, f"a report takes only "
                            f"{', '.join(sorted(REPORT_FIELDS))}; not {', '.join(other[:8])}")
    return dict(body)


def _task_seen(store: Store, task: dict[str, Any]) -> bool:
    """A task lies where its event lies (older tasks carry no grid: ask the event)."""
    scope = g.session.scope
    if not scope:
        return True
    if task.get("grid_id"):
        return covers(scope, task["grid_id"])
    return sees(scope, store.event(str(task.get("event_id") or "")))


def _mutation(action: str, *roles: str) -> Callable[[F], F]:
    """`require(*roles)`, plus an audit entry when the role check refuses (the route writes
    its own entry for everything past the check, through `_run`, under the same `action`)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def entered(*args: Any, **kwargs: Any) -> Any:
            g.cc_route_entered = True  # past the role check: the route audits itself
            g.cc_action = action
            return fn(*args, **kwargs)

        guarded = require(*roles)(entered)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            out = guarded(*args, **kwargs)
            if not g.get("cc_route_entered") and isinstance(out, tuple) and \
                    out[1] in (401, 403):
                audited(action, str(kwargs.get("event_id", "-")),
                        "denied", {"status": out[1]})
            return out

        return cast(F, wrapper)

    return decorate


def _run(target: Callable[[], str],
         work: Callable[[], tuple[dict[str, Any], int, str]]) -> tuple[Response, int]:
    """Run one mutation and audit its outcome under the route's `_mutation` action:
    success/duplicate, failure (refused with a code) or error (an exception; re-raised for
    the JSON 500 handler)."""
    action: str = g.cc_action
    try:
        body, status, outcome = work()
    except DispatchError as exc:
        outcome = "denied" if exc.status == 403 else "failure"
        audited(action, target(), outcome, {"code": exc.code, "status": exc.status,
                                            "error": exc.message[:200]})
        return jsonify({**exc.to_dict(), "status": exc.status}), exc.status
    except Exception as exc:
        audited(action, target(), "error", {"error": type(exc).__name__})
        raise
    detail = {"task_id": body["task"]["id"]} if isinstance(body.get("task"), dict) else None
    audited(action, target(), outcome, detail)
    return jsonify(body), status


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
        except DispatchError as exc:
            return jsonify({**exc.to_dict(), "status": exc.status}), exc.status

    @api.post("/api/events")
    @_mutation("event.report", *REPORTERS)
    def report() -> Any:
        target = ["-"]

        def work() -> tuple[dict[str, Any], int, str]:
            message = _report(_body())
            now = int(desk.clock())
            stamp = datetime.fromtimestamp(now / 1000, tz).strftime("%Y%m%d%H%M%S")
            message.update(id=f"R{stamp}-{secrets.token_hex(4)}", ts=now,
                           reporter=g.session.user, source=REPORT_SOURCE)
            target[0] = message["id"]
            raw = orjson.dumps(message)
            parsed = protocol.parse("event", raw, now)
            if isinstance(parsed, protocol.Rejected):
                raise DispatchError(parsed.code, 400, parsed.reason)
            scope = g.session.scope
            if scope:
                record = parsed.record
                grid = area.locate(record["lon"], record["lat"])
                if not covers(scope, grid):
                    raise DispatchError("out_of_scope", 403, f"the place lies outside your "
                                        f"scope {scope}")
            # ingest validates it again and stores it: one path for every source
            if not store.r.publish(store.key("event"), raw):
                raise DispatchError("ingest_down", 503,
                                    "ingest is not listening; the report was not taken")
            return {"event": parsed.record}, 201, "success"

        return _run(lambda: target[0], work)

    @api.post("/api/events/<event_id>/dispatch")
    @_mutation("event.dispatch", "commander")
    def dispatch(event_id: str) -> Any:
        def work() -> tuple[dict[str, Any], int, str]:
            _scoped(store, event_id)
            body = _body()
            task, duplicate = desk.dispatch(
                event_id, by=g.session.user, key=body.get("key"),
                assignees=body.get("assignees"), plan_id=body.get("plan_id"),
                note=body.get("note") or "", override_reason=body.get("override_reason") or "",
                scope=g.session.scope)
            if duplicate:
                return {"task": task, "duplicate": True}, 200, "duplicate"
            return {"task": task}, 201, "success"

        return _run(lambda: event_id, work)

    @api.post("/api/events/<event_id>/verify")
    @_mutation("event.verify", "duty_officer")
    def verify(event_id: str) -> Any:
        def work() -> tuple[dict[str, Any], int, str]:
            _scoped(store, event_id)
            body = _body()
            task = desk.verify(event_id, by=g.session.user, passed=body.get("passed"),
                               note=body.get("note") or "")
            return {"task": task}, 200, "success"

        return _run(lambda: event_id, work)

    @api.post("/api/events/<event_id>/evaluate")
    @_mutation("event.evaluate", "duty_officer")
    def evaluate(event_id: str) -> Any:
        def work() -> tuple[dict[str, Any], int, str]:
            _scoped(store, event_id)
            body = _body()
            task = desk.evaluate(event_id, by=g.session.user, score=body.get("score"),
                                 note=body.get("note") or "")
            return {"task": task}, 200, "success"

        return _run(lambda: event_id, work)

    @api.get("/api/tasks/<task_id>")
    @require()
    def task(task_id: str) -> Any:
        found = desk.task(task_id)
        if found is None or not _task_seen(store, found):
            return _error(404, f"no task {task_id!r}")
        return jsonify({"task": found})

    return api
