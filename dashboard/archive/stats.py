"""The cockpit's figures, with pandas/numpy over the archive and the live events.

Definitions and the JSON shape: docs/COCKPIT.md. The archive's columns and the live state
are read in one MULTI, so an event being archived is counted once. Live events become rows
with the same function the archiver uses (`archive.row_of`), coded with the archive's code
tables, so every figure is the same before and after archiving.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pandas as pd

from dashboard.archive.events import (
    CODED,
    OVERDUE,
    RED,
    TIMES,
    YELLOW,
    Archive,
    _text,
    card_flags,
    month_of,
    row_of,
    tasks_by_event,
)
from dashboard.archive.span import Span, prev_span, span_days, span_of
from dashboard.city import City, Unit
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.i18n import t
from dashboard.store import Store, day_of

WINDOW_DAYS: Final = 30
# The figures' JSON shape: raised whenever a field is added or changed (2: `name_en` on the
# scope, its parents and children). Cached answers are keyed by it (callbacks/archive/
# stats.py), so after an upgrade no answer of the old shape is served from the cache.
SHAPE: Final = 2
RANK_TOP: Final = 10
CHILD_FIELD: Final = {"city": "town", "town": "community", "community": "grid"}
SCOPE_FIELD: Final = {"town": "town", "community": "community", "grid": "grid"}
PATROL_KEEP_S: Final = 8 * 86400
IN_PROGRESS: Final = ("dispatched", "in_progress")


class ScopeError(ValueError):
    """The scope code names no unit of the city."""


@dataclass
class Data:
    """Everything the figures are computed from, read at one moment."""

    frame: pd.DataFrame  # one row per event: TIMES (s, 0 = never), codes, flags, live
    tables: dict[str, list[str]]  # field → values by code
    version: int
    now_ms: int
    workers: list[dict[str, Any]]
    patrol: set[str]
    next_overdue_ms: int | None  # the next moment an open event goes overdue


def patrol_key(prefix: str, day: str) -> str:
    return f"{prefix}patrol:{day}"


def _code(tables: dict[str, list[str]], index: dict[str, dict[str, int]], field: str,
          value: str) -> int:
    """The value's code; a value the stored table lacks gets a local one (not written)."""
    found = index[field].get(value)
    if found is None:
        found = len(tables[field])
        tables[field].append(value)
        index[field][value] = found
    return found


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _mean(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 1) if len(values) else None


@dataclass
class _Scoped:
    """The rows of one scope and the masks every figure uses."""

    frame: pd.DataFrame
    tables: dict[str, list[str]]
    codes: dict[str, dict[str, int]]
    report: np.ndarray
    close: np.ndarray
    closed: np.ndarray
    cancelled: np.ndarray
    open: np.ndarray
    progress: np.ndarray
    overdue: np.ndarray
    in_window: np.ndarray

    @classmethod
    def of(cls, data: Data, level: str, code: str, span: Span, now_s: int) -> _Scoped:
        f, tables = data.frame, data.tables
        codes = {fld: {v: i for i, v in enumerate(tables[fld])} for fld in CODED}
        if level != "city":
            field = SCOPE_FIELD[level]
            f = f[f[field].to_numpy() == codes[field].get(code, -1)]
        status, st = f["status"].to_numpy(), codes["status"]
        closed = status == st.get("closed", -1)
        cancelled = status == st.get("cancelled", -1)
        report = f["report"].to_numpy()
        return cls(f, tables, codes, report, f["close"].to_numpy(), closed, cancelled,
                   ~(closed | cancelled),
                   np.isin(status, [st[s] for s in IN_PROGRESS if s in st]),
                   (f["flags"].to_numpy() & OVERDUE) > 0,
                   (report >= span.from_s) & (report < span.end_s) & (report <= now_s))

    def counts(self, field: str, names: Sequence[str] | None = None) -> dict[str, int]:
        """Events of the window by a coded field."""
        values = self.frame[field].to_numpy()[self.in_window]
        bins = np.bincount(values) if len(values) else np.zeros(0, dtype=np.int64)
        table = names if names is not None else self.tables[field]
        return {(table[i] if i < len(table) else str(i)): int(n)
                for i, n in enumerate(bins) if n}


