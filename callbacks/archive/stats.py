"""The cockpit's figures and the history export over HTTP (docs/COCKPIT.md).

`GET /api/stats[?scope=CODE][&range=today|7d|30d|year | &from=&to=]` answers from a cache
(flask-caching, Redis backend, keys under `P` + `cache:`, one per figures' shape, scope and
range; nothing here ever clears it) that follows the data: an entry is served while
`Pstats:ver` is unchanged and its figures still hold (`valid_until`), or while it is younger
than `stats_min_age_s`. `GET /api/export` streams a filtered set as CSV or xlsx.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson
from flask import Blueprint, Response, g, jsonify, request
from flask_caching import Cache

from callbacks.access.auth import audited, require
from callbacks.errors import error, refusal
from dashboard.archive.span import Span, SpanError
from dashboard.archive.stats import SHAPE, Figures, ScopeError, export_header
from dashboard.city import City
from dashboard.config import Settings
from dashboard.connect import is_cluster_url, is_sentinel, open_redis
from dashboard.errors import Refused
from dashboard.i18n import normalise_lang
from dashboard.models import CATEGORIES, EVENT_STATUSES
from dashboard.scope import sees
from dashboard.store import Store

READERS: Final = ("leader", "commander")
CSV_MAX_ROWS: Final = 1_000_000
XLSX_MAX_ROWS: Final = 200_000
LOCK_S: Final = 30  # one request recomputes a scope; the others get the previous entry
ENTRY_TTL_S: Final = 2 * 86400  # entries are replaced long before; this only bounds leftovers
DAY_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A spreadsheet takes a cell beginning with one of these for a formula (or runs it as one).
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def make_cache(server: Any, redis_url: str, settings: Settings) -> Cache:
    """flask-caching on the app's Redis, every key under `P` + `cache:` (on a cluster, in
    the prefix's hash slot with the rest of the city)."""
    where: dict[str, Any] = {"CACHE_REDIS_URL": redis_url}
    if is_cluster_url(redis_url) or is_sentinel(redis_url):
        # flask-caching reads only single-server URLs; it takes a ready client as its host
        where = {"CACHE_REDIS_HOST": open_redis(redis_url)}
    return Cache(server, config={
        "CACHE_TYPE": "RedisCache", **where,
        "CACHE_KEY_PREFIX": f"{settings.prefix}cache:",
        "CACHE_DEFAULT_TIMEOUT": ENTRY_TTL_S,
    })


