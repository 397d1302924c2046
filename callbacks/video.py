"""The video wall over HTTP (docs/VIDEO.md): the current wall, focus on an event, saved
layouts, and the cameras for an event.

Reads are for any signed-in session (a display too). Mutations need a commander or duty
officer and leave exactly one audit entry per attempt — role refusals, bad input and errors
included — like the command API. The work is done by `dashboard.video.VideoWall`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from flask import Blueprint, Response, g, jsonify, request

from callbacks.auth import audited, current_session, require
from callbacks.command import in_scope
from dashboard.cameras import for_spot
from dashboard.protocol import ID_RE
from dashboard.store import Store
from dashboard.video import VideoError, VideoWall

EDITORS: Final = ("commander", "duty_officer")


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, "status": status, **extra}), status


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise VideoError("bad_json", 400, "send a JSON object (Content-Type: application/json)")
    return body


def _attempt(action: str, target: str,
             work: Callable[[], tuple[dict[str, Any], int]]) -> tuple[Response, int]:
    """Check the role, run `work` and write its one audit entry: denied (401/403 or out of
    scope), failure (refused with a code), error (an exception, re-raised for the JSON 500
    handler) or success."""
    found = current_session()
    if found is None or not found.may(*EDITORS):
        status = 401 if found is None else 403
        audited(action, target, "denied", {"status": status})
        if found is None:
            return _error(401, "sign in first")
        return _error(403, f"needs role {' or '.join(EDITORS)}", role=found.role)
    g.session = found
    try:
        body, status = work()
    except VideoError as exc:
        outcome = "denied" if exc.status == 403 else "failure"
        audited(action, target, outcome, {"code": exc.code, "status": exc.status,
                                          "error": exc.message[:200]})
        return jsonify(exc.to_dict()), exc.status
    except Exception as exc:
        audited(action, target, "error", {"error": type(exc).__name__})
        raise
    audited(action, target, "success")
    return jsonify(body), status


def _target(raw: Any) -> str:
    """An audit target from user input: short, one line."""
    text = str(raw) if raw is not None else "-"
    return "".join(c for c in text if c.isprintable())[:64] or "-"


def create_video_api(store: Store, video: VideoWall | None = None) -> Blueprint:
    """Routes under /api/video."""
    api = Blueprint("video", __name__)
    wall = video or VideoWall(store)

    def event_for(event_id: Any) -> dict[str, Any]:
        """The event an editor may point the wall at: 400 malformed, 404 unknown, 403
        outside the session's scope (as the dispatch API refuses it)."""
        if not isinstance(event_id, str) or not ID_RE.match(event_id):
            raise VideoError("bad_event_id", 400, 'send {"event_id": "<event id>"}')
        event = store.event(event_id)
        if event is None:
            raise VideoError("no_event", 404, f"no event {event_id!r}")
        scope = g.session.scope
        if scope and not in_scope(event, scope):
            raise VideoError("out_of_scope", 403, f"event {event_id} is outside your scope "
                             f"{scope}")
        return event

    @api.get("/api/video/wall")
    @require()
    def get_wall() -> Any:
        return jsonify(wall.wall())

    @api.put("/api/video/wall")
    def put_wall() -> Any:
        return _attempt("video.wall", "wall",
                        lambda: (wall.set_wall(_body(), g.session.user), 200))

    @api.post("/api/video/focus")
    def focus() -> Any:
        body = request.get_json(silent=True)
        target = _target(body.get("event_id") if isinstance(body, dict) else None)

        def work() -> tuple[dict[str, Any], int]:
            event = event_for(_body().get("event_id"))
            return wall.focus(event, g.session.user), 200

        return _attempt("video.focus", target, work)

    @api.get("/api/video/layouts")
    @require()
    def layouts() -> Any:
        return jsonify({"layouts": wall.layouts()})

    @api.put("/api/video/layouts/<path:name>")
    def save_layout(name: str) -> Any:
        return _attempt("video.layout.save", _target(name),
                        lambda: (wall.save_layout(name, _body(), g.session.user), 200))

    @api.delete("/api/video/layouts/<path:name>")
    def delete_layout(name: str) -> Any:
        return _attempt("video.layout.delete", _target(name),
                        lambda: ({"deleted": wall.delete_layout(name, g.session.user)}, 200))

    @api.get("/api/video/cameras")
    @require()
    def cameras() -> Any:
        """The cameras for an event (`?event_id=`), covering first, then nearest: what a
        following wall shows when a new level-I/II event arrives."""
        event_id = request.args.get("event_id") or ""
        if not ID_RE.match(event_id):
            return _error(400, "send ?event_id=<event id>")
        event = store.event(event_id)
        if event is None:
            return _error(404, f"no event {event_id!r}")
        return jsonify({"event_id": event_id,
                        "cameras": for_spot(store, event["lon"], event["lat"])})

    return api
