"""The video wall over HTTP (docs/VIDEO.md): the current wall, focus on an event, saved
layouts, and the cameras for an event.

Reads are for any signed-in session (a display too). Mutations need a commander or duty
officer and leave exactly one audit entry per attempt — role refusals, bad input and errors
included — like the command API. The work is done by `dashboard.video.wall.VideoWall`.
"""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, g, jsonify, request

from callbacks.access.auth import out_of_scope, require, scoped_event
from callbacks.access.mutation import Done, mutation
from callbacks.errors import error, json_body
from dashboard.errors import Refused
from dashboard.protocol import ID_RE
from dashboard.scope import only, sees
from dashboard.store import Store
from dashboard.video.cameras import for_spot
from dashboard.video.wall import VideoWall

EDITORS: Final = ("commander", "duty_officer")


def _focus_target() -> Any:
    """The event a focus request is about, read before the role check (for its entry)."""
    body = request.get_json(silent=True)
    return body.get("event_id") if isinstance(body, dict) else None


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
            raise Refused("no_camera", 404, f"no camera {sorted(gone)[0]!r}")
        return body

    def event_for(event_id: Any) -> dict[str, Any]:
        """The event an editor may point the wall at: 400 malformed, 404 unknown or outside
        the session's scope (as the dispatch API answers it)."""
        if not isinstance(event_id, str) or not ID_RE.match(event_id):
            raise Refused("bad_event_id", 400, 'send {"event_id": "<event id>"}')
        event = scoped_event(store, event_id)
        if event is None:
            raise Refused("no_event", 404, f"no event {event_id!r}")
        return event

    @api.get("/api/video/wall")
    @require()
    def get_wall() -> Any:
        current = wall.wall()
        return jsonify({**current, "tiles": masked(current["tiles"])})

    @api.put("/api/video/wall")
    @mutation("video.wall", *EDITORS, target=lambda: "wall")
    def put_wall() -> Done:
        return Done(wall.set_wall(checked(json_body()), g.session.user))

    @api.post("/api/video/focus")
    @mutation("video.focus", *EDITORS, target=_focus_target)
    def focus() -> Done:
        event = event_for(json_body().get("event_id"))
        done = wall.focus(event, g.session.user)
        shown = done["wall"] and {**done["wall"], "tiles": masked(done["wall"]["tiles"])}
        return Done({**done, "cameras": [c for c in masked(done["cameras"]) if c],
                     "wall": shown})

    @api.get("/api/video/layouts")
    @require()
    def layouts() -> Any:
        return jsonify({"layouts": [{**saved, "tiles": masked(saved["tiles"])}
                                    for saved in wall.layouts()]})

    @api.put("/api/video/layouts/<path:name>")
    @mutation("video.layout.save", *EDITORS, target="name")
    def save_layout(name: str) -> Done:
        return Done(wall.save_layout(name, checked(json_body()), g.session.user))

    @api.delete("/api/video/layouts/<path:name>")
    @mutation("video.layout.delete", *EDITORS, target="name")
    def delete_layout(name: str) -> Done:
        return Done({"deleted": wall.delete_layout(name, g.session.user)})

    @api.get("/api/video/cameras")
    @require()
    def cameras() -> Any:
        """The cameras for an event (`?event_id=`), covering first, then nearest: what a
        following wall shows when a new level-I/II event arrives."""
        event_id = request.args.get("event_id") or ""
        if not ID_RE.match(event_id):
            return error(400, "bad_query", "send ?event_id=<event id>")
        event = store.event(event_id)
        if event is None or not sees(g.session.scope, event):
            return error(404, "no_event", f"no event {event_id!r}")
        return jsonify({"event_id": event_id, "cameras": only(
            g.session.scope, for_spot(store, event["lon"], event["lat"]))})

    return api
