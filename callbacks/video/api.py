"""The video wall over HTTP (docs/VIDEO.md): the current wall, focus on an event, saved
layouts, and the cameras for an event.

Reads are for any signed-in session (a display too). Mutations need a commander or duty
officer and leave exactly one audit entry per attempt — role refusals, bad input and errors
included — like the command API. The work is done by `dashboard.video.wall.VideoWall`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from flask import Blueprint, Response, g, jsonify, request

from callbacks.access.auth import audited, current_session, out_of_scope, require, scoped_event
from dashboard.protocol import ID_RE
from dashboard.scope import only, sees
from dashboard.store import Store
from dashboard.video.cameras import for_spot
from dashboard.video.wall import VideoError, VideoWall

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
    """Routes under /api/video. A scoped user sees a tile of a camera outside their scope
    as an empty tile, and may not put one there (as if it did not exist)."""
    api = Blueprint("video", __name__)
    wall = video or VideoWall(store)

    def hidden(ids: list[Any]) -> set[str]:
        """The camera ids among `ids` the session may not see."""
        scope = g.session.scope
        wanted = [i for i in ids if isinstance(i, str)]
        if not scope or not wanted:
            return set()
        found = store.records("camera", wanted)
        return {i for i in wanted if i not in found or not sees(scope, found[i][0])}

    def masked(tiles: list[Any]) -> list[Any]:
        gone = hidden(tiles)
        return [None if t in gone else t for t in tiles] if gone else tiles

    def checked(body: dict[str, Any]) -> dict[str, Any]:
        tiles = body.get("tiles")
        if isinstance(tiles, list) and (gone := hidden(tiles)):
            out_of_scope()
            raise VideoError("no_camera", 404, f"no camera {sorted(gone)[0]!r}")
        return body

    def event_for(event_id: Any) -> dict[str, Any]:
        """The event an editor may point the wall at: 400 malformed, 404 unknown or outside
        the session's scope (as the dispatch API answers it)."""
        if not isinstance(event_id, str) or not ID_RE.match(event_id):
            raise VideoError("bad_event_id", 400, 'send {"event_id": "<event id>"}')
        event = scoped_event(store, event_id)
        if event is None:
            raise VideoError("no_event", 404, f"no event {event_id!r}")
        return event

    @api.get("/api/video/wall")
    @require()
    def get_wall() -> Any:
        current = wall.wall()
        return jsonify({**current, "tiles": masked(current["tiles"])})

    @api.put("/api/video/wall")
    def put_wall() -> Any:
        return _attempt("video.wall", "wall",
                        lambda: (wall.set_wall(checked(_body()), g.session.user), 200))

    @api.post("/api/video/focus")
    def focus() -> Any:
        body = request.get_json(silent=True)
        target = _target(body.get("event_id") if isinstance(body, dict) else None)

        def work() -> tuple[dict[str, Any], int]:
            event = event_for(_body().get("event_id"))
            done = wall.focus(event, g.session.user)
            shown = done["wall"] and {**done["wall"], "tiles": masked(done["wall"]["tiles"])}
            return {**done, "cameras": [c for c in masked(done["cameras"]) if c],
                    "wall": shown}, 200

        return _attempt("video.focus", target, work)

    @api.get("/api/video/layouts")
    @require()
    def layouts() -> Any:
        return jsonify({"layouts": [{**saved, "tiles": masked(saved["tiles"])}
                                    for saved in wall.layouts()]})

    @api.put("/api/video/layouts/<path:name>")
    def save_layout(name: str) -> Any:
        return _attempt("video.layout.save", _target(name),
                        lambda: (wall.save_layout(name, checked(_body()), g.session.user), 200))

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
        if event is None or not sees(g.session.scope, event):
            return _error(404, f"no event {event_id!r}")
        return jsonify({"event_id": event_id, "cameras": only(
            g.session.scope, for_spot(store, event["lon"], event["lat"]))})

    return api
