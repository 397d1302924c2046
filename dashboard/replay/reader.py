"""Reading the replay history back (format: dashboard/replay/history.py): the wall at a
moment, the changes after it, the actions of a period. Everything is cut to the reader's
scope here, on the server: a scoped user's browser never receives what lies outside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import orjson
import redis
from redis.client import NEVER_DECODE

from dashboard.models import EVENT_CLOSED
from dashboard.replay import history as h
from dashboard.scope import covers, cut, place_of

LIST_OF: Final = {"event": "events", "worker": "workers", "resource": "resources",
                  "camera": "cameras", "task": "tasks", "alert": "alerts"}
EVENTS_MAX: Final = 2000  # as the live snapshot (dashboard/store.py SNAPSHOT_EVENTS_MAX)
CLOSED_KEEP_MS: Final = h.DAY_MS  # closed events stay on the wall this long, as live
CHANGES_SPAN_MS: Final = 15 * h.MINUTE_MS  # the longest span of changes one request reads
CHANGES_MAX: Final = 200_000
ACTIONS_SPAN_MS: Final = 31 * h.DAY_MS
NEXT_SPAN_MS: Final = 12 * 3_600_000  # how far ahead "the next alert" is looked for
PIPE: Final = 120  # chunk reads per round trip


class History:
    """The history of one prefix; `client` may decode responses (bytes are read raw)."""

    def __init__(self, client: redis.Redis, prefix: str, days: int) -> None:
        self.r = client
        self.prefix = prefix
        self.days = days

    # -- what there is --------------------------------------------------------------------

    def span(self, now: int) -> dict[str, Any]:
        """`{"from", "to", "days"}`: the oldest moment that can be shown (the first keyframe
        within the retention) and the newest (the last entry written), or nulls."""
        first = self.r.zrangebyscore(h.keys_key(self.prefix), now - self.days * h.DAY_MS,
                                     "+inf", start=0, num=1)
        raw = self.r.get(h.cursor_key(self.prefix))
        text = raw.decode() if isinstance(raw, bytes) else (raw or "")
        _, _, t = text.partition("|")
        newest = max(int(t) if t.isdigit() else 0, self._newest_keyframe())
        return {"from": int(first[0]) if first else None,
                "to": newest if first else None, "days": self.days}

    def _newest_keyframe(self) -> int:
        found = self.r.zrevrange(h.keys_key(self.prefix), 0, 0)
        return int(found[0]) if found else 0

    # -- the wall at a moment -----------------------------------------------------------------

    def wall_at(self, at: int, scope: str | None) -> dict[str, Any] | None:
        """The wall's records at `at` (a keyframe and the changes after it up to `at`), cut
        to `scope`: `{"at", "seq", "keyframe", events, workers, resources, cameras, tasks,
        alerts}`; None when the history holds no keyframe at or before `at`."""
        found = self.r.zrevrangebyscore(h.keys_key(self.prefix), at, "-inf", start=0, num=1)
        if not found:
            return None
        t0 = int(found[0])
        head_raw = self._get(h.frame_key(self.prefix, t0))
        if not head_raw:
            return None
        head = orjson.loads(head_raw)
        names = [(name, digest) for name in h.LISTS for digest in head["blocks"].get(name, [])]
        pipe = self.r.pipeline(transaction=False)
        for _, digest in names:
            pipe.execute_command("GET", h.block_key(self.prefix, digest), **{NEVER_DECODE: True})
        state: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in h.LISTS}
        for (name, _), data in zip(names, pipe.execute(), strict=True):
            if data is None:
                return None  # the keyframe outlived a block: not a faithful picture
            for record in h.block_records(data):
                state[name][str(record.get("id"))] = record
        seq = base_seq = int(head["seq"])
        # a list taken at an earlier keyframe (the cameras) is as of that one's seq: its
        # entries are read from there, the others' from this keyframe's minute on
        bases = head.get("base") or {}
        since = {name: int(t_seq[1]) for name, t_seq in bases.items()}
        marks = [b'"%s",' % kind.encode() for kind, name in LIST_OF.items() if name in bases]
        start = min([t0, *(int(t_seq[0]) for t_seq in bases.values())])
        for entry in self._entries(start, at, t0, marks):
            if entry[1] > at or entry[0] <= since.get(LIST_OF.get(entry[2], ""), base_seq):
                continue
            seq = max(seq, entry[0])
            apply(state, entry)
        lists = visible(state, at)
        if scope:
            lists = cut(lists, scope, lambda rec: rec)
        return {"at": at, "seq": seq, "keyframe": t0, **lists}

    # -- the changes after it -----------------------------------------------------------------

    def changes(self, after_seq: int, start: int, end: int,
                scope: str | None) -> dict[str, Any]:
        """The entries after `after_seq` stamped in [start, end] (end − start ≤
        CHANGES_SPAN_MS), cut to `scope`: `{"changes": [[t, seq, kind, op, record], …],
        "to", "more"}`; `to` is where the answer ends (earlier than `end` when cut short at
        CHANGES_MAX)."""
        out: list[list[Any]] = []
        for entry in self._entries(start, end):
            if entry[0] <= after_seq or entry[1] > end or entry[1] < start:
                continue
            if scope and not covers(scope, place_of(entry[4])):
                continue
            if len(out) >= CHANGES_MAX and entry[1] > out[-1][0]:
                return {"changes": out, "to": out[-1][0], "more": True}
            out.append([entry[1], entry[0], entry[2], entry[3], entry[4]])
        return {"changes": out, "to": end, "more": False}

    # -- the next moment worth looking at -------------------------------------------------------

    def next_time(self, start: int, scope: str | None, kind: str, event_id: str = "",
                  status: str = "", limit_ms: int = 0) -> int | None:
        """The stamp of the first entry after `start` (within NEXT_SPAN_MS, and not after
        `start + limit_ms` when given) that is a new alert (`kind` "alert": one not yet
        acknowledged) or, for `kind` "event", a change of `event_id` to a status other than
        `status`; in `scope`. Lines are looked at by their kind before being parsed, so
        the thousands of moves a minute cost no parsing."""
        mark = b'"%s",' % kind.encode()
        end = start + (limit_ms or NEXT_SPAN_MS)
        for minute in range(start // h.MINUTE_MS, end // h.MINUTE_MS + 1, PIPE):
            last = min(end // h.MINUTE_MS, minute + PIPE - 1)
            pipe = self.r.pipeline(transaction=False)
            for m in range(minute, last + 1):
                pipe.execute_command("GET", h.minute_key(self.prefix, m), **{NEVER_DECODE: True})
            for chunk in pipe.execute():
                for text in h.lines(chunk):
                    if mark not in text[:48]:
                        continue
                    entry = orjson.loads(text)
                    t, record = entry[1], entry[4]
                    if t <= start or t > end or not isinstance(record, dict):
                        continue
                    if scope and not covers(scope, place_of(record)):
                        continue
                    if kind == "alert" and not record.get("acked_by"):
                        return int(t)
                    if kind == "event" and str(record.get("id")) == event_id and \
                            record.get("status") != status:
                        return int(t)
        return None

    # -- the actions of a period --------------------------------------------------------------

    def actions(self, start: int, end: int, scope: str | None) -> list[dict[str, Any]]:
        """Who did what in [start, end]: every task step (dispatch, accepted, arrived,
        handled, verified, rework, closed …, with who and the note) and every alert
        acknowledged, oldest first, in `scope`."""
        seen: set[tuple[Any, ...]] = set()
        rows: list[dict[str, Any]] = []
        for entry in self._entries(start, end):
            kind, record = entry[2], entry[4]
            if kind not in ("task", "alert") or not isinstance(record, dict):
                continue
            if scope and not covers(scope, place_of(record)):
                continue
            for row in _steps(kind, record):
                key = (row["action"], row["subject"], row["ts"], row["by"])
                if start <= row["ts"] <= end and key not in seen:
                    seen.add(key)
                    rows.append(row)
        rows.sort(key=lambda row: (row["ts"], row["subject"]))
        return rows

    # -- reading chunks -------------------------------------------------------------------------

    def _entries(self, start: int, end: int, full_from: int = 0,
                 marks: list[bytes] | None = None) -> Iterator[list[Any]]:
        """The entries of the minutes from `start`'s to `end`'s, in seq order; in the minutes
        before `full_from`'s only the lines of `marks`' kinds (told by their kind before
        parsing)."""
        first, last = start // h.MINUTE_MS, end // h.MINUTE_MS
        full = full_from // h.MINUTE_MS
        for low in range(first, last + 1, PIPE):
            minutes = range(low, min(last, low + PIPE - 1) + 1)
            pipe = self.r.pipeline(transaction=False)
            for minute in minutes:
                pipe.execute_command("GET", h.minute_key(self.prefix, minute),
                                     **{NEVER_DECODE: True})
            for minute, chunk in zip(minutes, pipe.execute(), strict=True):
                if minute >= full:
                    yield from h.entries(chunk)
                    continue
                some = [orjson.loads(text) for text in h.lines(chunk)
                        if any(mark in text[:48] for mark in marks or [])]
                some.sort(key=lambda entry: entry[0])
                yield from some

    def _get(self, key: str) -> bytes | None:
        data: bytes | None = self.r.execute_command("GET", key, **{NEVER_DECODE: True})
        return data


def apply(state: dict[str, dict[str, dict[str, Any]]], entry: list[Any]) -> None:
    """One history entry onto the replayed records (a move merges, as the wall's store)."""
    _, _, kind, op, record = entry
    name = LIST_OF.get(kind)
    if name is None or not isinstance(record, dict):
        return
    key = str(record.get("id"))
    records = state[name]
    if op in ("delete", "remove"):
        records.pop(key, None)
    elif op == "move" and key in records:
        records[key] = {**records[key], **record}
    else:
        records[key] = record


def visible(state: dict[str, dict[str, dict[str, Any]]], at: int) -> dict[str, list[Any]]:
    """What a wall connecting at `at` would have been sent: open events and those closed in
    the last 24 h (at most EVENTS_MAX, the gravest open ones first), open tasks and
    unacknowledged alerts, every unit and camera."""
    events = list(state["events"].values())
    open_events = [e for e in events if e.get("status") not in EVENT_CLOSED]
    open_events.sort(key=lambda e: (_int(e.get("severity"), 9), -_int(e.get("ts"), 0)))
    closed = [e for e in events if e.get("status") in EVENT_CLOSED
              and _int(e.get("ts"), 0) > at - CLOSED_KEEP_MS]
    closed.sort(key=lambda e: -_int(e.get("ts"), 0))
    return {
        "events": (open_events + closed)[:EVENTS_MAX],
        "workers": list(state["workers"].values()),
        "resources": list(state["resources"].values()),
        "cameras": list(state["cameras"].values()),
        "tasks": [t for t in state["tasks"].values() if t.get("stage") != "closed"],
        "alerts": [a for a in state["alerts"].values() if not a.get("acked_by")],
    }


def _steps(kind: str, record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if kind == "alert":
        if record.get("acked_by") and type(record.get("acked_ts")) is int:
            yield {"ts": record["acked_ts"], "action": "alert.ack",
                   "subject": str(record.get("id")), "event_id": record.get("event_id"),
                   "by": str(record["acked_by"]), "note": str(record.get("note") or ""),
                   "detail": str(record.get("message") or "")}
        return
    for step in record.get("history") or []:
        if not isinstance(step, dict) or type(step.get("ts")) is not int:
            continue
        yield {"ts": step["ts"], "action": f"task.{step.get('stage')}",
               "subject": str(record.get("id")), "event_id": record.get("event_id"),
               "by": str(step.get("by") or ""), "note": str(step.get("note") or ""),
               "detail": ", ".join(str(a.get("id")) for a in record.get("assignees") or []
                                   if isinstance(a, dict))}


def _int(value: Any, default: int) -> int:
    return value if type(value) is int else default
