"""The desk's two Lua scripts and their Python wrappers: one script writes a new task (the
dispatch), the other one lifecycle step of an existing task.

Records are built in Python; the script checks (idempotency key, the event's active task,
engaged units, the revisions read) and writes everything at once, so two commanders clicking
at the same moment book a unit once, and a GPS fix that lands in between only makes the
caller re-read and retry. Every status change goes through the change log (`restate`/`emit`
of the prelude, dashboard/prelude.lua), so walls see it like any other change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson

from dashboard import lua
from dashboard.command.common import as_str, dumps
from dashboard.command.nearby import FREE_STATUS, UNIT_KINDS
from dashboard.errors import Refused
from dashboard.models import EVENT_CLOSED
from dashboard.store import Store, day_of

IDEM_TTL_S: Final = 24 * 3600
# What the dashboard sets a unit to while engaged, by task stage; field statuses (sos,
# off_duty, unavailable) are never overwritten by the desk.
ENGAGED: Final = {"worker": frozenset({"busy"}),
                  "resource": frozenset({"dispatched", "en_route", "on_scene"})}
BUSY_STATUS: Final = {"worker": "busy", "resource": "dispatched"}

# A task id is spliced into JSON built here: Lua writes '{"id": "<tid>"' + the rest.
_ID_HEAD: Final = '{"id": ""'
_TASK_ID_HEAD: Final = '{"task_id": ""'

# Both scripts use the prelude's task_tail (the stored task JSON from its id and the rest) and
# rev_ok (a revision check): dashboard/prelude.lua.
DISPATCH_LUA: Final = lua.source(__file__, "dispatch.lua")

# One lifecycle step of an existing task (feedback, verify, evaluate).
STEP_LUA: Final = lua.source(__file__, "task_step.lua")
# What a step reads first (the task, its event, its units), in one round trip.
READ_LUA: Final = lua.source(__file__, "task_read.lua")

# prelude.lua's restate: a record's new revision is its old one plus this, so the desk knows
# the revisions its own writes leave (Lifecycle's memory of them).
REV_JUMP: Final = 1_000_000

UnitKey = tuple[str, str]  # (kind, id)
Unit = tuple[str, str, dict[str, Any], str]  # (kind, id, record, rev)


@dataclass
class Step:
    """What one lifecycle step changes; built by a rule from what was read."""

    task: dict[str, Any]
    event_status: str | None = None
    unit_status: dict[UnitKey, str] = field(default_factory=dict)
    release: set[UnitKey] = field(default_factory=set)
    keep_open: bool = True
    clear_event: bool = False


@dataclass
class Read:
    """A task as stored with its event and units, and the revisions the step script checks."""

    raw: str
    task: dict[str, Any]
    event: dict[str, Any] | None
    event_rev: str
    units: dict[UnitKey, tuple[dict[str, Any], str]]
    engaged: dict[UnitKey, str | None]


def read_units(store: Store, keys: list[UnitKey]
               ) -> tuple[dict[UnitKey, tuple[dict[str, Any], str]], list[str | None]]:
    """(record, rev) of the units that exist, and the task each one is engaged in (in order)."""
    found: dict[UnitKey, tuple[dict[str, Any], str]] = {}
    if not keys:
        return found, []
    pipe = store.r.pipeline(transaction=False)  # one round trip (it was three)
    wanted = {kind: [i for k, i in keys if k == kind] for kind in UNIT_KINDS}
    for kind, ids in wanted.items():
        if ids:
            pipe.hmget(store.key(f"state:{kind}"), ids)
            pipe.hmget(store.key(f"meta:{kind}"), ids)
    for kind, unit_id in keys:  # GET each: a cluster's pipeline refuses MGET
        pipe.get(store.key(f"task:unit:{kind}:{unit_id}"))
    replies = iter(pipe.execute())
    for kind, ids in wanted.items():
        if not ids:
            continue
        states, metas = next(replies), next(replies)
        for unit_id, state, meta in zip(ids, states, metas, strict=True):
            if state is not None and meta is not None:
                found[(kind, unit_id)] = (orjson.loads(state), as_str(meta).split("|", 1)[0])
    return found, [as_str(v) if v else None for v in replies]


class TaskScripts:
    """The two scripts loaded on one Store; `tz` names the day a change is counted in."""

    def __init__(self, store: Store, tz: ZoneInfo) -> None:
        self.store = store
        self._tz = tz
        self._dispatch = store.script(DISPATCH_LUA)
        self._step = store.script(STEP_LUA)
        self._read = store.script(READ_LUA)

    def dispatch(self, *, key: str, event_id: str, event: dict[str, Any], event_rev: str,
                 task: dict[str, Any], message: dict[str, Any], old_tid: str, old_raw: str,
                 old_json: str, units: list[Unit], now: int) -> Read | None:
        """Write `task` (its id empty) for the event, engage `units`, close the superseded
        rejected task `old_tid` (as `old_json`, if it still reads `old_raw`) and publish
        `message` on cc:dispatch. The new task (`task`, its id filled in) with its event and
        units as the script left them; None when the key's task exists or something read
        changed meanwhile (read again); refused has_task, unit_busy, no_event.
        """
        # the event names its task: the script closes `..."task_id": ` with the new id
        named = {k: v for k, v in event.items() if k != "task_id"}
        after = {**named, "status": "dispatched", "status_ts": now, "task_id": ""}
        event_head = dumps(after)
        if not event_head.endswith('""}'):
            raise AssertionError("event JSON must end with the empty task_id")
        event_head = event_head[:-3]
        tail = _tail(task, _ID_HEAD)
        args: list[str | int | float] = [
            key, IDEM_TTL_S, event_id, event_rev, event_head, now, day_of(now, self._tz.key),
            datetime.fromtimestamp(now / 1000, self._tz).strftime("%Y%m%d"),
            tail, _tail(message, _TASK_ID_HEAD), old_tid, old_raw, old_json, len(units),
        ]
        engaged: dict[UnitKey, tuple[dict[str, Any], str]] = {}
        for kind, unit_id, record, rev in units:
            status = BUSY_STATUS[kind]
            busy = {**record, "status": status, "status_ts": now}
            args += [kind, unit_id, rev, dumps(busy), status]
            engaged[(kind, unit_id)] = (busy, next_rev(rev))
        out = self._dispatch(*args)
        verdict, what = as_str(out[0]), as_str(out[1])
        if verdict == "ok":
            task["id"] = what
            return Read(task_tail(what, tail), task, {**after, "task_id": what},
                        next_rev(event_rev), engaged, dict.fromkeys(engaged, what))
        if verdict == "has_task":
            raise Refused("has_task", 409, "the event already has a task", task_id=what)
        if verdict == "unit_busy":
            unit_id = what.split(":", 1)[1]
            # not `task_id`: in a 409 that names the event's own task (has_task)
            raise Refused("unit_busy", 409, f"{what} is engaged in task {as_str(out[2])}",
                                unit=unit_id, engaged_in=as_str(out[2]))
        if verdict == "no_event":
            raise Refused("no_event", 404, f"no event {event_id!r}")
        return None  # dup (the caller returns the stored task) or stale (read again)

    def read(self, task_id: str, event_id: str = "") -> Read | None:
        """The task with what a step checks; None when there is no such task. With `task_id`
        '', the task of `event_id` (its active one, else its last); refused no_event."""
        out = [as_str(v) for v in self._read(task_id, event_id)]
        if out == ["no_event"]:
            raise Refused("no_event", 404, f"no event {event_id!r}")
        if not out:
            return None
        raw, event_raw, event_meta = out[:3]
        task = orjson.loads(raw)
        event = orjson.loads(event_raw) if event_raw and event_meta else None
        units: dict[UnitKey, tuple[dict[str, Any], str]] = {}
        engaged: dict[UnitKey, str | None] = {}
        for at in range(3, len(out), 5):
            kind, unit_id, state, meta, engaged_in = out[at:at + 5]
            engaged[(kind, unit_id)] = engaged_in or None
            if kind in UNIT_KINDS and state and meta:  # as read_units has it
                units[(kind, unit_id)] = (orjson.loads(state), meta.split("|", 1)[0])
        return Read(raw, task, event, event_meta.split("|", 1)[0] if event else "", units,
                    engaged)

    def step(self, read: Read, step: Step, now: int, strict: bool = False) -> Read | None:
        """Write one step; the task with its event and units as it leaves them, or None when
        the task, its event or a unit it writes changed since `read`. `strict`: None also
        when the event or any unit of `read` changed at all (a remembered read, not one
        just made)."""
        task = step.task
        tid = task["id"]
        event_json, event_rev = "", ""
        if (step.event_status and read.event is not None
                and read.event.get("status") not in EVENT_CLOSED
                and read.event.get("status") != step.event_status):
            event_json = dumps({**read.event, "status": step.event_status, "status_ts": now})
            event_rev = read.event_rev
        unit_args: list[str] = []
        units, engaged = dict(read.units), dict(read.engaged)  # as this step leaves them
        n = 0
        for key in {*step.unit_status, *step.release}:
            kind, unit_id = key
            ours = read.engaged.get(key) == tid
            if not ours:
                continue  # released already, or engaged elsewhere now: not ours to touch
            found = read.units.get(key)
            record_json, new, rev = "", "", ""
            if found is not None:
                record, rev = found
                status = record.get("status")
                new = FREE_STATUS[kind] if key in step.release else step.unit_status[key]
                # a status from the field (sos, off_duty, unavailable) is theirs to change
                if status in ENGAGED[kind] and status != new:
                    changed = {**record, "status": new, "status_ts": now}
                    record_json = dumps(changed)
                    units[key] = (changed, next_rev(rev))
            unit_args += [kind, unit_id, record_json, new, rev,
                          "1" if key in step.release else "0"]
            if key in step.release:
                engaged[key] = None
            n += 1
        if strict:  # every revision the rule relied on, and every engagement
            unit_args += ["1", read.event_rev, str(len(read.engaged))]
            for (kind, unit_id), engaged_in in read.engaged.items():
                found = read.units.get((kind, unit_id))
                unit_args += [kind, unit_id, found[1] if found else "", engaged_in or ""]
        raw = dumps(task)
        out = self._step(tid, read.raw, raw, "1" if step.keep_open else "0",
                         "1" if step.clear_event else "0", task["event_id"], event_json,
                         step.event_status or "", event_rev, now, day_of(now, self._tz.key), n,
                         *unit_args)
        if as_str(out) != "ok":
            return None
        event, rev = read.event, read.event_rev
        if event_json and event is not None:
            event, rev = {**event, "status": step.event_status, "status_ts": now}, next_rev(rev)
        return Read(raw, task, event, rev, units, engaged)


def task_tail(task_id: str, tail: str) -> str:
    """The stored task JSON from its id and the rest (prelude.lua's task_tail)."""
    return f'{{"id": "{task_id}"{tail}'


def next_rev(rev: str) -> str:
    """The revision a restate leaves after `rev` (prelude.lua)."""
    return str(int(rev) + REV_JUMP)


def _tail(record: dict[str, Any], head: str) -> str:
    """The JSON of `record` after its empty first field (the id the script fills in)."""
    text = dumps(record)
    if not text.startswith(head):
        raise AssertionError(f"JSON must start with {head}")
    return text[len(head):]
