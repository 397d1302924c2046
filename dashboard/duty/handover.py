"""Shift handover (交接班): the report drafted from the system's state, signed and accepted.

`draft(...)` reads the live state (and the archive when the window is old enough for it to
matter) and lists, for one shift window [from, to): events opened, events closed, events
still open (how long), overdue, pending verification, notable alarms and the notes made.
Definitions are the cockpit's (dashboard/archive/events.py `event_times`, `overdue`), so a count
here matches the cockpit's. `Handovers` keeps the reports (`Phandover:{id}` + the index
`Phandover:index`, capped) and runs the state machine draft → signed → accepted. Keys,
routes and decisions: docs/DUTY.md.

Signatures are keyed: HMAC-SHA256 over the signed content (and, for the acceptance, over the
signature and who accepted when), with a server secret kept in the data folder
(`secrets/handover-key`, dashboard/access/keyfile.py), never in Redis, so whoever can write to
Redis cannot re-sign a changed report. A report signed before signatures were keyed (no
`hmac`), or with another key (`kid` differs), cannot be verified: it reads `intact: false`
with `unverifiable` saying why, and cannot be accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson
import redis

from dashboard import lua
from dashboard.access.keyfile import HANDOVER_KEY, secret
from dashboard.archive.events import (
    Archive,
    binary_client,
    event_times,
    month_of,
    overdue,
    tasks_by_event,
)
from dashboard.command.alerts import Alerts
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.duty.roster import Roster
from dashboard.errors import Refused, text_arg
from dashboard.models import EVENT_CLOSED
from dashboard.store import Store, now_ms

LIST_MAX: Final = 200  # items kept per section; the rest is counted in `more`
KEEP: Final = 1000  # reports kept; the oldest go first
WINDOW_MAX_MS: Final = 24 * 3600 * 1000
TEXT_MAX: Final = 4000  # remarks / summary
NOTE_MAX: Final = 500
TITLE_MAX: Final = 120
DUPLICATE_LOOKBACK: Final = 50  # newest reports checked for the same window
ARCHIVE_LOOKBACK_DAYS: Final = 92  # an archived event closed in the window was reported since
SECTIONS: Final = ("opened", "closed", "open", "overdue", "pending_verification", "alarms",
                   "notes")
# Alarms worth handing over: level I/II events and rejected / need-support tasks
# (critical_event), SOS, red cards, a worker leaving their grid. Yellow cards are not.
NOTABLE: Final = frozenset({"critical_event", "sos", "sla_red", "geofence_exit"})
PENDING: Final = "handled"  # handled in the field, not verified yet (docs/COMMAND-LOOP.md)
STATES: Final = ("draft", "signed", "accepted")
# What the signature covers (with `signed.by/name/ts`): everything but the later states.
SIGNED_FIELDS: Final = ("id", "from", "to", "scope", "shift", "incoming", "author",
                        "author_name", "created", "generated", "sections", "counts",
                        "summary", "remarks")

# ARGV[1] key prefix, [2] id, [3] packed report, [4] summary JSON, [5] score, [6] cap.
# Returns the ids dropped (the oldest, past the cap).
_SAVE: Final = lua.source(__file__, "handover_save.lua")





def _section(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items[:LIST_MAX], "total": len(items),
            "more": max(0, len(items) - LIST_MAX)}


def _in_scope(places: Iterable[Any], scope: str | None) -> bool:
    return not scope or any(str(p).startswith(scope) for p in places if p)


def _item(event: dict[str, Any], times: dict[str, int | None], late: bool, now: int,
          archived: bool = False) -> dict[str, Any]:
    report = times["report"]
    open_now = event.get("status") not in EVENT_CLOSED
    return {
        "id": str(event.get("id")), "title": str(event.get("title") or "")[:TITLE_MAX],
        "type": event.get("type"), "severity": event.get("severity"),
        "status": event.get("status"), "grid_id": event.get("grid_id"),
        "reported": report, "handled": times["handle"],
        "closed": times["close"], "overdue": late, "archived": archived,
        "open_s": (now - report) // 1000 if open_now and report is not None else None,
    }


def _archived(store: Store, settings: Settings, deadlines: Deadlines, from_ms: int,
              to_ms: int, now: int) -> list[dict[str, Any]]:
    """Archived events reported or closed in [from, to): their items (bounded per kind)."""
    archive = Archive(store, settings, deadlines)
    first = month_of(from_ms - ARCHIVE_LOOKBACK_DAYS * 86400_000, settings.timezone)
    last = month_of(to_ms, settings.timezone)
    months = [m for m in archive.months() if first <= m <= last]
    if not months:
        return []
    frame = archive.frame(months)
    lo, hi = from_ms // 1000, (to_ms - 1) // 1000
    report, close = frame["report"].to_numpy(), frame["close"].to_numpy()
    hit = frame[((report >= lo) & (report <= hi)) | ((close >= lo) & (close <= hi))]
    hit = hit.sort_values("report").head(4 * LIST_MAX)  # enough for both lists' first items
    out: list[dict[str, Any]] = []
    for mi, rows in hit.groupby("month"):
        records = archive.records(months[int(mi)], rows["chunk"].tolist())
        for rec in records.values():
            event = rec.get("event") or {}
            times = event_times(event, rec.get("tasks") or ([rec["task"]] if rec.get("task")
                                                            else []), rec.get("timeline") or [])
            rep, cl = times["report"], times["close"]
            if (rep is not None and from_ms <= rep < to_ms) or \
                    (cl is not None and from_ms <= cl < to_ms):
                out.append(_item(event, times, overdue(event, times, deadlines, now), now, True))
    return out


def draft(store: Store, settings: Settings, from_ms: int, to_ms: int, now: int,
          deadlines: Deadlines | None = None, scope: str | None = None) -> dict[str, Any]:
    """The sections of a handover for the window [from_ms, to_ms) as the state is at `now`:
    `{"sections": {name: {"items", "total", "more"}}, "counts": {name: total}}`.

    - opened: reported in the window; closed: closed or cancelled in the window (the last
      closing status change, archive.event_times);
    - open, overdue, pending_verification: now (at drafting), whatever their age; overdue as
      the cockpit counts it; pending verification = status `handled`;
    - alarms: alerts raised in the window of a NOTABLE kind; notes: acknowledgement notes
      (and any `notes` entries of an alert) made in the window.
    Archived events are read too when the window starts more than `archive_age_s` before
    now: only then can an event of the window have been archived.
    """
    deadlines = deadlines or Deadlines.load()
    key = store.key
    pipe = store.r.pipeline(transaction=True)
    pipe.hvals(key("state:event"))
    pipe.hvals(key("state:task"))
    pipe.hvals(key("state:alert"))
    raw_events, raw_tasks, raw_alerts = pipe.execute()
    tasks = tasks_by_event(raw_tasks)
    events = [e for e in (orjson.loads(x) for x in raw_events)
              if isinstance(e, dict) and e.get("id")
              and _in_scope((e.get("grid_id"), e.get("community_id"), e.get("town_id")), scope)]
    # the timeline matters only for events past a plain report
    need = [e for e in events if e.get("status") != "reported" or str(e["id"]) in tasks]
    pipe = store.r.pipeline(transaction=False)
    for e in need:
        pipe.lrange(key(f"timeline:{e['id']}"), 0, -1)
    timelines = {str(e["id"]): [orjson.loads(x) for x in tl]
                 for e, tl in zip(need, pipe.execute() if need else [], strict=True)}
    opened, closed, still, late_open, pending = [], [], [], [], []
    for event in events:
        eid = str(event["id"])
        times = event_times(event, tasks.get(eid, []), timelines.get(eid, []))
        late = overdue(event, times, deadlines, now)
        item = _item(event, times, late, now)
        rep, cl = times["report"], times["close"]
        if rep is not None and from_ms <= rep < to_ms:
            opened.append(item)
        if cl is not None and from_ms <= cl < to_ms:
            closed.append(item)
        if event.get("status") not in EVENT_CLOSED:
            still.append(item)
            if late:
                late_open.append(item)
            if event.get("status") == PENDING:
                pending.append(item)
    if from_ms < now - settings.archive_age_s * 1000:
        live = {i["id"] for i in opened} | {i["id"] for i in closed}
        for item in _archived(store, settings, deadlines, from_ms, to_ms, now):
            if item["id"] in live or not _in_scope(
                    (item["grid_id"],), scope):
                continue
            if item["reported"] is not None and from_ms <= item["reported"] < to_ms:
                opened.append(item)
            if item["closed"] is not None and from_ms <= item["closed"] < to_ms:
                closed.append(item)
    alarms, notes = _alerts(store, raw_alerts, from_ms, to_ms, scope)
    by_sev = lambda i: (i["severity"] or 9, i["reported"] or 0, i["id"])  # noqa: E731
    sections = {
        "opened": _section(sorted(opened, key=lambda i: (i["reported"] or 0, i["id"]))),
        "closed": _section(sorted(closed, key=lambda i: (i["closed"] or 0, i["id"]))),
        "open": _section(sorted(still, key=by_sev)),
        "overdue": _section(sorted(late_open, key=by_sev)),
        "pending_verification": _section(sorted(pending, key=lambda i: (i["handled"] or 0,
                                                                       i["id"]))),
        "alarms": _section(alarms),
        "notes": _section(notes),
    }
    return {"sections": sections, "counts": {k: v["total"] for k, v in sections.items()}}


def _alerts(store: Store, raw_alerts: list[Any], from_ms: int, to_ms: int,
            scope: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    alerts = [a for a in (orjson.loads(x) for x in raw_alerts) if isinstance(a, dict)]
    if scope:
        areas = Alerts(store).areas(alerts)  # their events' grids, an SOS's worker's
        # a worker's alert with no event (a geofence exit): where the worker is
        loose = sorted({str(a.get("subject_id")) for a in alerts
                        if areas.get(a.get("id")) is None and not a.get("event_id")})
        if loose:
            raws = store.r.hmget(store.key("state:worker"), loose)
            where = {w: (json.loads(x).get("loc_grid_id") or json.loads(x).get("grid_id"))
                     for w, x in zip(loose, raws, strict=True) if x}
            for a in alerts:
                if areas.get(a.get("id")) is None and not a.get("event_id"):
                    areas[a.get("id")] = where.get(str(a.get("subject_id")))
        alerts = [a for a in alerts if _in_scope((areas.get(a.get("id")),), scope)]
    alarms, notes = [], []
    for a in alerts:
        ts = a.get("ts")
        if a.get("kind") in NOTABLE and isinstance(ts, int) and from_ms <= ts < to_ms:
            alarms.append({k: a.get(k) for k in ("id", "kind", "severity", "event_id",
                                                 "subject_id", "message", "ts", "acked_by",
                                                 "acked_ts")}
                          # each language's text and the feed's words, as the desk shows them
                          | {k: a[k] for k in ("texts", "feed") if k in a})
        base = {"alert_id": a.get("id"), "kind": a.get("kind"), "event_id": a.get("event_id")}
        acked = a.get("acked_ts")
        if a.get("note") and isinstance(acked, int) and from_ms <= acked < to_ms:
            notes.append({**base, "by": a.get("acked_by"), "ts": acked,
                          "text": str(a["note"])[:NOTE_MAX], "what": "ack"})
        for n in a.get("notes") or []:  # the duty desk's notes on an alert, if it keeps any
            nts = n.get("ts") if isinstance(n, dict) else None
            text = n.get("text") or n.get("note") if isinstance(n, dict) else None
            if text and isinstance(nts, int) and from_ms <= nts < to_ms:
                notes.append({**base, "by": n.get("by"), "ts": nts,
                              "text": str(text)[:NOTE_MAX], "what": "note"})
    alarms.sort(key=lambda x: (x["ts"], str(x["id"])))
    notes.sort(key=lambda x: (x["ts"], str(x["alert_id"])))
    return alarms, notes


def pack(report: dict[str, Any]) -> bytes:
    """A stored report: zlib-compressed JSON (a busy shift's lists run to hundreds of KB of
    repetitive JSON; compressed they take a few tens)."""
    return zlib.compress(orjson.dumps(report), 6)


def unpack(raw: bytes) -> dict[str, Any]:
    return orjson.loads(zlib.decompress(raw))


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its sections, for the list."""
    return {k: v for k, v in report.items() if k not in ("sections", "intact", "unverifiable")}


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _signed_body(report: dict[str, Any], signed: dict[str, Any]) -> bytes:
    body = {k: report.get(k) for k in SIGNED_FIELDS}
    body["signed"] = {k: signed.get(k) for k in ("by", "name", "ts")}
    return _canonical(body)


