"""The event archive: closed events move from the live state into compact columns.

Layout and definitions: docs/COCKPIT.md. Per month of first report, one binary string per
column (`Parchive:{YYYY-MM}:{col}`, fixed-width little-endian, appended with APPEND), the
ids, and the full records as zlib-compressed JSON lines, one chunk per archive batch and
month. Categorical fields are stored as codes of stable tables kept in Redis. One Lua
script per batch removes the events from the live keys and appends their rows, so a reader
that takes the live state and the archive in one MULTI sees each event exactly once.

`row_of` turns an event (+ its tasks, timeline, card flags) into a row; the live side of
the figures uses it too, so a figure is the same before and after archiving.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pandas as pd
import redis

from dashboard import lua
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.connect import sibling
from dashboard.models import EVENT_CLOSED
from dashboard.store import Store

# (name, numpy dtype); every one little-endian, fixed width. `chunk` is written by the script.
COLUMNS: Final = (
    ("report", "<u4"), ("dispatch", "<u4"), ("arrive", "<u4"), ("handle", "<u4"),
    ("close", "<u4"), ("sev", "u1"), ("cat", "u1"), ("src", "u1"), ("type", "u1"),
    ("status", "u1"), ("flags", "u1"), ("town", "<u2"), ("community", "<u2"),
    ("grid", "<u2"), ("chunk", "<u4"),
)
TIMES: Final = ("report", "dispatch", "arrive", "handle", "close")
CODED: Final = ("cat", "src", "type", "status", "town", "community", "grid")
ROW_FORMAT: Final = "<5I6B3H"  # every column but `chunk`, in COLUMNS order
ROW_BYTES: Final = struct.calcsize(ROW_FORMAT)  # 32; the script appends 4 for `chunk`
WIDTHS: Final = tuple(np.dtype(d).itemsize for _, d in COLUMNS[:-1])
CODE_MAX: Final = {f: (255 if dict(COLUMNS)[f] == "u1" else 65535) for f in CODED}
OTHER: Final = "other"  # a table that is full maps new values here (code 1)
YELLOW, RED, OVERDUE = 1, 2, 4
SCAN_PAGE: Final = 2000
SCAN_MAX: Final = 50_000  # ids looked at per run, old open ones included
STAGES: Final = ("dispatch", "arrive", "handle")

# ARGV[3] month count m, then m × (month, chunk blob, rows offered), then rows: (id, meta,
# month index, packed row, the event's task ids joined by ',') × n. A row is archived only
# while its meta is what the archiver read; the rest is skipped (it changed: next time).
# Returns the archived ids.
ARCHIVE_LUA: Final = lua.source(__file__, "archive.lua")

# Stable code of a value: existing, else the next free one (atomic across processes).
CODE_LUA: Final = lua.source(__file__, "archive_code.lua")

# A preset dictionary for the JSON chunks: at a city's everyday rate an archive batch holds
# a handful of events, and zlib alone compresses a few records poorly (~2× the bytes of a
# large chunk); the keys and common values below make a small chunk nearly as compact as a
# large one. NEVER change it: chunks written with it need it; another dictionary takes
# another version byte. (zlib streams begin with 0x78, so the byte tells the two apart.)
ZDICT_V1: Final = orjson.dumps({
    "event": {"id": "E20261123-000001", "type": "garbage", "severity": 4, "lon": 119.95,
              "lat": 36.78, "ts": 1795568400000, "received": 1795568400000,
              "title": "群众反映", "description": "现场", "address": "平度市街道社区路号",
              "source": "hotline", "grid_id": "370283001001001",
              "community_id": "370283001001", "town_id": "370283001",
              "category": "grid_governance", "status": "closed", "first_ts": 1795568400000,
              "status_ts": 1795568400000, "reporter": "", "attachments": [], "tags": [],
              "src_crs": "gcj02"},
    "task": {"id": "T20261123-0001", "event_id": "E20261123-000001", "plan_id": None,
             "assignees": [{"id": "W0001", "kind": "worker", "eta_s": 240,
                            "resource_kind": None, "stage": "closed"},
                           {"id": "R0001", "kind": "resource", "eta_s": 300,
                            "resource_kind": "patrol_car", "stage": "closed"}],
             "stage": "closed", "by": "zhihui", "ts": 1795568400000, "note": "",
             "override": {"reason": "", "recommended": ["W0002"]},
             "deadlines": {"dispatch": 1795568400000, "arrive": 1795568400000,
                           "handle": 1795568400000},
             "history": [{"ts": 1795568400000, "stage": "dispatched", "by": "zhihui",
                          "note": ""},
                         {"ts": 1795568400000, "stage": "accepted", "by": "W0001", "note": "",
                          "fb_ts": 1795568400000},
                         {"ts": 1795568400000, "stage": "arrived", "by": "W0001", "note": ""},
                         {"ts": 1795568400000, "stage": "handled", "by": "W0001", "note": ""},
                         {"ts": 1795568400000, "stage": "verified", "by": "zhiban",
                          "note": ""},
                         {"ts": 1795568400000, "stage": "closed", "by": "zhiban", "note": ""}],
             "verify": {"by": "zhiban", "ts": 1795568400000, "passed": True, "note": ""},
             "evaluation": {"by": "zhiban", "ts": 1795568400000, "score": 5, "note": ""}},
    "tasks": [], "timeline": [{"ts": 1795568400000, "status": "reported"},
                              {"ts": 1795568400000, "status": "dispatched"},
                              {"ts": 1795568400000, "status": "in_progress"},
                              {"ts": 1795568400000, "status": "handled"},
                              {"ts": 1795568400000, "status": "verified"},
                              {"ts": 1795568400000, "status": "closed"}]})
CHUNK_V1: Final = b"\x01"


def compress_chunk(lines: Sequence[bytes]) -> bytes:
    """JSON lines → one stored chunk (version byte + deflate with the preset dictionary)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                              zdict=ZDICT_V1)
    return CHUNK_V1 + packer.compress(b"\n".join(lines)) + packer.flush()


