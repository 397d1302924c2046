"""A unit's track over HTTP (docs/TRACKS.md): `GET /api/tracks/<kind>/<id>`.

`?from=&to=` are epoch ms (default: the two hours before now); the answer is
`{kind, id, from, to, points: [[ts_ms, lat, lon], …], thinned, total}` in time order. Roles
commander, duty_officer, leader; a user limited to a scope gets only units whose grid (a
worker's assigned grid, else the one it is in) lies in it. Errors are JSON: 400 bad kind,
id or span, 404 unknown unit (also one outside the scope, so ids do not leak). Reading
changes nothing: not audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import orjson
from flask import Blueprint, Response, g, request

from callbacks.access.auth import require
from callbacks.errors import error
from dashboard.archive.tracks import DEFAULT_SPAN_MS, TRACK_KINDS, Tracks, check_span
from dashboard.config import Settings
from dashboard.errors import Refused
from dashboard.scope import sees
from dashboard.store import Store

READERS: Final = ("commander", "duty_officer", "leader")
ID_MAX: Final = 64


def create_tracks_api(store: Store, settings: Settings,
                      clock: Callable[[], int] | None = None) -> Blueprint:
    """The route; `clock()` (epoch ms) is injectable so tests choose the moment."""
    tracks = Tracks(store.r, settings.prefix, settings.timezone, settings.track_keep_days)
    now_ms = clock or (lambda: int(time.time() * 1000))
    api = Blueprint("tracks", __name__)

    def when(name: str, default: int) -> int:
        raw = (request.args.get(name) or "").strip()
        if not raw:
            return default
        if not raw.isdigit() or len(raw) > 15:
            raise Refused("bad_time", 400, f"{name}: epoch milliseconds")
        return int(raw)

    @api.get("/api/tracks/<kind>/<unit_id>")
    @require(*READERS)
    def track(kind: str, unit_id: str) -> Any:
        try:
            if kind not in TRACK_KINDS:
                raise Refused("bad_kind", 400, f"kind: one of {', '.join(TRACK_KINDS)}")
            if not unit_id or len(unit_id) > ID_MAX or not unit_id.isprintable():
                raise Refused("bad_id", 400, f"id: 1-{ID_MAX} printable characters")
            to_ms = when("to", now_ms())
            from_ms = when("from", to_ms - DEFAULT_SPAN_MS)
            check_span(kind, from_ms, to_ms)
            found = store.records(kind, [unit_id]).get(unit_id)
            # outside the scope answers as unknown: ids of other areas do not leak
            if found is None or not sees(g.session.scope, found[0]):
                raise Refused("unknown_unit", 404, f"no {kind} {unit_id}")
            answer = tracks.read(kind, unit_id, from_ms, to_ms)
        except Refused as exc:
            return error(exc.status, exc.code, exc.message)
        # orjson: up to 20,000 points encode several times faster than with json
        body = orjson.dumps({"kind": kind, "id": unit_id, "from": from_ms, "to": to_ms,
                             **answer})
        return Response(body, mimetype="application/json",
                        headers={"Cache-Control": "no-store"})

    return api