class Figures:
    """Reads the data and computes the figures for a scope."""

    def __init__(self, store: Store, city: City, settings: Settings,
                 deadlines: Deadlines | None = None) -> None:
        self.store = store
        self.city = city
        self.settings = settings
        self.deadlines = deadlines or Deadlines.load()
        self.archive = Archive(store, settings, self.deadlines)
        self.r = self.archive.r
        self.tz = ZoneInfo(settings.timezone)
        self._memo: tuple[int, int, Data] | None = None  # (version, valid until ms, data)
        self._closed_rows: dict[str, tuple[bytes, dict[str, Any]]] = {}  # id → (JSON, row)
        self._lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------

    def version(self) -> int:
        return int(self.r.get(self.store.key("stats:ver")) or 0)

    def first_month(self, now_ms: int) -> str:
        """The oldest month a figure looks at: January of last year (the year comparison)."""
        now = datetime.fromtimestamp(now_ms / 1000, self.tz)
        return f"{now.year - 1:04d}-01"

    def load(self, now_ms: int, first: str | None = None) -> tuple[Data, int]:
        """Archive + live as one frame, and until when (ms) figures from it hold without
        new data; reused while the version and the moment hold (drill-down, scopes). A
        custom range reaching before `first_month` (`first`, YYYY-MM) is read on its own,
        not memoised: rare, and the HTTP cache keeps its figures."""
        if first is not None and first < self.first_month(now_ms):
            data = self._read(now_ms, first)
            return data, self._valid_until(data)
        with self._lock:
            memo = self._memo
            if memo is not None and memo[0] == self.version() and now_ms < memo[1] \
                    and memo[2].now_ms <= now_ms:
                return memo[2], memo[1]
            data = self._read(now_ms)
            self._memo = (data.version, self._valid_until(data), data)
            return data, self._memo[1]

    def _read(self, now_ms: int, first: str | None = None) -> Data:
        key = self.store.key
        first = first or self.first_month(now_ms)
        months = [m for m in self.archive.months() if m >= first]
        pipe = self.r.pipeline(transaction=True)
        n = self.archive.queue_read(pipe, months)
        pipe.get(key("stats:ver"))
        pipe.hvals(key("state:event"))
        pipe.hvals(key("state:task"))
        pipe.hvals(key("state:alert"))
        pipe.hvals(key("state:worker"))
        pipe.smembers(patrol_key(self.store.prefix, day_of(now_ms, self.settings.timezone)))
        for field in CODED:
            pipe.lrange(key(f"archive:codes:{field}"), 0, -1)
        res = pipe.execute()
        archived = Archive.frame_from(months, res[:n])
        ver, raw_events, raw_tasks, raw_alerts, raw_workers, patrol = res[n:n + 6]
        tables = {f: [_text(v) for v in vals] for f, vals in zip(CODED, res[n + 6:],
                                                                   strict=True)}
        tasks = tasks_by_event(raw_tasks)
        cards = card_flags(raw_alerts)
        index = {f: {v: i for i, v in enumerate(tables[f])} for f in CODED}
        for field in CODED:  # "" is 0 and "other" 1 even before anything was archived
            for seed in ("", "other"):
                _code(tables, index, field, seed)
        rows: dict[str, list[int]] = {c: [] for c in (*TIMES, "sev", "flags", *CODED)}
        next_overdue: int | None = None
        for event, row in self._live_rows(raw_events, tasks, cards, now_ms):
            for c in (*TIMES, "sev", "flags"):
                rows[c].append(int(row[c]))
            for f in CODED:
                rows[f].append(_code(tables, index, f, row[f]))
            if not row["close"] and not row["flags"] & OVERDUE:
                due = self._next_deadline(event, row)
                if due is not None and (next_overdue is None or due < next_overdue):
                    next_overdue = due
        live = pd.DataFrame({c: np.asarray(v, dtype=np.int64 if c in TIMES else np.int32)
                             for c, v in rows.items()})
        live["live"] = True
        archived = archived.drop(columns=["chunk", "month", "row"])
        archived["live"] = False
        frame = pd.concat([archived, live], ignore_index=True) if len(live) else archived
        workers = [w for w in (orjson.loads(x) for x in raw_workers) if isinstance(w, dict)]
        return Data(frame, tables, int(ver or 0), now_ms, workers,
                    {_text(g) for g in patrol}, next_overdue)

    def _live_rows(self, raw_events: list[bytes], tasks: dict[str, list[dict[str, Any]]],
                   cards: dict[str, int], now_ms: int) -> list[tuple[dict[str, Any], dict]]:
        """(event, row) of each live event. A closed event's row no longer changes (its
        stages stopped at its close), so it is kept while its stored JSON is the same; the
        timeline is read only for the others that may need it (not plain new reports)."""
        events = [(raw, orjson.loads(raw)) for raw in raw_events]
        out: list[tuple[dict[str, Any], dict] | None] = []
        todo: list[tuple[int, bytes, dict[str, Any]]] = []
        for raw, event in events:
            if not isinstance(event, dict) or not event.get("id"):
                continue
            hit = self._closed_rows.get(str(event["id"]))
            if hit is not None and hit[0] == raw:
                out.append((event, hit[1]))
                continue
            out.append(None)
            todo.append((len(out) - 1, raw, event))
        need = [(i, raw, e) for i, raw, e in todo
                if e.get("status") != "reported" or str(e["id"]) in tasks]
        pipe = self.r.pipeline(transaction=False)
        for _, _, event in need:
            pipe.lrange(self.store.key(f"timeline:{event['id']}"), 0, -1)
        timelines = dict(zip((i for i, _, _ in need), pipe.execute() if need else [],
                             strict=True))
        for i, raw, event in todo:
            eid = str(event["id"])
            timeline = [orjson.loads(x) for x in timelines.get(i, [])]
            row = row_of(event, tasks.get(eid, []), timeline, cards.get(eid, 0),
                         self.deadlines, now_ms)
            out[i] = (event, row)
            if row["close"]:
                self._closed_rows[eid] = (raw, row)
        live = {str(e["id"]) for e in (x[0] for x in out if x is not None)}
        for gone in [k for k in self._closed_rows if k not in live]:
            del self._closed_rows[gone]  # archived or gone: the cache stays the live size
        return [x for x in out if x is not None]

    def _next_deadline(self, event: dict[str, Any], row: dict[str, Any]) -> int | None:
        """When a running stage of an open event passes its limit (ms), or None."""
        lim = self.deadlines.limits(event)
        report, dispatch = row["report"], row["dispatch"]
        if not report:
            return None
        if not dispatch:
            return (report + lim.dispatch_s) * 1000 + 1000
        dues = []
        if not row["arrive"]:
            dues.append(dispatch + lim.arrive_s)
        if not row["handle"]:
            dues.append(dispatch + lim.handle_s)
        return min(dues) * 1000 + 1000 if dues else None

    def _valid_until(self, data: Data) -> int:
        """The next moment the figures would change without new data: a prev-period cut-off
        reaching an event, an open event going overdue, local midnight."""
        now_s = data.now_ms // 1000
        tomorrow = datetime.fromtimestamp(now_s, self.tz).date() + timedelta(days=1)
        ends = [self._day_start(tomorrow) * 1000]
        if data.next_overdue_ms is not None:
            ends.append(data.next_overdue_ms)
        report = data.frame["report"].to_numpy()
        for period in self.periods(data.now_ms).values():
            cut = _next_cut(report, period["prev_to"] // 1000, period["from"] // 1000,
                            data.now_ms)
            if cut is not None:
                ends.append(cut)
        return min(ends)

    # -- time ---------------------------------------------------------------------------

    def _day_start(self, day: date) -> int:
        """Epoch seconds of local midnight starting `day`."""
        return int(datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp())

    def periods(self, now_ms: int) -> dict[str, dict[str, int]]:
        """today / week / month / year: [from, to] and the previous one up to the same
        offset, in epoch ms."""
        now_s = now_ms // 1000
        today = datetime.fromtimestamp(now_s, self.tz).date()
        monday = today - timedelta(days=today.weekday())
        first = today.replace(day=1)
        prev_month = (first - timedelta(days=1)).replace(day=1)
        jan = today.replace(month=1, day=1)
        spans = {
            "today": (today, today - timedelta(days=1)),
            "week": (monday, monday - timedelta(days=7)),
            "month": (first, prev_month),
            "year": (jan, jan.replace(year=jan.year - 1)),
        }
        out = {}
        for name, (start, prev) in spans.items():
            s, p = self._day_start(start), self._day_start(prev)
            prev_end = min(p + (now_s - s), s)  # a shorter previous month is clipped
            out[name] = {"from": s * 1000, "to": now_ms, "prev_from": p * 1000,
                         "prev_to": prev_end * 1000}
        return out

    def window_days(self, now_ms: int) -> list[tuple[str, int]]:
        """The last WINDOW_DAYS local days (oldest first) with their midnight, epoch s."""
        today = datetime.fromtimestamp(now_ms / 1000, self.tz).date()
        days = [today - timedelta(days=k) for k in range(WINDOW_DAYS - 1, -1, -1)]
        return [(d.isoformat(), self._day_start(d)) for d in days]

    # -- scope --------------------------------------------------------------------------

    def scope_info(self, scope: str | None) -> tuple[str, str, Unit | None]:
        """(code, level, unit) of a scope; the city for None. ScopeError when unknown."""
        if not scope or scope == self.city.code:
            return self.city.code, "city", None
        unit = self.city.unit(scope)
        if unit is None:
            raise ScopeError(f"no town, community or grid {scope!r}")
        return unit.code, unit.level, unit

    # -- the figures --------------------------------------------------------------------

    def span(self, name: str | None, from_ms: int | None, to_ms: int | None,
             now_ms: int) -> Span:
        """The time range asked for (dashboard/archive/span.py); SpanError if none."""
        return span_of(name, from_ms, to_ms, now_ms, self.tz)

    def figures(self, scope: str | None, now_ms: int,
                span: Span | None = None) -> dict[str, Any]:
        """The figures JSON for a scope (None = the whole city) at `now_ms` over `span`
        (None = the last 30 days)."""
        code, level, unit = self.scope_info(scope)
        span = span or self.span(None, None, None, now_ms)
        prev_from, prev_to = prev_span(span, now_ms, self.tz)
        data, valid_until = self.load(now_ms, month_of(prev_from * 1000,
                                                       self.settings.timezone))
        cut = _next_cut(data.frame["report"].to_numpy(), prev_to, span.from_s, now_ms)
        if cut is not None and span.end_s > now_ms // 1000:  # a range still running
            valid_until = min(valid_until, cut)
        days = span_days(span, self.tz)
        today_s = self._day_start(datetime.fromtimestamp(now_ms / 1000, self.tz).date())
        sc = _Scoped.of(data, level, code, span, now_ms // 1000)
        child_field = CHILD_FIELD.get(level)
        children = (self._unit_rows(self.city.children(code), child_field, sc)
                    if child_field is not None else [])
        rankings: dict[str, Any] = {}
        if level == "city":
            rankings["town"] = self._rank(children)
            rankings["community"] = self._rank(
                self._unit_rows(self.city.communities, "community", sc))
        elif level == "town":
            rankings["community"] = self._rank(children)
        parents = [] if unit is None else self.city.parents(code)
        sev_names = [str(i) for i in range(256)]
        return {
            "scope": {"code": code, "level": level,
                      "name": unit.name if unit else self.city.name,
                      "name_en": (unit or self.city).label("en"),
                      "parents": [{"code": p.code, "name": p.name, "name_en": p.label("en"),
                                   "level": p.level} for p in parents if p.code != code],
                      "child_level": child_field},
            "generated": now_ms, "version": data.version, "valid_until": valid_until,
            "tz": self.settings.timezone, "window_days": span.days, "range": span.name,
            "periods": {**self._periods(sc, now_ms),
                        "range": self._range_period(sc, span, prev_from, prev_to)},
            "now": {"open": int(sc.open.sum()),
                    "overdue": int((sc.open & sc.overdue).sum()),
                    "in_progress": int(sc.progress.sum()),
                    "closed_today": int((sc.closed & (sc.close >= today_s)).sum())},
            "window": self._window(sc, span.from_ms, span.to_ms),
            "by_category": sc.counts("cat"),
            "by_source": sc.counts("src"),
            "by_severity": {k: v for k, v in sc.counts("sev", sev_names).items() if k != "0"},
            "children": children,
            "grid_density": self._grid_density(sc),
            "trend": self._trend(sc, days),
            "rankings": rankings,
            **self._people(data, level, code, now_ms),
        }

    def _periods(self, sc: _Scoped, now_ms: int) -> dict[str, dict[str, Any]]:
        out = {}
        now_s = now_ms // 1000
        for name, p in self.periods(now_ms).items():
            count = int(((sc.report >= p["from"] // 1000) & (sc.report <= now_s)).sum())
            prev = int(((sc.report >= p["prev_from"] // 1000)
                        & (sc.report < p["prev_to"] // 1000)).sum())
            out[name] = {**p, "count": count, "prev": prev,
                         "change": round((count - prev) / prev, 4) if prev else None}
        return out

    @staticmethod
    def _range_period(sc: _Scoped, span: Span, prev_from: int,
                      prev_to: int) -> dict[str, Any]:
        """The range against the same span just before it (span.prev_span)."""
        count = int(sc.in_window.sum())
        prev = int(((sc.report >= prev_from) & (sc.report < prev_to)).sum())
        return {"from": span.from_ms, "to": span.to_ms, "count": count,
                "prev_from": prev_from * 1000, "prev_to": prev_to * 1000, "prev": prev,
                "change": round((count - prev) / prev, 4) if prev else None}

    @staticmethod
    def _window(sc: _Scoped, from_ms: int, now_ms: int) -> dict[str, Any]:
        wf, win = sc.frame[sc.in_window], sc.in_window
        closed, cancelled = sc.closed[win], sc.cancelled[win]
        disp, arr = wf["dispatch"].to_numpy(), wf["arrive"].to_numpy()
        rep, close, flags = (wf[c].to_numpy() for c in ("report", "close", "flags"))
        total, n_closed, n_cancel = int(win.sum()), int(closed.sum()), int(cancelled.sum())
        return {
            "from": from_ms, "to": now_ms, "total": total, "closed": n_closed,
            "cancelled": n_cancel, "closure_rate": _rate(n_closed, total - n_cancel),
            "avg_dispatch_s": _mean((disp - rep)[disp > 0]),
            "avg_arrive_s": _mean((arr - disp)[(arr > 0) & (disp > 0)]),
            "avg_close_s": _mean((close - rep)[closed & (close > 0)]),
            "yellow": int(((flags & YELLOW) > 0).sum()),
            "red": int(((flags & RED) > 0).sum()),
            "overdue": int(((flags & OVERDUE) > 0).sum()),
        }

    def _grid_density(self, sc: _Scoped) -> dict[str, dict[str, Any]]:
        """Events of the window per grid of the scope (only grids that had some), for a
        map shaded grid by grid at any level."""
        grid = sc.frame["grid"].to_numpy()[sc.in_window]
        bins = np.bincount(grid) if len(grid) else np.zeros(0, dtype=np.int64)
        out = {}
        for i in np.flatnonzero(bins).tolist():
            code = sc.tables["grid"][i] if i < len(sc.tables["grid"]) else ""
            unit = self.city.unit(code) if code else None
            if unit is None:
                continue
            n = int(bins[i])
            out[code] = {"total": n, "per_km2": round(n / unit.area_km2, 4)
                         if unit.area_km2 else None}
        return out

    def _trend(self, sc: _Scoped, days: list[tuple[str, int]]) -> dict[str, Any]:
        """Reports and closes per local day of the range, and reports by category."""
        n_days = len(days)
        last = self._day_start(date.fromisoformat(days[-1][0]) + timedelta(days=1))
        edges = np.asarray([d[1] for d in days] + [last], dtype=np.int64)
        rep_bin = np.searchsorted(edges, sc.report, side="right") - 1
        ok = sc.in_window & (rep_bin >= 0) & (rep_bin < n_days)
        close_bin = np.searchsorted(edges, sc.close, side="right") - 1
        okc = sc.closed & (sc.close > 0) & (close_bin >= 0) & (close_bin < n_days)
        cats = sc.frame["cat"].to_numpy()
        by_cat: dict[str, list[int]] = {}
        for cat_code in np.unique(cats[ok]).tolist():
            sel = ok & (cats == cat_code)
            by_cat[sc.tables["cat"][cat_code] or ""] = np.bincount(
                rep_bin[sel], minlength=n_days).tolist()
        return {"days": [d[0] for d in days],
                "total": np.bincount(rep_bin[ok], minlength=n_days).tolist(),
                "closed": np.bincount(close_bin[okc], minlength=n_days).tolist(),
                "by_category": by_cat}

    def _people(self, data: Data, level: str, code: str, now_ms: int) -> dict[str, Any]:
        """Grid workers online (by their assigned grid) and today's patrol coverage."""
        workers = [w for w in data.workers
                   if level == "city" or str(w.get("grid_id") or "").startswith(code)]
        online = sum(1 for w in workers if w.get("status") != "off_duty")
        if level == "city":
            grids = [g.code for g in self.city.grids]
        elif level == "grid":
            grids = [code]
        else:
            grids = [g.code for g in self.city.grids if g.code.startswith(code)]
        visited = sum(1 for g in grids if g in data.patrol)
        return {
            "workers": {"total": len(workers), "online": online,
                        "online_rate": _rate(online, len(workers)),
                        "sos": sum(1 for w in workers if w.get("status") == "sos")},
            "patrol": {"day": day_of(now_ms, self.settings.timezone), "grids": len(grids),
                       "visited": visited, "coverage": _rate(visited, len(grids))},
        }

    @staticmethod
    def _unit_rows(units: Sequence[Unit], field: str, sc: _Scoped) -> list[dict[str, Any]]:
        """One row per unit: window total/closed, open and overdue now, density."""
        col = sc.frame[field].to_numpy()
        index = sc.codes[field]
        size = max(len(index), int(col.max()) + 1 if len(col) else 1)

        def per(mask: np.ndarray) -> np.ndarray:
            return np.bincount(col[mask], minlength=size)

        total, open_ = per(sc.in_window), per(sc.open)
        over = per(sc.open & sc.overdue)
        closed, cancelled = per(sc.in_window & sc.closed), per(sc.in_window & sc.cancelled)
        out = []
        for u in units:
            i = index.get(u.code)
            t, o, v, c, x = ((int(a[i]) for a in (total, open_, over, closed, cancelled))
                             if i is not None else (0, 0, 0, 0, 0))
            out.append({"code": u.code, "name": u.name, "name_en": u.label("en"),
                        "level": u.level, "total": t,
                        "open": o, "overdue": v, "closed": c,
                        "closure_rate": _rate(c, t - x), "area_km2": round(u.area_km2, 3),
                        "density_km2": round(t / u.area_km2, 4) if u.area_km2 else None})
        return out

    @staticmethod
    def _rank(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        rated = [r for r in rows if r["closure_rate"] is not None]
        best = sorted(rated, key=lambda r: (-r["closure_rate"], -r["total"], r["code"]))
        worst = sorted(rated, key=lambda r: (r["closure_rate"], -r["total"], r["code"]))
        over = sorted((r for r in rows if r["overdue"]),
                      key=lambda r: (-r["overdue"], r["code"]))
        return {"closure_rate": best[:RANK_TOP], "closure_rate_low": worst[:RANK_TOP],
                "overdue": over[:RANK_TOP]}

    # -- export -------------------------------------------------------------------------

    def export_frame(self, scope: str | None, from_ms: int, to_ms: int,
                     status: str | None, category: str | None,
                     now_ms: int) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
        """Events (archive + live) reported in [from, to), in scope, with that status and
        category, oldest first: a frame with ids and readable codes (archived rows carry
        `month_name`/`chunk` for `full_records`), and the live events by id."""
        code, level, _ = self.scope_info(scope)
        tz = self.settings.timezone
        first, last = month_of(from_ms, tz), month_of(max(from_ms, to_ms - 1), tz)
        months = [m for m in self.archive.months() if first <= m <= last]
        key = self.store.key
        pipe = self.r.pipeline(transaction=True)
        n = self.archive.queue_read(pipe, months, with_ids=True)
        pipe.hvals(key("state:event"))
        pipe.hvals(key("state:task"))
        pipe.hvals(key("state:alert"))
        for field in CODED:
            pipe.lrange(key(f"archive:codes:{field}"), 0, -1)
        res = pipe.execute()
        arch = Archive.frame_from(months, res[:n], with_ids=True)
        arch["month_name"] = np.asarray([*months, ""], dtype=object)[arch["month"].to_numpy()]
        raw_events, raw_tasks, raw_alerts = res[n:n + 3]
        tables = {f: [_text(v) for v in vals] for f, vals in zip(CODED, res[n + 3:],
                                                                   strict=True)}
        index = {f: {v: i for i, v in enumerate(tables[f])} for f in CODED}
        events = [e for e in (orjson.loads(x) for x in raw_events)
                  if isinstance(e, dict) and e.get("id")]
        events = [e for e in events
                  if from_ms <= int(e.get("first_ts") or e.get("ts") or 0) < to_ms]
        pipe = self.r.pipeline(transaction=False)
        for event in events:
            pipe.lrange(key(f"timeline:{event['id']}"), 0, -1)
        timelines = pipe.execute() if events else []
        tasks, cards = tasks_by_event(raw_tasks), card_flags(raw_alerts)
        live_rows: dict[str, list[Any]] = {c: [] for c in (*TIMES, "sev", "flags", *CODED,
                                                            "id")}
        for event, tl in zip(events, timelines, strict=True):
            eid = str(event["id"])
            row = row_of(event, tasks.get(eid, []), [orjson.loads(x) for x in tl],
                         cards.get(eid, 0), self.deadlines, now_ms)
            for c in (*TIMES, "sev", "flags"):
                live_rows[c].append(int(row[c]))
            for fld in CODED:
                live_rows[fld].append(_code(tables, index, fld, row[fld]))
            live_rows["id"].append(eid)
        live = pd.DataFrame(live_rows)
        live["month_name"] = ""
        live["chunk"] = 0
        frame = pd.concat([arch.drop(columns=["month", "row"]), live], ignore_index=True)
        rep = frame["report"].to_numpy().astype(np.int64)
        mask = (rep >= -(-from_ms // 1000)) & (rep * 1000 < to_ms)
        if level != "city":
            fld = SCOPE_FIELD[level]
            mask &= frame[fld].to_numpy() == index[fld].get(code, -1)
        if status:
            mask &= frame["status"].to_numpy() == index["status"].get(status, -1)
        if category:
            mask &= frame["cat"].to_numpy() == index["cat"].get(category, -1)
        out = frame[mask].sort_values(["report", "id"], kind="stable").reset_index(drop=True)
        for fld in CODED:
            names = np.asarray(tables[fld], dtype=object)
            out[fld] = names[out[fld].to_numpy().astype(np.int64)] if len(out) else []
        return out, {str(e["id"]): e for e in events}

    def full_records(self, part: pd.DataFrame) -> dict[str, dict[str, Any]]:
        """Archived rows' full events by id (decompresses only the chunks they are in)."""
        out: dict[str, dict[str, Any]] = {}
        arch = part[part["month_name"] != ""]
        for month, rows in arch.groupby("month_name"):
            recs = self.archive.records(str(month), rows["chunk"].tolist())
            out.update({k: v["event"] for k, v in recs.items()})
        return out

    def export_rows(self, frame: pd.DataFrame, live: dict[str, dict[str, Any]],
                    lang: str, block: int = 5000) -> Iterator[list[Any]]:
        """The export's rows (EXPORT_COLUMNS order; names in `lang`), read in blocks so
        memory stays flat."""
        def name(prefix: str, code: str) -> str:
            return t(f"{prefix}.{code}", lang) if code else ""

        def place(code: str) -> str:
            unit = self.city.unit(code) if code else None
            return unit.label(lang) if unit else ""

        for start in range(0, len(frame), block):
            part = frame.iloc[start:start + block]
            full = self.full_records(part)
            for rec in part.itertuples(index=False):
                event = live.get(rec.id) or full.get(rec.id) or {}
                flags = int(rec.flags)
                yield [rec.id, iso(rec.report, self.tz), rec.type, name("type", rec.type),
                       rec.cat, name("cat", rec.cat), rec.src, name("src", rec.src),
                       int(rec.sev), rec.status, name("evst", rec.status), rec.town,
                       place(rec.town), rec.community, place(rec.community), rec.grid,
                       place(rec.grid), iso(rec.dispatch, self.tz), iso(rec.arrive, self.tz),
                       iso(rec.handle, self.tz), iso(rec.close, self.tz),
                       int(bool(flags & YELLOW)), int(bool(flags & RED)),
                       int(bool(flags & OVERDUE)), str(event.get("title") or ""),
                       str(event.get("address") or "")]


EXPORT_COLUMNS: Final = (
    "id", "reported_at", "type", "type_name", "category", "category_name", "source",
    "source_name", "severity", "status", "status_name", "town", "town_name", "community",
    "community_name", "grid", "grid_name", "dispatched_at", "arrived_at", "handled_at",
    "closed_at", "yellow_card", "red_card", "overdue", "title", "address",
)


def _next_cut(report: np.ndarray, prev_end: int, prev_stop: int, now_ms: int) -> int | None:
    """When (ms) a previous span cut at `prev_end` (s), moving on with the clock, reaches
    its next event before `prev_stop`: the comparison changes then without new data."""
    later = report[(report >= prev_end) & (report < prev_stop)]
    return now_ms + (int(later.min()) - prev_end + 1) * 1000 if len(later) else None


def export_header(lang: str) -> list[str]:
    """The export's column headers in `lang` (dashboard/i18n.py, `export.*`)."""
    return [t(f"export.{c}", lang) for c in EXPORT_COLUMNS]


def iso(seconds: int, tz: ZoneInfo) -> str:
    """Local ISO-8601 time of epoch seconds; empty for 0 (never)."""
    return datetime.fromtimestamp(int(seconds), tz).isoformat() if seconds else ""