def create_stats_api(store: Store, city: City, settings: Settings, cache: Cache,
                     figures: Figures | None = None,
                     clock: Any = None) -> Blueprint:
    """The routes; `clock()` (epoch ms) is injectable so tests choose the moment."""
    figs = figures or Figures(store, city, settings)
    now_ms = clock or (lambda: int(time.time() * 1000))
    tz = ZoneInfo(settings.timezone)
    api = Blueprint("stats", __name__)

    def scope_arg() -> str | None:
        """The scope asked for, inside the session's own (a scoped user's default)."""
        own = g.session.scope or None
        asked = (request.args.get("scope") or "").strip() or None
        if asked is None:
            return own
        try:
            code, _, _ = figs.scope_info(asked)
        except ScopeError as exc:
            raise Refused("unknown_scope", 400, str(exc)) from None
        if own and not code.startswith(own):
            raise Refused("out_of_scope", 403, f"{asked} is outside your scope {own}",
                              scope=own)
        return None if code == city.code else code

    def span_arg(now: int) -> Span:
        """The time range asked for: `range=` or `from`/`to` (as the export's), or none."""
        name = (request.args.get("range") or "").strip() or None
        has_from = bool((request.args.get("from") or "").strip())
        has_to = bool((request.args.get("to") or "").strip())
        from_ms = when("from", 0, False) if has_from else None
        to_ms = when("to", 0, True) if has_to else None
        try:
            return figs.span(name, from_ms, to_ms, now)
        except SpanError as exc:
            raise Refused("bad_range", 400, str(exc)) from None

    def cached(scope: str | None) -> tuple[bytes, str]:
        """The figures' JSON text (cached as text: a hit costs no encoding) and how."""
        now = now_ms()
        span = span_arg(now)
        # the shape in the key: an entry cached by an older version is never read again
        key = f"stats:v{SHAPE}:{scope or city.code}{span.key()}"
        entry = cache.get(key)
        locked = False
        if entry is not None:
            fresh = entry["version"] == figs.version() and now < entry["valid_until"]
            young = now - entry["computed"] < settings.stats_min_age_s * 1000
            if fresh or young:
                return entry["json"], "hit"
            locked = bool(cache.add(key + ":lock", 1, timeout=LOCK_S))
            if not locked:
                return entry["json"], "stale"  # another request is computing it
        try:
            body = figs.figures(scope, now, span)
            text = orjson.dumps(body)
            cache.set(key, {"version": body["version"], "computed": now,
                            "valid_until": body["valid_until"], "json": text})
        finally:
            if locked:
                cache.delete(key + ":lock")
        return text, "miss"

    @api.get("/api/stats")
    @require(*READERS)
    def stats() -> Any:
        try:
            body, how = cached(scope_arg())
        except Refused as exc:
            return refusal(exc)
        response = Response(body, mimetype="application/json")
        response.headers["X-Cache"] = how
        response.headers["Cache-Control"] = "no-store"
        return response

    @api.get("/api/archive/events/<event_id>")
    @require(*READERS)
    def archived_event(event_id: str) -> Any:
        """An archived event's full record, for a drill-down past the live window."""
        found = figs.archive.find(event_id) if len(event_id) <= 64 else None
        # outside the scope answers as unknown: ids of other areas do not leak
        if found is None or not sees(g.session.scope, found["event"]):
            return error(404, "not_archived", f"no archived event {event_id!r}")
        return jsonify({**found, "archived": True})

    def when(name: str, default: int, end: bool) -> int:
        raw = (request.args.get(name) or "").strip()
        if not raw:
            return default
        if raw.isdigit():
            return int(raw)
        if DAY_RE.match(raw):
            try:
                day = date.fromisoformat(raw) + timedelta(days=1 if end else 0)
            except ValueError:
                pass
            else:
                return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
                           * 1000)
        raise Refused("bad_time", 400, f"{name}: a day YYYY-MM-DD or epoch ms")

    @api.get("/api/export")
    @require(*READERS)
    def export() -> Any:
        try:
            fmt = (request.args.get("format") or "csv").lower()
            if fmt not in ("csv", "xlsx"):
                raise Refused("bad_format", 400, "format: csv or xlsx")
            scope = scope_arg()
            now = now_ms()
            if (request.args.get("range") or "").strip():
                span = span_arg(now)  # the cockpit's range: what its figures counted
                from_ms, to_ms = span.from_ms, span.end_s * 1000
            else:
                default_from = figs.window_days(now)[0][1] * 1000
                from_ms, to_ms = when("from", default_from, False), when("to", now + 1, True)
            if to_ms <= from_ms:
                raise Refused("bad_range", 400, "to must be after from")
            status = request.args.get("status") or None
            if status is not None and status not in EVENT_STATUSES:
                raise Refused("bad_status", 400, f"status: one of {EVENT_STATUSES}")
            category = request.args.get("category") or None
            if category is not None and category not in CATEGORIES:
                raise Refused("bad_category", 400, f"category: one of {CATEGORIES}")
            frame, live = figs.export_frame(scope, from_ms, to_ms, status, category, now)
            limit = CSV_MAX_ROWS if fmt == "csv" else XLSX_MAX_ROWS
            if len(frame) > limit:
                raise Refused("too_many_rows", 413, f"{len(frame)} rows match; {fmt} "
                                  f"takes at most {limit}: narrow the filter", rows=len(frame),
                                  max=limit)
        except Refused as exc:
            return refusal(exc)
        detail = {"format": fmt, "scope": scope, "from": from_ms, "to": to_ms,
                  "status": status, "category": category, "rows": len(frame)}
        audited("export", scope or city.code, "ok", detail)
        name = f"events-{scope or city.code}-{_day(from_ms, tz)}-{_day(to_ms - 1, tz)}"
        lang = normalise_lang(request.args.get("lang") or settings.lang)
        rows = figs.export_rows(frame, live, lang)
        header = export_header(lang)
        if fmt == "csv":
            return Response(_csv(header, rows), mimetype="text/csv",
                            headers={"Content-Disposition": f"attachment; filename={name}.csv",
                                     "X-Rows": str(len(frame))})
        return Response(_xlsx(header, rows), headers={
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": f"attachment; filename={name}.xlsx",
            "X-Rows": str(len(frame))})

    return api


def _day(ms: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%Y%m%d")


def csv_text(cell: Any) -> Any:
    """A text cell as data: Excel and its kin run a cell that begins with one of
    `FORMULA_START` as a formula (`=HYPERLINK(...)` from a feed's title would leak whatever
    it names), so such text gets a leading `'`. Numbers, negative ones too, stay numbers."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell


def _csv(header: list[str], rows: Iterator[list[Any]], block: int = 2000) -> Iterator[bytes]:
    """UTF-8 with a BOM (Excel reads Chinese right only then), a block of rows at a time;
    text that would start a formula is escaped (`csv_text`)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([csv_text(c) for c in header])
    yield "\ufeff".encode() + buf.getvalue().encode()
    buf.seek(0)
    buf.truncate()
    for n, row in enumerate(rows, start=1):
        writer.writerow([csv_text(c) for c in row])
        if n % block == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


def _xlsx(header: list[str], rows: Iterator[list[Any]]) -> Iterator[bytes]:
    """openpyxl's write-only workbook (rows go to a temporary file, not a tree in memory);
    xlsx is a zip, so it is sent once written, in pieces. Every text is a string cell
    (`xlsx_cells`), never a formula."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("events")
    sheet.append(xlsx_cells(sheet, header))
    for row in rows:
        sheet.append(xlsx_cells(sheet, row))
    with tempfile.TemporaryFile() as out:
        book.save(out)
        out.seek(0)
        while piece := out.read(1 << 16):
            yield piece


def xlsx_cells(sheet: Any, row: list[Any]) -> list[Any]:
    """A row for openpyxl with its text kept as text: openpyxl makes a formula of a string
    starting with `=` and an error cell of `#N/A` and the like, so those are given as string
    cells; characters XML cannot hold (control characters from a feed) are dropped rather
    than failing the whole export. Other values, numbers among them, go in as they are."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE

    out: list[Any] = []
    for value in row:
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)
            if value.startswith("=") or value in ERROR_CODES:
                cell = WriteOnlyCell(sheet, value=value)
                cell.data_type = "s"  # after the value: assigning it guesses the type again
                value = cell
        out.append(value)
    return out
