"""One way to write a route that changes something: the role check, the work, and exactly
one audit entry whichever way out.

    @api.post("/api/events/<event_id>/verify")
    @mutation("event.verify", "duty_officer", target="event_id")
    def verify(event_id: str) -> Done:
        ...
        return Done({"task": task})

The entry is `denied` when the role check refuses (401/403), a refusal answers 403 or the
record lay outside the user's scope; `failure` for any other refusal (its code, status and
message); `error` for an exception (re-raised, so the JSON 500 handler answers); else the
`Done`'s outcome (`success`, `duplicate`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import g, jsonify

from callbacks.access.auth import audited, current_session, out_of_scope, role_refusal
from callbacks.errors import refusal
from dashboard.command.alerts import Alerts
from dashboard.errors import Refused
from dashboard.scope import covers

F = TypeVar("F", bound=Callable[..., Any])
TARGET_MAX = 64


@dataclass
class Done:
    """What a mutation route did: the JSON answer and what its audit entry says."""

    body: dict[str, Any]
    status: int = 200
    outcome: str = "success"
    detail: dict[str, Any] | None = None


def audit_target(raw: Any) -> str:
    """An audit target from user input: short, one line, `-` when there is none."""
    text = str(raw) if raw is not None else "-"
    return "".join(c for c in text if c.isprintable())[:TARGET_MAX] or "-"


def name_target(raw: Any) -> None:
    """Name the entry's target from inside the route (a new report's id)."""
    g.cc_audit_target = audit_target(raw)


def mutation(action: str, *roles: str,
             target: str | Callable[[], Any] | None = None) -> Callable[[F], F]:
    """Route decorator: the role check of `require(*roles)` and one audit entry under
    `action`; `target` names the route argument the entry is about, or reads it from the
    request (a field of the body)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def route(*args: Any, **kwargs: Any) -> Any:
            raw = target() if callable(target) else kwargs.get(target) if target else None
            g.cc_audit_target = audit_target(raw)
            found = current_session()
            if found is None or not found.may(*roles):
                audited(action, g.cc_audit_target, "denied",
                        {"status": 401 if found is None else 403})
                return role_refusal(found, roles)
            g.session = found
            try:
                done = fn(*args, **kwargs)
            except Refused as exc:
                outcome = "denied" if exc.status == 403 else "failure"
                audited(action, g.cc_audit_target, outcome,
                        {"code": exc.code, "status": exc.status, "error": exc.message[:200]})
                return refusal(exc)
            except Exception as exc:
                audited(action, g.cc_audit_target, "error", {"error": type(exc).__name__})
                raise
            audited(action, g.cc_audit_target, done.outcome, done.detail)
            return jsonify(done.body), done.status

        return cast(F, route)

    return decorate


def scoped_alert(alerts: Alerts, alert_id: str) -> dict[str, Any]:
    """The alert if the session may see it; a 404 refusal when unknown or outside the scope
    (then marked `out_of_scope` for the audit), so ids of other areas do not leak."""
    found = alerts.get(alert_id) if len(alert_id) <= TARGET_MAX else None
    scope = g.session.scope
    if found is not None and scope and not covers(scope, alerts.areas([found]).get(found["id"])):
        out_of_scope()
        found = None
    if found is None:
        raise Refused("no_alert", 404, f"no alert {audit_target(alert_id)!r}")
    return found
