"""The video wall's state (docs/VIDEO.md): the current wall and the saved layouts.

`Pvideo:wall` is one JSON string `{grid, tiles, follow, event_id, focus_ts, by, ts}`;
`Pvideo:layouts` a hash name → `{name, grid, tiles, by, ts}` (at most `LAYOUTS_MAX`).
`tiles` are the tiles a person filled (pinned until they clear them); `event_id` is the
event a commander pointed the wall at, at `focus_ts`. What the other tiles show (that
event's cameras, or a tour) each screen works out itself (assets/js/cc-68-wallpick.js).
Every change is written and announced in one Lua script, so the `video` frame in the change
log is in the same order as the writes (two screens saving at once end on the state their
frames say).

Frames (`Store.emit("video", "upsert", data)`): `data.id` is `"wall"` (the whole new wall),
`"focus"` (`{event_id, cameras, follow, wall}`: `wall` is the new wall when following, else
null) or `"layouts"` (`{name, deleted}`: a saved layout changed; screens re-read the list).

Camera ids are checked for form only: a tile may name a camera the feed has not sent (yet),
or one removed since a layout was saved; the tile then says so instead of refusing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Final

from dashboard import lua
from dashboard.errors import Refused
from dashboard.protocol import ID_RE
from dashboard.store import Store
from dashboard.video.cameras import for_spot

GRIDS: Final = (1, 4, 9, 16)
TILES_MAX: Final = 16
NAME_MAX: Final = 40
LAYOUTS_MAX: Final = 200
DEFAULT_GRID: Final = 4
# Two writers rarely race on the wall; give up (500) after this many lost compare-and-sets.
CAS_TRIES: Final = 8

# ARGV[3] the wall as read ('' = none), ARGV[4] the new wall ('' = unchanged), ARGV[5] the
# frame's data. Returns the frame's seq, or false when someone wrote the wall in between.
_WALL_LUA: Final = lua.source(__file__, "wall_set.lua")
# ARGV[3] name, ARGV[4] layout JSON, ARGV[5] cap, ARGV[6] frame data. -1 = full.
_SAVE_LUA: Final = lua.source(__file__, "layout_save.lua")
# ARGV[3] name, ARGV[4] frame data. -1 = no such layout.
_DELETE_LUA: Final = lua.source(__file__, "layout_delete.lua")


def _bad(message: str, code: str = "bad_request") -> Refused:
    return Refused(code, 400, message)


def check_grid(value: Any) -> int:
    """1, 4, 9 or 16 (an int, not a bool or a string)."""
    if type(value) is not int or value not in GRIDS:
        raise _bad(f"grid must be one of {', '.join(map(str, GRIDS))}", "bad_grid")
    return value


def check_tiles(value: Any) -> list[str | None]:
    """≤ 16 camera ids or nulls, each camera at most once; trailing empty tiles dropped."""
    if not isinstance(value, list) or len(value) > TILES_MAX:
        raise _bad(f"tiles must be a list of at most {TILES_MAX} camera ids or nulls",
                   "bad_tiles")
    seen: set[str] = set()
    for item in value:
        if item is None:
            continue
        if not isinstance(item, str) or not ID_RE.match(item):
            raise _bad("each tile is a camera id (letters, digits, _ . : -, up to 64) or null",
                       "bad_tiles")
        if item in seen:
            raise _bad(f"camera {item} is on two tiles", "duplicate_tile")
        seen.add(item)
    tiles = list(value)
    while tiles and tiles[-1] is None:
        tiles.pop()
    return tiles


def check_name(value: Any) -> str:
    """A layout name: 1–40 characters after trimming, no control characters, no slash."""
    if not isinstance(value, str):
        raise _bad("a layout name is text", "bad_name")
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX or "/" in name or \
            any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise _bad(f"a layout name is 1–{NAME_MAX} characters, without '/' or control "
                   "characters", "bad_name")
    return name


def _event_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not ID_RE.match(value):
        raise _bad("event_id must be an event id or null", "bad_event_id")
    return value


def default_wall() -> dict[str, Any]:
    """The wall before anyone set one: four tiles nobody pinned, following events."""
    return {"grid": DEFAULT_GRID, "tiles": [], "follow": True, "event_id": None,
            "focus_ts": None, "by": None, "ts": 0}


def _upgraded(stored: dict[str, Any]) -> dict[str, Any]:
    """A wall written before tiles meant pinned ones (no `focus_ts`): its tiles with an
    `event_id` were that event's cameras put there by a focus, not a person's choice."""
    if "focus_ts" in stored or not stored.get("event_id"):
        return stored
    return {**stored, "tiles": [], "focus_ts": stored.get("ts")}


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class VideoWall:
    """Reads and writes of the video wall through `store` (its Redis and change log)."""

    def __init__(self, store: Store, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.clock = clock or (lambda: time.time() * 1000)
        self._wall_cas = store.script(_WALL_LUA)
        self._save = store.script(_SAVE_LUA)
        self._delete = store.script(_DELETE_LUA)

    # -- the current wall ---------------------------------------------------------------

    def _read(self) -> tuple[str, dict[str, Any]]:
        raw = self.store.r.get(self.store.key("video:wall"))
        text = raw.decode() if isinstance(raw, bytes) else (raw or "")
        try:
            stored = json.loads(text) if text else {}
        except ValueError:
            stored = {}  # a hand-edited key: start again from the default
        return text, {**default_wall(), **(_upgraded(stored) if isinstance(stored, dict) else {})}

    def wall(self) -> dict[str, Any]:
        return self._read()[1]

    def set_wall(self, body: dict[str, Any], by: str) -> dict[str, Any]:
        """Change what `body` names (`grid`, `tiles`, `event_id`, `follow`). `tiles` are the
        pinned ones and leave the followed event alone; an `event_id` sent is a focus (now).
        Returns the new wall; frame `video`/wall."""
        unknown = set(body) - {"grid", "tiles", "event_id", "follow"}
        if unknown:
            raise _bad(f"unknown field(s): {', '.join(sorted(unknown))}")
        change: dict[str, Any] = {}
        now = int(self.clock())  # one moment: a focus sent is at the change's own ts
        if "grid" in body:
            change["grid"] = check_grid(body["grid"])
        if "tiles" in body:
            change["tiles"] = check_tiles(body["tiles"])
        if "event_id" in body:
            change["event_id"] = _event_id(body["event_id"])
            change["focus_ts"] = now if change["event_id"] else None
        if "follow" in body:
            if not isinstance(body["follow"], bool):
                raise _bad("follow must be true or false", "bad_follow")
            change["follow"] = body["follow"]
        if not change:
            raise _bad("send at least one of grid, tiles, event_id, follow")
        for _ in range(CAS_TRIES):
            text, current = self._read()
            wall = {**current, **change, "by": by, "ts": now}
            if self._wall_cas(text, _dumps(wall), _dumps({"id": "wall", **wall})):
                return wall
        raise Refused("busy", 503, "the wall kept changing; try again")

    def focus(self, event: dict[str, Any], by: str) -> dict[str, Any]:
        """Point the wall at an event: its cameras (covering first, then nearest). When the
        wall follows events it now follows this one (unless it has no camera near): the
        tiles nobody pinned show its cameras; frame `video`/focus either way.
        Returns `{event_id, cameras: [ids], wall}` (`wall` null when not following)."""
        cameras = [c["id"] for c in for_spot(self.store, event["lon"], event["lat"])]
        for _ in range(CAS_TRIES):
            text, current = self._read()
            now = int(self.clock())
            wall: dict[str, Any] | None = None
            # an event with no camera near leaves the wall as it is rather than blank
            if current["follow"] and cameras:
                wall = {**current, "event_id": event["id"], "focus_ts": now, "by": by,
                        "ts": now}
            frame = {"id": "focus", "event_id": event["id"], "cameras": cameras,
                     "follow": bool(current["follow"]), "wall": wall, "by": by, "ts": now}
            if self._wall_cas(text, _dumps(wall) if wall else "", _dumps(frame)):
                return {"event_id": event["id"], "cameras": cameras, "wall": wall}
        raise Refused("busy", 503, "the wall kept changing; try again")

    # -- saved layouts ------------------------------------------------------------------

    def layouts(self) -> list[dict[str, Any]]:
        """Every saved layout, by name."""
        out = []
        for raw in self.store.r.hvals(self.store.key("video:layouts")):
            try:
                layout = json.loads(raw)
            except ValueError:
                continue
            if isinstance(layout, dict) and isinstance(layout.get("name"), str):
                out.append(layout)
        return sorted(out, key=lambda x: x["name"])

    def save_layout(self, name: Any, body: dict[str, Any], by: str) -> dict[str, Any]:
        """Save (or replace) a layout under `name`; a new name past `LAYOUTS_MAX` is 409."""
        name = check_name(name)
        if "grid" not in body or "tiles" not in body:
            raise _bad("send {\"grid\": 1|4|9|16, \"tiles\": [camera id or null, …]}")
        unknown = set(body) - {"grid", "tiles", "name"}
        if unknown:
            raise _bad(f"unknown field(s): {', '.join(sorted(unknown))}")
        layout = {"name": name, "grid": check_grid(body["grid"]),
                  "tiles": check_tiles(body["tiles"]), "by": by, "ts": int(self.clock())}
        frame = {"id": "layouts", "name": name, "deleted": False, "by": by, "ts": layout["ts"]}
        if int(self._save(name, _dumps(layout), LAYOUTS_MAX, _dumps(frame))) < 0:
            raise Refused("too_many_layouts", 409, f"at most {LAYOUTS_MAX} saved layouts; "
                             "delete one first")
        return layout

    def delete_layout(self, name: Any, by: str) -> str:
        name = check_name(name)
        frame = {"id": "layouts", "name": name, "deleted": True, "by": by,
                 "ts": int(self.clock())}
        if int(self._delete(name, _dumps(frame))) < 0:
            raise Refused("no_layout", 404, f"no saved layout {name!r}")
        return name
