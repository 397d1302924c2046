"""Situation replay over HTTP (docs/REPLAY.md, docs/HTTP.md "Replay"): the wall as it was.

    GET  /api/replay/span                           {from, to, days}: what can be shown
    GET  /api/replay/wall?at=MS                     the wall at a moment (a snapshot frame)
    GET  /api/replay/changes?after=SEQ&from=&to=    the changes after it (≤ 15 min a call)
    GET  /api/replay/next?from=MS&what=alert|event[&id=&status=]   the next moment to see
    GET  /api/replay/actions.csv?from=&to=&lang=    the period's actions, for the report
    POST /api/replay/exported {"at"}                the wall's picture was saved (audited)

Commanders and leaders; everything cut to the user's scope on the server. Audited: each
moment looked at (`replay.view`), each stretch played (`replay.play`), each export
(`replay.export`, `replay.png`), so the trail says who replayed what period. Errors are
JSON: 400 bad_time / bad_span / out_of_range, 404 no_history.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson
from flask import Blueprint, Response, g, request

from callbacks.access.auth import audited, require
from callbacks.archive.stats import csv_text
from callbacks.errors import json_body, refusal
from dashboard.config import Settings
from dashboard.errors import Refused
from dashboard.i18n import normalise_lang, t
from dashboard.replay import history as h
from dashboard.replay.reader import ACTIONS_SPAN_MS, CHANGES_SPAN_MS, History
from dashboard.store import Store

READERS: Final = ("commander", "leader")
ACTION_ROWS_MAX: Final = 100_000


def create_replay_api(store: Store, settings: Settings,
                      clock: Callable[[], int] | None = None) -> Blueprint:
    """The routes; `clock()` (epoch ms) is injectable so tests choose what "now" is."""
    history = History(store.r, settings.prefix, settings.replay_days)
    now_ms = clock or (lambda: int(time.time() * 1000))
    tz = ZoneInfo(settings.timezone)
    api = Blueprint("replay", __name__)

    def when(name: str, default: int | None = None) -> int:
        raw = (request.args.get(name) or "").strip()
        if not raw and default is not None:
            return default
        if not raw.isdigit() or len(raw) > 15:
            raise Refused("bad_time", 400, f"{name}: epoch milliseconds")
        return int(raw)

    def kept(ms: int, now: int) -> None:
        """Only the last CC_REPLAY_DAYS can be asked for, and nothing after now."""
        if ms > now or ms < now - settings.replay_days * h.DAY_MS:
            raise Refused("out_of_range", 400, f"a moment of the last "
                          f"{settings.replay_days} days", days=settings.replay_days)

    def answer(body: Any) -> Response:
        return Response(orjson.dumps(body), mimetype="application/json",
                        headers={"Cache-Control": "no-store"})

    @api.get("/api/replay/span")
    @require(*READERS)
    def span() -> Any:
        return answer(history.span(now_ms()))

    @api.get("/api/replay/wall")
    @require(*READERS)
    def wall() -> Any:
        scope = g.session.scope
        try:
            now = now_ms()
            at = when("at")
            kept(at, now)
            found = history.wall_at(at, scope)
            if found is None:
                raise Refused("no_history", 404, "the history holds nothing at or before "
                              "this moment")
        except Refused as exc:
            audited("replay.view", str(request.args.get("at") or "")[:32], "failure",
                    {"code": exc.code})
            return refusal(exc)
        audited("replay.view", _iso(at, tz), "success", {"at": at, "scope": scope})
        # no stats and no server_ts: the live wall's clock offset and counts stay its own
        return answer({"type": "snapshot", "replay": True, **found})

    @api.get("/api/replay/changes")
    @require(*READERS)
    def changes() -> Any:
        scope = g.session.scope
        try:
            now = now_ms()
            after = when("after")
            start, end = when("from"), when("to")
            if end < start or end - start > CHANGES_SPAN_MS:
                raise Refused("bad_span", 400, f"to − from: 0 to {CHANGES_SPAN_MS} ms")
            kept(start, now)
            end = min(end, now)
        except Refused as exc:
            return refusal(exc)
        got = history.changes(after, start, end, scope)
        audited("replay.play", _iso(start, tz), "success",
                {"from": start, "to": got["to"], "scope": scope})
        return answer(got)

    @api.get("/api/replay/next")
    @require(*READERS)
    def next_moment() -> Any:
        """When the next alert is raised, or the chosen event's status next changes."""
        try:
            now = now_ms()
            start = when("from")
            kept(start, now)
            what = request.args.get("what") or ""
            if what not in ("alert", "event"):
                raise Refused("bad_what", 400, "what: alert or event")
            event_id = (request.args.get("id") or "")[:64]
            if what == "event" and not event_id:
                raise Refused("bad_id", 400, "id: the event's id")
            status = (request.args.get("status") or "")[:32]
        except Refused as exc:
            return refusal(exc)
        found = history.next_time(start, g.session.scope, what, event_id, status,
                                  max(0, now - start))
        return answer({"from": start, "at": found})

    @api.get("/api/replay/actions.csv")
    @require(*READERS)
    def actions() -> Any:
        scope = g.session.scope
        lang = normalise_lang(request.args.get("lang") or settings.lang)
        try:
            now = now_ms()
            start, end = when("from"), when("to")
            if end < start or end - start > ACTIONS_SPAN_MS:
                raise Refused("bad_span", 400, f"to − from: 0 to {ACTIONS_SPAN_MS} ms")
            kept(start, now)
        except Refused as exc:
            return refusal(exc)
        rows = history.actions(start, end, scope)[:ACTION_ROWS_MAX]
        audited("replay.export", _iso(start, tz), "success",
                {"format": "csv", "from": start, "to": end, "rows": len(rows), "scope": scope})
        name = f"replay-actions-{_stamp(start, tz)}-{_stamp(end, tz)}.csv"
        return Response(actions_csv(rows, lang, tz), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename={name}",
                                 "X-Rows": str(len(rows)), "Cache-Control": "no-store"})

    @api.post("/api/replay/exported")
    @require(*READERS)
    def exported() -> Any:
        """The browser saved the replayed wall as a picture: only the trail needs to know."""
        try:
            body = json_body()
            at = body.get("at")
            if isinstance(at, bool) or not isinstance(at, int):
                raise Refused("bad_time", 400, "at: epoch milliseconds")
        except Refused as exc:
            return refusal(exc)
        audited("replay.png", _iso(at, tz), "success", {"at": at, "scope": g.session.scope})
        return answer({"ok": True})

    return api


def actions_csv(rows: list[dict[str, Any]], lang: str, tz: ZoneInfo) -> bytes:
    """UTF-8 with a BOM (Excel reads Chinese right only then); feed text never starts a
    formula (`csv_text`)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    header = [t(f"replay.csv.{name}", lang) for name in
              ("time", "action", "event", "subject", "by", "note", "detail")]
    writer.writerow([csv_text(c) for c in header])
    for row in rows:
        writer.writerow([csv_text(c) for c in (
            datetime.fromtimestamp(row["ts"] / 1000, tz).strftime("%Y-%m-%d %H:%M:%S"),
            t(f"replay.act.{row['action']}", lang), row.get("event_id") or "",
            row["subject"], row["by"], row["note"], row["detail"])])
    return ("\ufeff" + buf.getvalue()).encode()


def _iso(ms: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="seconds")


def _stamp(ms: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%Y%m%d-%H%M")