def decompress_chunk(blob: bytes) -> bytes:
    if blob[:1] == CHUNK_V1:
        unpacker = zlib.decompressobj(zdict=ZDICT_V1)
        return unpacker.decompress(blob[1:]) + unpacker.flush()
    return zlib.decompress(blob)


def month_of(ts_ms: int, tz: str) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz)).strftime("%Y-%m")


def _ms(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return int(value)


def event_times(event: dict[str, Any], tasks: Sequence[dict[str, Any]],
                timeline: Sequence[dict[str, Any]]) -> dict[str, int | None]:
    """report, dispatch, arrive, handle, close in epoch ms (None = not reached); see
    docs/COCKPIT.md for where each comes from."""
    report = _ms(event.get("first_ts"))
    if report is None:
        report = _ms(event.get("ts"))

    def first(entries: Iterable[dict[str, Any]], key: str, stages: Iterable[str]) -> int | None:
        wanted = set(stages)
        found = [_ms(e.get("ts")) for e in entries
                 if isinstance(e, dict) and e.get(key) in wanted]
        found = [x for x in found if x is not None]
        return min(found) if found else None

    task_ts = [x for x in (_ms(t.get("ts")) for t in tasks) if x is not None]
    history = [h for t in tasks for h in (t.get("history") or []) if isinstance(h, dict)]
    dispatch = min(task_ts) if task_ts else first(timeline, "status", ("dispatched",))
    arrive = first(history, "stage", ("arrived", "handled"))
    handle = first(history, "stage", ("handled",))
    if handle is None:
        handle = first(timeline, "status", ("handled",))
    close = None
    if event.get("status") in EVENT_CLOSED:
        ends = [_ms(e.get("ts")) for e in timeline
                if isinstance(e, dict) and e.get("status") in EVENT_CLOSED]
        ends = [x for x in ends if x is not None]
        if ends:
            close = ends[-1]
        else:
            close = max(x for x in (_ms(event.get("ts")), _ms(event.get("status_ts")), report)
                        if x is not None)
    return {"report": report, "dispatch": dispatch, "arrive": arrive, "handle": handle,
            "close": close}


def overdue(event: dict[str, Any], times: dict[str, int | None], deadlines: Deadlines,
            now_ms: int) -> bool:
    """A stage ended — or, still running, has run until now — past its limit. A closed or
    cancelled event's unreached stages stopped running at its close."""
    lim = deadlines.limits(event)
    report, dispatch = times["report"], times["dispatch"]
    end = times["close"] if times["close"] is not None else now_ms
    if report is None:
        return False
    spans = [(report, dispatch if dispatch is not None else end, lim.dispatch_s)]
    if dispatch is not None:
        spans.append((dispatch, times["arrive"] if times["arrive"] is not None else end,
                       lim.arrive_s))
        spans.append((dispatch, times["handle"] if times["handle"] is not None else end,
                      lim.handle_s))
    return any(stop - start > limit_s * 1000 for start, stop, limit_s in spans)


def row_of(event: dict[str, Any], tasks: Sequence[dict[str, Any]],
           timeline: Sequence[dict[str, Any]], cards: int, deadlines: Deadlines,
           now_ms: int) -> dict[str, Any]:
    """One archive row with plain values: times in epoch seconds (0 = never), codes as
    strings (the caller codes them)."""
    times = event_times(event, tasks, timeline)
    flags = cards & (YELLOW | RED)
    if overdue(event, times, deadlines, now_ms):
        flags |= OVERDUE
    sev = event.get("severity")
    row: dict[str, Any] = {k: (v // 1000 if v is not None else 0) for k, v in times.items()}
    row.update({
        "sev": sev if isinstance(sev, int) and 0 <= sev < 256 else 0,
        "cat": str(event.get("category") or ""), "src": str(event.get("source") or ""),
        "type": str(event.get("type") or ""), "status": str(event.get("status") or ""),
        "flags": flags, "town": str(event.get("town_id") or ""),
        "community": str(event.get("community_id") or ""),
        "grid": str(event.get("grid_id") or ""),
    })
    return row


def card_flags(alerts: Iterable[str | bytes]) -> dict[str, int]:
    """event id → YELLOW|RED from the stored alerts (`Pstate:alert` values)."""
    out: dict[str, int] = {}
    for raw in alerts:
        try:
            alert = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        kind = alert.get("kind") if isinstance(alert, dict) else None
        if kind in ("sla_yellow", "sla_red") and alert.get("event_id"):
            event_id = str(alert["event_id"])
            out[event_id] = out.get(event_id, 0) | (YELLOW if kind == "sla_yellow" else RED)
    return out


def tasks_by_event(raw_tasks: Iterable[str | bytes]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for raw in raw_tasks:
        try:
            task = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(task, dict) and task.get("event_id"):
            out.setdefault(str(task["event_id"]), []).append(task)
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def binary_client(client: redis.Redis) -> redis.Redis:
    """A client on the same server (or cluster) that returns bytes (columns are binary)."""
    if not client.get_encoder().decode_responses:
        return client
    return sibling(client, decode_responses=False)


class Codes:
    """The stable code tables (`Parchive:code:{field}` / `Parchive:codes:{field}`)."""

    def __init__(self, store: Store, client: redis.Redis) -> None:
        self.store = store
        self.r = client
        self._code = client.register_script(CODE_LUA)
        self._known: dict[str, dict[str, int]] = {f: {} for f in CODED}

    def code(self, field: str, value: str) -> int:
        known = self._known[field]
        found = known.get(value)
        if found is not None:
            return found
        keys = [self.store.key(f"archive:code:{field}"), self.store.key(f"archive:codes:{field}")]
        for seed in ("", OTHER):  # "" is 0 and "other" is 1 in every table
            if seed not in known:
                known[seed] = int(self._code(keys=keys, args=[seed, CODE_MAX[field] + 1]))
        code = int(self._code(keys=keys, args=[value, CODE_MAX[field] + 1]))
        if code < 0:
            return known[OTHER]  # the table is full: the value is counted as other
        known[value] = code
        return code

    def tables(self) -> dict[str, list[str]]:
        """Every table by code (index = code)."""
        pipe = self.r.pipeline(transaction=False)
        for field in CODED:
            pipe.lrange(self.store.key(f"archive:codes:{field}"), 0, -1)
        return {f: [_text(v) for v in vals] for f, vals in zip(CODED, pipe.execute(),
                                                                 strict=True)}


class Archive:
    """Moves closed events into the archive and reads it back."""

    def __init__(self, store: Store, settings: Settings,
                 deadlines: Deadlines | None = None) -> None:
        self.store = store
        self.settings = settings
        self.deadlines = deadlines or Deadlines.load()
        self.r = binary_client(store.r)
        self.codes = Codes(store, self.r)
        self._archive = self.r.register_script(ARCHIVE_LUA)

    # -- writing ----------------------------------------------------------------------

    def closed_pages(self, now_ms: int) -> Iterator[list[tuple[str, str]]]:
        """Pages of (id, meta) of closed/cancelled events reported before the cut-off, oldest
        report first; at most SCAN_MAX ids are looked at (old open ones included)."""
        r, key = self.r, self.store.key
        cutoff = now_ms - self.settings.archive_age_s * 1000
        start = 0
        while start < SCAN_MAX:
            ids = [_text(i) for i in r.zrangebyscore(key("events:ts"), "-inf", cutoff,
                                                     start=start, num=SCAN_PAGE)]
            if not ids:
                return
            start += len(ids)
            page = [(event_id, _text(meta)) for event_id, meta
                    in zip(ids, r.hmget(key("meta:event"), ids), strict=True)
                    if meta is not None and _text(meta).rsplit("|", 1)[-1] in EVENT_CLOSED]
            if page:
                yield page

    def run(self, now_ms: int, limit: int | None = None) -> int:
        """Archive up to `limit` events closed longer than `archive_age_s`; returns how many.
        An event reported long ago but closed lately is passed over until its time."""
        limit = limit or self.settings.archive_batch
        r, key = self.r, self.store.key
        cutoff_s = (now_ms - self.settings.archive_age_s * 1000) // 1000
        months: dict[str, list[tuple[str, str, bytes, bytes, str]]] = {}
        taken = 0
        tasks: dict[str, list[dict[str, Any]]] | None = None
        cards: dict[str, int] = {}
        for page in self.closed_pages(now_ms):
            if tasks is None:
                raw_tasks, raw_alerts = (r.pipeline(transaction=False)
                                         .hvals(key("state:task")).hvals(key("state:alert"))
                                         .execute())
                tasks, cards = tasks_by_event(raw_tasks), card_flags(raw_alerts)
            pipe = r.pipeline(transaction=False)
            pipe.hmget(key("state:event"), [i for i, _ in page])
            for event_id, _ in page:
                pipe.lrange(key(f"timeline:{event_id}"), 0, -1)
            got = pipe.execute()
            for (event_id, meta), raw, tl in zip(page, got[0], got[1:], strict=True):
                if taken >= limit:
                    break
                if raw is None:
                    continue
                row, full, month, mine = self._prepare(event_id, raw, tl, tasks, cards, now_ms)
                if row["close"] > cutoff_s:
                    continue  # closed less than archive_age_s ago: the wall still shows it
                packed = self._pack(row)
                task_ids = ",".join(str(t["id"]) for t in mine if t.get("id"))
                months.setdefault(month, []).append((event_id, meta, packed, full, task_ids))
                taken += 1
            if taken >= limit:
                break
        if not months:
            return 0
        args: list[Any] = [self.store.prefix, self.store.log_maxlen, len(months)]
        for month, rows in months.items():
            args.extend((month, compress_chunk([x[3] for x in rows]), len(rows)))
        for mi, rows in enumerate(months.values(), start=1):
            for event_id, meta, packed, _, task_ids in rows:
                args.extend((event_id, meta, mi, packed, task_ids))
        return len(self._archive(keys=[self.store.anchor], args=args))

    def _prepare(self, event_id: str, raw: bytes, timeline_raw: list[bytes],
                 tasks: dict[str, list[dict[str, Any]]], cards: dict[str, int],
                 now_ms: int) -> tuple[dict[str, Any], bytes, str, list[dict[str, Any]]]:
        """(row, full JSON line, month, the event's tasks) of one live event."""
        event = orjson.loads(raw)
        timeline = [orjson.loads(x) for x in timeline_raw]
        mine = tasks.get(event_id, [])
        row = row_of(event, mine, timeline, cards.get(event_id, 0), self.deadlines, now_ms)
        full = orjson.dumps({"event": event, "task": mine[-1] if mine else None,
                             "tasks": mine, "timeline": timeline})
        return row, full, month_of(row["report"] * 1000, self.settings.timezone), mine

    def _pack(self, row: dict[str, Any]) -> bytes:
        code = self.codes.code
        return struct.pack(ROW_FORMAT, *(row[c] for c in TIMES), row["sev"],
                           *(code(f, row[f]) for f in ("cat", "src", "type", "status")),
                           row["flags"], *(code(f, row[f]) for f in ("town", "community",
                                                                     "grid")))

    def expire(self, now_ms: int, keep_months: int) -> list[str]:
        """Drop the months before the last `keep_months` (counting the current one); 0 keeps
        everything. Returns the months dropped. The cockpit compares a year with the one
        before, so Settings keeps at least 25."""
        if keep_months <= 0:
            return []
        year, month = map(int, month_of(now_ms, self.settings.timezone).split("-"))
        first = (year * 12 + month - 1) - (keep_months - 1)
        oldest = f"{first // 12:04d}-{first % 12 + 1:02d}"
        gone = [m for m in self.months() if m < oldest]
        for m in gone:
            names = [name for name, _ in COLUMNS] + ["id", "json", "meta"]
            pipe = self.r.pipeline(transaction=True)
            pipe.delete(*(self.store.key(f"archive:{m}:{name}") for name in names))
            pipe.srem(self.store.key("archive:months"), m)
            pipe.incr(self.store.key("stats:ver"))
            pipe.execute()
        return gone

    # -- reading ----------------------------------------------------------------------

    def months(self) -> list[str]:
        return sorted(_text(m) for m in self.r.smembers(self.store.key("archive:months")))

    def queue_read(self, pipe: Any, months: Sequence[str], with_ids: bool = False) -> int:
        """Queue the GETs of `months`' columns on `pipe` (a MULTI with the live reads, so
        each event is seen once); returns how many results `frame_from` takes."""
        n = 0
        for month in months:
            for name, _ in COLUMNS:
                pipe.get(self.store.key(f"archive:{month}:{name}"))
                n += 1
            if with_ids:
                pipe.get(self.store.key(f"archive:{month}:id"))
                n += 1
        return n

    @staticmethod
    def frame_from(months: Sequence[str], results: Sequence[Any],
                   with_ids: bool = False) -> pd.DataFrame:
        """A DataFrame of the queued columns: times as int64 seconds, codes as ints, and
        `month`/`row` so a row's full record can be found again."""
        parts: dict[str, list[np.ndarray]] = {name: [] for name, _ in COLUMNS}
        ids: list[str] = []
        month_col: list[np.ndarray] = []
        row_col: list[np.ndarray] = []
        i = 0
        for mi, _month in enumerate(months):
            cols = {}
            for name, dtype in COLUMNS:
                raw = results[i]
                i += 1
                cols[name] = np.frombuffer(raw or b"", dtype=dtype)
            n = min(len(c) for c in cols.values())  # a torn read cannot happen in MULTI
            for name in parts:
                parts[name].append(cols[name][:n])
            month_col.append(np.full(n, mi, dtype=np.int16))
            row_col.append(np.arange(n, dtype=np.int32))
            if with_ids:
                raw = results[i]
                i += 1
                ids.extend(_text(raw or b"").split("\n")[:n])
        data: dict[str, Any] = {}
        for name, dtype in COLUMNS:
            arr = np.concatenate(parts[name]) if parts[name] else np.empty(0, dtype=dtype)
            data[name] = arr.astype(np.int64) if name in TIMES else arr.astype(np.int32)
        data["month"] = np.concatenate(month_col) if month_col else np.empty(0, np.int16)
        data["row"] = np.concatenate(row_col) if row_col else np.empty(0, np.int32)
        frame = pd.DataFrame(data)
        if with_ids:
            frame["id"] = ids
        return frame

    def frame(self, months: Sequence[str] | None = None, with_ids: bool = False) -> pd.DataFrame:
        months = list(months) if months is not None else self.months()
        pipe = self.r.pipeline(transaction=True)
        self.queue_read(pipe, months, with_ids)
        return self.frame_from(months, pipe.execute(), with_ids)

    def find(self, event_id: str) -> dict[str, Any] | None:
        """One archived event's full record (event, task, tasks, timeline) and its `month`,
        newest month first; None when it is not archived. Reads each month's ids (~20 bytes
        an event) until found: for a drill-down, not for bulk (use `frame` + `records`)."""
        needle = b"\n" + event_id.encode() + b"\n"
        key = self.store.key
        for month in reversed(self.months()):
            ids = b"\n" + (self.r.get(key(f"archive:{month}:id")) or b"")
            at = ids.find(needle)
            if at < 0:
                continue
            row = ids.count(b"\n", 0, at)
            raw = self.r.getrange(key(f"archive:{month}:chunk"), row * 4, row * 4 + 3)
            if len(raw) != 4:
                return None
            found = self.records(month, [struct.unpack("<I", raw)[0]]).get(event_id)
            return {**found, "month": month} if found else None
        return None

    def records(self, month: str, chunks: Iterable[int]) -> dict[str, dict[str, Any]]:
        """The full records (event, task, timeline) of some chunks of a month, by event id."""
        wanted = sorted(set(int(c) for c in chunks))
        if not wanted:
            return {}
        raw = self.r.hmget(self.store.key(f"archive:{month}:json"), wanted)
        out: dict[str, dict[str, Any]] = {}
        for blob in raw:
            if blob is None:
                continue
            for line in decompress_chunk(blob).split(b"\n"):
                if line:
                    rec = orjson.loads(line)
                    out[str(rec["event"].get("id"))] = rec
        return out