def content_hash(report: dict[str, Any], signed: dict[str, Any]) -> str:
    """SHA-256 of the signed content (canonical JSON) and who signed when: the digest printed
    on paper to match a printout with the stored report (anyone can compute it: the proof
    is the keyed `hmac`)."""
    return hashlib.sha256(_signed_body(report, signed)).hexdigest()


def handover_key(data_dir: Any) -> bytes:
    """The signing key of this data folder, made (32 random bytes) on first use."""
    return bytes.fromhex(secret(data_dir, HANDOVER_KEY))


def key_id(key: bytes) -> str:
    """Which key signed (not the key): tells a report signed with another key from a changed
    one."""
    return hashlib.sha256(b"cc-handover-kid\x00" + key).hexdigest()[:16]


def seal(key: bytes, report: dict[str, Any], signed: dict[str, Any]) -> str:
    """HMAC-SHA256 of the signed content and who signed when."""
    return hmac.new(key, _signed_body(report, signed), hashlib.sha256).hexdigest()


def acceptance_seal(key: bytes, signed: dict[str, Any], accepted: dict[str, Any]) -> str:
    """HMAC-SHA256 of the signature accepted and who accepted when, with which note."""
    body = {"signed": signed.get("hmac"),
            "accepted": {k: accepted.get(k) for k in ("by", "name", "ts", "note", "sha256")}}
    return hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()


def verdict(report: dict[str, Any], key: bytes) -> dict[str, Any]:
    """`{"intact": …, "unverifiable": …}` of a report: intact None while a draft, True when
    its signatures verify with `key`; False when they do not, with `unverifiable` "unkeyed"
    (signed before signatures were keyed) or "other_key" (signed with another key) when
    that is why, else None (changed since it was signed)."""
    signed = report.get("signed")
    if not signed:
        return {"intact": None, "unverifiable": None}
    accepted = report.get("accepted")
    if not signed.get("hmac") or (accepted and not accepted.get("hmac")):
        return {"intact": False, "unverifiable": "unkeyed"}
    kid = key_id(key)
    if signed.get("kid") != kid or (accepted and accepted.get("kid") != kid):
        return {"intact": False, "unverifiable": "other_key"}
    ok = hmac.compare_digest(seal(key, report, signed), str(signed["hmac"]))
    if ok and accepted:
        ok = hmac.compare_digest(acceptance_seal(key, signed, accepted), str(accepted["hmac"]))
    return {"intact": ok, "unverifiable": None}


def intact(report: dict[str, Any], key: bytes) -> bool | None:
    """Whether a signed report is still what was signed (keyed check); None while a draft."""
    return verdict(report, key)["intact"]


class Handovers:
    """The kept reports and their state machine (draft → signed → accepted)."""

    def __init__(self, store: Store, settings: Settings, roster: Callable[[], Roster],
                 deadlines: Deadlines | None = None, clock: Callable[[], int] = now_ms,
                 keep: int = KEEP, key: bytes | None = None) -> None:
        self.store = store
        # the signing key: the data folder's, unless a test gives one
        self.key = key if key is not None else handover_key(settings.data_dir)
        self.settings = settings
        self.roster = roster
        self.deadlines = deadlines or Deadlines.load()
        self.clock = clock
        self.keep = keep
        self.tz = ZoneInfo(settings.timezone)
        self.rb = binary_client(store.r)  # reports are stored compressed
        self._save = self.rb.register_script(_SAVE)

    def _key(self, report_id: str) -> str:
        return self.store.key(f"handover:{report_id}")

    def get(self, report_id: str) -> dict[str, Any] | None:
        """The report with `intact` (True/False once signed, None while a draft)."""
        if not report_id or len(report_id) > 64:
            return None
        raw = self.rb.get(self._key(report_id))
        if raw is None:
            return None
        report = unpack(raw)
        return {**report, **verdict(report, self.key)}

    def list(self, limit: int = 50, scope: str | None = None) -> list[dict[str, Any]]:
        """Newest first: the reports without their sections (the counts only)."""
        r = self.store.r
        ids = r.zrevrange(self.store.key("handover:index"), 0, max(0, limit - 1))
        if not ids:
            return []
        out = []
        for raw in r.hmget(self.store.key("handover:list"), ids):
            if raw is None:
                continue
            report = json.loads(raw)
            if scope and not str(report.get("scope") or "").startswith(scope):
                continue
            out.append(report)
        return out

    def create(self, *, by: str, scope: str | None = None, from_ms: int | None = None,
               to_ms: int | None = None) -> dict[str, Any]:
        """Draft the report of the current shift (or of [from_ms, to_ms)) and keep it.
        Refused: a bad window (400), a report of that window exists (409)."""
        now = int(self.clock())
        roster = self.roster()
        if from_ms is None and to_ms is None:
            shift = roster.at(now)
            from_ms, to_ms = shift.start_ms, shift.end_ms
        if not isinstance(from_ms, int) or not isinstance(to_ms, int) or \
                isinstance(from_ms, bool) or isinstance(to_ms, bool):
            raise Refused("bad_window", 400, "from and to: both epoch ms, or neither")
        if not 0 < to_ms - from_ms <= WINDOW_MAX_MS:
            raise Refused("bad_window", 400, "to must be after from, at most 24 h later")
        if from_ms > now:
            raise Refused("bad_window", 400, "the window has not started yet")
        for old in self.list(DUPLICATE_LOOKBACK):
            if old.get("from") == from_ms and old.get("to") == to_ms and \
                    (old.get("scope") or None) == (scope or None):
                raise Refused("exists", 409, "a handover of this window exists",
                                    id=old["id"], state=old.get("state"))
        outgoing, incoming = roster.at(from_ms), roster.at(to_ms)
        local = datetime.fromtimestamp(from_ms / 1000, self.tz)
        report: dict[str, Any] = {
            "id": f"H{local:%Y%m%d%H%M}-{secrets.token_hex(3)}", "state": "draft",
            "from": from_ms, "to": to_ms, "scope": scope or None,
            "shift": outgoing.to_dict(roster.people), "incoming": incoming.to_dict(roster.people),
            "author": by, "author_name": roster.name_of(by), "created": now, "updated": now,
            "generated": now, "summary": "", "remarks": "", "signed": None, "accepted": None,
            **draft(self.store, self.settings, from_ms, to_ms, now, self.deadlines, scope),
        }
        self._store(report)
        return {**report, "intact": None, "unverifiable": None}

    def _store(self, report: dict[str, Any]) -> None:
        self._save(keys=[self.store.anchor],
                   args=[self.store.prefix, report["id"], pack(report),
                         json.dumps(summary(report), ensure_ascii=False), report["created"],
                         self.keep])

    def _change(self, report_id: str, fn: Callable[[dict[str, Any]], dict[str, Any]]
                ) -> dict[str, Any]:
        """Read, change with `fn` (which may refuse) and write back unless the report changed
        in between (then again): two officers clicking at once get one outcome."""
        key = self._key(report_id)
        if not report_id or len(report_id) > 64:
            raise Refused("not_found", 404, f"no handover {report_id!r}")
        with self.rb.pipeline(transaction=True) as pipe:
            for _ in range(10):
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        raise Refused("not_found", 404, f"no handover {report_id!r}")
                    new = fn(unpack(raw))
                    pipe.multi()
                    pipe.set(key, pack(new))
                    pipe.hset(self.store.key("handover:list"), report_id,
                              json.dumps(summary(new), ensure_ascii=False))
                    pipe.execute()
                    return {**new, **verdict(new, self.key)}
                except redis.WatchError:
                    continue
        raise Refused("busy", 409, "the report keeps changing; try again")

    def edit(self, report_id: str, *, by: str, remarks: Any = None, summary: Any = None,
             refresh: bool = False) -> dict[str, Any]:
        """The author changes the remarks / summary, or drafts the sections again, while the
        report is a draft."""
        remarks_text = None if remarks is None else text_arg(remarks, "remarks", TEXT_MAX)
        summary_text = None if summary is None else text_arg(summary, "summary", TEXT_MAX)

        def change(report: dict[str, Any]) -> dict[str, Any]:
            self._draft_by(report, by)
            now = int(self.clock())
            out = {**report, "updated": now}
            if remarks_text is not None:
                out["remarks"] = remarks_text
            if summary_text is not None:
                out["summary"] = summary_text
            if refresh:
                out.update(generated=now, **draft(self.store, self.settings, report["from"],
                                                   report["to"], now, self.deadlines,
                                                   report.get("scope")))
            return out

        return self._change(report_id, change)

    @staticmethod
    def _draft_by(report: dict[str, Any], by: str) -> None:
        if report.get("state") != "draft":
            raise Refused("not_draft", 409, "the report is signed: it can no longer "
                                "change", state=report.get("state"))
        if report.get("author") != by:
            raise Refused("not_author", 403, "only the author may change or sign it",
                                author=report.get("author"))

    def sign(self, report_id: str, *, by: str) -> dict[str, Any]:
        """The outgoing officer (the author) signs: the content is frozen and hashed."""

        def change(report: dict[str, Any]) -> dict[str, Any]:
            self._draft_by(report, by)
            now = int(self.clock())
            signed = {"by": by, "name": self.roster().name_of(by), "ts": now}
            out = {**report, "state": "signed", "updated": now}
            out["signed"] = {**signed, "sha256": content_hash(out, signed),
                             "hmac": seal(self.key, out, signed), "kid": key_id(self.key)}
            return out

        return self._change(report_id, change)

    def accept(self, report_id: str, *, by: str, note: Any = None) -> dict[str, Any]:
        """Another duty officer takes the watch: signs to accept a signed, intact report."""
        note_text = text_arg(note, "note", NOTE_MAX)

        def change(report: dict[str, Any]) -> dict[str, Any]:
            state = report.get("state")
            if state != "signed":
                raise Refused("not_signed" if state == "draft" else "accepted", 409,
                                    "only a signed report can be accepted; this one is "
                                    f"{state}", state=state)
            if report.get("author") == by:
                raise Refused("own_report", 403, "the outgoing officer cannot accept "
                                    "their own handover; the incoming officer signs")
            check = verdict(report, self.key)
            if check["unverifiable"]:
                raise Refused("unverifiable", 409, "the report's signature cannot be "
                                    "verified (signed before signatures were keyed, or with "
                                    "another key)", reason=check["unverifiable"])
            if not check["intact"]:
                raise Refused("tampered", 409, "the report no longer matches its "
                                    "signature")
            now = int(self.clock())
            accepted = {"by": by, "name": self.roster().name_of(by), "ts": now,
                        "note": note_text, "sha256": report["signed"]["sha256"]}
            accepted.update(hmac=acceptance_seal(self.key, report["signed"], accepted),
                            kid=key_id(self.key))
            return {**report, "state": "accepted", "updated": now, "accepted": accepted}

        return self._change(report_id, change)
