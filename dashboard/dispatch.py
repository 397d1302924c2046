"""The duty desk: proposal, one-click dispatch and the task lifecycle (上报-派发-反馈-核查-评价).

Records are built in Python; one Lua script per change checks (idempotency key, the event's
active task, engaged units, the revisions read) and writes everything at once, so two
commanders clicking at the same moment book a unit once, and a GPS fix that lands in between
only makes the caller re-read and retry. Every status change goes through the change log
(`restate`/`emit` of `store.LUA_LIB`), so walls see it like any other change.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from dashboard.config import Settings
from dashboard.geo import haversine_m
from dashboard.models import EVENT_CLOSED, FEEDBACK_STAGES
from dashboard.nearby import FREE_STATUS, UNIT_KINDS, nearest, unit_of
from dashboard.store import Store, day_of

if TYPE_CHECKING:
    from dashboard.plans import Match, PlanLibrary
    from dashboard.sla import Deadlines

IDEM_TTL_S: Final = 24 * 3600
SHOWN_TTL_S: Final = 900  # the last proposal shown for an event (Pproposal:{event_id})
ATTEMPTS: Final = 6  # re-reads after a revision changed under us (a GPS fix, another desk)
MAX_ASSIGNEES: Final = 30
KEY_RE: Final = re.compile(r"[\x21-\x7e]{1,128}\Z")  # printable ASCII, no spaces
HISTORY_MAX: Final = 200
CANDIDATES: Final = 10
# What the dashboard sets a unit to while engaged, by task stage; field statuses (sos,
# off_duty, unavailable) are never overwritten by the desk.
ENGAGED: Final = {"worker": frozenset({"busy"}),
                  "resource": frozenset({"dispatched", "en_route", "on_scene"})}
BUSY_STATUS: Final = {"worker": "busy", "resource": "dispatched"}
RESOURCE_STAGE_STATUS: Final = {"accepted": "en_route", "arrived": "on_scene"}
# Progress of one assignee; the task's stage is the furthest stage all of them reached.
RANK: Final = {"dispatched": 0, "rework": 1, "accepted": 1, "arrived": 2, "handled": 3}
PROGRESS: Final = ("accepted", "arrived", "handled")
TASK_DONE: Final = frozenset({"handled", "closed", "rejected"})
# A task id is spliced into JSON built here: Lua writes '{"id": "<tid>"' + the rest.
_ID_HEAD: Final = '{"id": ""'
_TASK_ID_HEAD: Final = '{"task_id": ""'

# Helpers for both scripts: the stored task JSON from its id and the rest; a revision check.
_LIB: Final = r"""
local function task_tail(tid, tail) return '{"id": "' .. tid .. '"' .. tail end
local function rev_ok(kind, id, want)
  local rev = meta_of(kind, id)
  return rev ~= nil and rev == want
end
"""

DISPATCH_LUA: Final = _LIB + r"""
local idem_key, idem_ttl, eid, ev_rev, ev_json = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local now, day, ymd, tail, msg_tail = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local old_tid, old_expected, old_json = ARGV[13], ARGV[14], ARGV[15]
local n = tonumber(ARGV[16])
local idem = P .. 'idem:' .. idem_key
local done = redis.call('GET', idem)
if done then return {'dup', done} end
local active = redis.call('GET', P .. 'task:event:' .. eid)
if active and active ~= old_tid then return {'has_task', active} end
if old_tid ~= '' then
  -- superseding a rejected task: it must be exactly what the caller read
  if active ~= old_tid or redis.call('HGET', P .. 'state:task', old_tid) ~= old_expected then
    return {'stale', 'task:' .. old_tid}
  end
end
for i = 0, n - 1 do
  local b = 17 + i * 5
  if redis.call('EXISTS', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1]) == 1 then
    return {'unit_busy', ARGV[b] .. ':' .. ARGV[b+1],
      redis.call('GET', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1])}
  end
end
if not meta_of('event', eid) then return {'no_event', eid} end
if not rev_ok('event', eid, ev_rev) then return {'stale', 'event:' .. eid} end
for i = 0, n - 1 do
  local b = 17 + i * 5
  if not rev_ok(ARGV[b], ARGV[b+1], ARGV[b+2]) then
    return {'stale', ARGV[b] .. ':' .. ARGV[b+1]}
  end
end
-- every check held: write
local seqkey = P .. 'task:n:' .. ymd
local num = redis.call('INCR', seqkey)
redis.call('EXPIRE', seqkey, 172800)
local tid = 'T' .. ymd .. '-' .. string.format('%04d', num)
if old_tid ~= '' then
  redis.call('HSET', P .. 'state:task', old_tid, old_json)
  redis.call('SREM', P .. 'tasks:open', old_tid)
  emit('task', 'upsert', old_json)
end
restate('event', eid, ev_json .. '"' .. tid .. '"}', 'dispatched', ev_rev, now, day)
for i = 0, n - 1 do
  local b = 17 + i * 5
  restate(ARGV[b], ARGV[b+1], ARGV[b+3], ARGV[b+4], ARGV[b+2], now, day)
  redis.call('SET', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1], tid)
end
local task = task_tail(tid, tail)
redis.call('HSET', P .. 'state:task', tid, task)
redis.call('SADD', P .. 'tasks:open', tid)
redis.call('SET', P .. 'task:event:' .. eid, tid)
redis.call('SET', idem, tid, 'EX', idem_ttl)
emit('task', 'upsert', task)
flush()
redis.call('PUBLISH', P .. 'dispatch', '{"task_id": "' .. tid .. '"' .. msg_tail)
return {'ok', tid}
"""

# One lifecycle step of an existing task (feedback, verify, evaluate).
STEP_LUA: Final = _LIB + r"""
local tid, expected, new, keep_open, clear = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local eid, ev_json, ev_status, ev_rev = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local now, day, n = ARGV[12], ARGV[13], tonumber(ARGV[14])
if redis.call('HGET', P .. 'state:task', tid) ~= expected then return 'stale' end
if ev_json ~= '' and not rev_ok('event', eid, ev_rev) then return 'stale' end
for i = 0, n - 1 do
  local b = 15 + i * 6
  if ARGV[b+2] ~= '' and not rev_ok(ARGV[b], ARGV[b+1], ARGV[b+4]) then return 'stale' end
  if ARGV[b+5] == '1' and redis.call('GET', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1])
      ~= tid then
    return 'stale'
  end
end
redis.call('HSET', P .. 'state:task', tid, new)
if keep_open == '1' then
  redis.call('SADD', P .. 'tasks:open', tid)
else
  redis.call('SREM', P .. 'tasks:open', tid)
end
if clear == '1' and redis.call('GET', P .. 'task:event:' .. eid) == tid then
  redis.call('DEL', P .. 'task:event:' .. eid)
end
if ev_json ~= '' then restate('event', eid, ev_json, ev_status, ev_rev, now, day) end
for i = 0, n - 1 do
  local b = 15 + i * 6
  if ARGV[b+2] ~= '' then restate(ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3], ARGV[b+4], now, day) end
  if ARGV[b+5] == '1' then redis.call('DEL', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1]) end
end
emit('task', 'upsert', new)
flush()
return 'ok'
"""


def now_ms() -> int:
    return int(time.time() * 1000)


class DispatchError(Exception):
    """A refused desk action: `code` for machines, `status` the HTTP status, `detail` extra."""

    def __init__(self, code: str, status: int, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, **self.detail}


@dataclass
class _Step:
    """What one lifecycle step changes; built by a rule from what was read."""

    task: dict[str, Any]
    event_status: str | None = None
    unit_status: dict[tuple[str, str], str] = field(default_factory=dict)
    release: set[tuple[str, str]] = field(default_factory=set)
    keep_open: bool = True
    clear_event: bool = False


@dataclass
class _Read:
    raw: str
    task: dict[str, Any]
    event: dict[str, Any] | None
    event_rev: str
    units: dict[tuple[str, str], tuple[dict[str, Any], str]]
    engaged: dict[tuple[str, str], str | None]


class Desk:
    """Proposal, dispatch and the lifecycle of tasks, over one Store."""

    def __init__(self, store: Store, plans: PlanLibrary, deadlines: Deadlines,
                 settings: Settings, clock: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.plans = plans
        self.deadlines = deadlines
        self.settings = settings
        self.clock = clock
        self._tz = ZoneInfo(settings.timezone)
        self._dispatch = store.script(DISPATCH_LUA)
        self._step = store.script(STEP_LUA)

    # -- reads ----------------------------------------------------------------------------

    def task(self, task_id: str) -> dict[str, Any] | None:
        raw = self.store.r.hget(self.store.key("state:task"), task_id)
        return json.loads(raw) if raw else None

    def task_of_event(self, event_id: str) -> dict[str, Any] | None:
        """The event's active task, else the last one it had (kept in the event record)."""
        task_id = self.store.r.get(self.store.key(f"task:event:{event_id}"))
        if not task_id:
            event = self.store.event(event_id)
            task_id = event.get("task_id") if event else None
        return self.task(_s(task_id)) if task_id else None

    # -- proposal -------------------------------------------------------------------------

    def proposal(self, event_id: str) -> dict[str, Any]:
        """The best plan's resource calls filled with the nearest free units that make it in
        time (the event's own grid worker first), what could not be filled, and the nearest
        free units of every kind for the commander to choose from."""
        event = self.store.event(event_id)
        if event is None:
            raise DispatchError("no_event", 404, f"no event {event_id!r}")
        proposal = self._propose(event)
        # What the commander was shown: units move, and picking exactly this a few seconds
        # later is no override even if the nearest ones changed meanwhile.
        shown = [[u["kind"], u["id"]] for call in proposal["calls"] for u in call["units"]]
        self.store.r.set(self.store.key(f"proposal:{event_id}"), json.dumps(shown),
                         ex=SHOWN_TTL_S)
        return proposal

    def _propose(self, event: dict[str, Any], candidates: bool = True) -> dict[str, Any]:
        event_id = event["id"]
        matches = self.plans.match(event, limit=1)
        best: Match | None = matches[0] if matches else None
        # Without a plan the grid worker goes: everyday grid cases need no preset plan.
        wanted = ([(c.kind, c.count, c.max_eta_s) for c in best.plan.resources] if best
                  else [("worker", 1, None)])
        lon, lat = float(event["lon"]), float(event["lat"])
        used: set[tuple[str, str]] = set()
        calls, unfilled = [], []
        for kind, count, max_eta in wanted:
            units = self._fill(event, lon, lat, kind, count, max_eta, used)
            calls.append({"kind": kind, "count": count, "max_eta_s": max_eta, "units": units})
            if len(units) < count:
                unfilled.append({"kind": kind, "count": count, "max_eta_s": max_eta,
                                 "missing": count - len(units)})
        s = self.settings
        return {
            "event_id": event_id,
            "plan": best.to_dict() if best else None,
            "calls": calls,
            "unfilled": unfilled,
            "candidates": {
                "workers": nearest(self.store, s, lon, lat, kind="worker", count=CANDIDATES),
                "resources": nearest(self.store, s, lon, lat, kind="resource",
                                     count=CANDIDATES),
            } if candidates else {"workers": [], "resources": []},
        }

    def _fill(self, event: dict[str, Any], lon: float, lat: float, kind: str, count: int,
              max_eta: int | None, used: set[tuple[str, str]]) -> list[dict[str, Any]]:
        unit_kind = "worker" if kind == "worker" else "resource"
        taken = sum(1 for k, _ in used if k == unit_kind)
        found = nearest(self.store, self.settings, lon, lat, kind=unit_kind,
                        resource_kind=None if kind == "worker" else kind,
                        count=count + taken + (CANDIDATES if kind == "worker" else 0))
        if kind == "worker":
            # the worker of the event's own grid knows the place: first when near enough
            grid, near = event.get("grid_id"), self.settings.near_radius_m
            found.sort(key=lambda u: (not (grid and u.get("grid_id") == grid
                                           and u["distance_m"] <= near), u["distance_m"]))
        chosen = []
        for unit in found:
            if (unit_kind, unit["id"]) in used:
                continue
            if max_eta is not None and unit["eta_s"] > max_eta:
                continue
            chosen.append(unit)
            used.add((unit_kind, unit["id"]))
            if len(chosen) >= count:
                break
        return chosen

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(self, event_id: str, *, by: str, key: str, assignees: list[dict] | None,
                 plan_id: str | None, note: str = "",
                 override_reason: str = "") -> tuple[dict[str, Any], bool]:
        """Create the event's task and send it (`cc:dispatch`); returns (task, duplicate).

        `assignees` None takes the proposal. Assignees other than the proposal's need an
        `override_reason`, kept in the task with the recommended ids. The same `key` again
        returns the task it made (duplicate=True) and sends nothing."""
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise DispatchError("bad_key", 400, "key must be 1-128 printable characters")
        note = _text(note, "note", 2000)
        override_reason = _text(override_reason, "override_reason", 2000).strip()
        wanted = None if assignees is None else _assignees(assignees)
        if plan_id is not None and (not isinstance(plan_id, str) or self.plans.get(plan_id)
                                    is None):
            raise DispatchError("unknown_plan", 400, f"no plan {plan_id!r}")
        for _ in range(ATTEMPTS):
            done = self._duplicate(key, event_id)
            if done is not None:
                return done, True
            try:
                outcome = self._try_dispatch(event_id, by, key, wanted, plan_id, note,
                                             override_reason)
            except DispatchError as exc:
                # the same key may have just won from another thread: that is no error
                done = self._duplicate(key, event_id)
                if done is not None:
                    return done, True
                # units or the proposal changed because this event got its task meanwhile
                if exc.code in ("unit_busy", "no_units", "override_reason_required"):
                    self._check_no_task(event_id)
                raise
            if outcome is not None:
                return outcome
        raise DispatchError("conflict", 409, "the event or a unit kept changing; try again")

    def _check_no_task(self, event_id: str) -> None:
        active = self.store.r.get(self.store.key(f"task:event:{event_id}"))
        task = self.task(_s(active)) if active else None
        if task is not None and task["stage"] != "rejected":
            raise DispatchError("has_task", 409, "the event already has a task",
                                task_id=task["id"])

    def _duplicate(self, key: str, event_id: str) -> dict[str, Any] | None:
        task_id = self.store.r.get(self.store.key(f"idem:{key}"))
        if not task_id:
            return None
        task = self.task(_s(task_id))
        if task is None:
            return None
        if task["event_id"] != event_id:
            raise DispatchError("key_reused", 409, "this key was used for another event",
                                task_id=task["id"])
        return task

    def _try_dispatch(self, event_id: str, by: str, key: str, wanted: list[dict] | None,
                      plan_id: str | None, note: str,
                      override_reason: str) -> tuple[dict[str, Any], bool] | None:
        """One attempt; None when something changed in between (read again)."""
        store = self.store
        found = store.records("event", [event_id]).get(event_id)
        if found is None:
            raise DispatchError("no_event", 404, f"no event {event_id!r}")
        event, event_rev = found
        if event.get("status") in EVENT_CLOSED:
            raise DispatchError("bad_stage", 409, f"event is {event['status']}")
        old_tid, old_raw, old_json = "", "", ""
        done, active = store.r.mget(store.key(f"idem:{key}"), store.key(f"task:event:{event_id}"))
        if done:
            return None  # the key's task exists: the caller returns it
        if active:
            old_raw = store.r.hget(store.key("state:task"), active) or ""
            old = json.loads(old_raw) if old_raw else {}
            if old.get("stage") != "rejected":
                raise DispatchError("has_task", 409, "the event already has a task",
                                    task_id=_s(active))
            # a rejected task is superseded by the new dispatch
            old_tid = _s(active)
        proposal = self._propose(event, candidates=False)
        recommended = [{"id": u["id"], "kind": u["kind"]}
                       for call in proposal["calls"] for u in call["units"]]
        chosen = recommended if wanted is None else wanted
        if not chosen:
            raise DispatchError("no_units", 409, "no free unit to send; choose units")
        units = self._free_units(chosen)
        override = None
        picked = {(a["kind"], a["id"]) for a in chosen}
        raw_shown = store.r.get(store.key(f"proposal:{event_id}")) if wanted is not None else None
        shown = [{"kind": k, "id": i} for k, i in json.loads(raw_shown)] if raw_shown else []
        if shown and picked == {(a["kind"], a["id"]) for a in shown}:
            recommended = shown  # exactly what the commander was shown
        if picked != {(a["kind"], a["id"]) for a in recommended}:
            if shown:
                recommended = shown  # the override is against what was shown
            if not override_reason:
                raise DispatchError("override_reason_required", 400,
                                    "units other than the recommended ones need a reason",
                                    recommended=[a["id"] for a in recommended])
            override = {"reason": override_reason, "recommended": [a["id"] for a in recommended]}
        if plan_id is None and wanted is None and proposal["plan"]:
            plan_id = proposal["plan"]["plan"]["id"]
        now = int(self.clock())
        lon, lat = float(event["lon"]), float(event["lat"])
        task_assignees = []
        for kind, unit_id, record, _ in units:
            dist = haversine_m(lon, lat, float(record["lon"]), float(record["lat"]))
            unit = unit_of(record, kind, dist, self.settings)
            task_assignees.append({"id": unit_id, "kind": kind, "eta_s": unit["eta_s"],
                                   "resource_kind": unit["resource_kind"],
                                   "name": unit["name"], "stage": "dispatched"})
        task = {
            "id": "", "event_id": event_id, "plan_id": plan_id, "assignees": task_assignees,
            "stage": "dispatched", "by": by, "ts": now, "note": note, "override": override,
            "deadlines": self.deadlines.deadlines(event, now),
            "history": [{"ts": now, "stage": "dispatched", "by": by, "note": note}],
            "verify": None, "evaluation": None,
        }
        message = {"task_id": "", "event_id": event_id, "plan_id": plan_id,
                   "assignees": [{"id": a["id"], "kind": a["kind"], "eta_s": a["eta_s"]}
                                 for a in task_assignees],
                   "by": by, "ts": now, "note": note}
        if old_tid:
            old = json.loads(old_raw)
            old["stage"] = "closed"
            old["history"] = _hist(old, now, "closed", by, "superseded by a new dispatch")
            old_json = _dumps(old)
        # the event names its task: the script closes `..."task_id": ` with the new id
        named = {k: v for k, v in event.items() if k != "task_id"}
        event_head = _dumps({**named, "status": "dispatched", "status_ts": now,
                             "task_id": ""})
        if not event_head.endswith('""}'):
            raise AssertionError("event JSON must end with the empty task_id")
        event_head = event_head[:-3]
        args: list[str | int | float] = [
            key, IDEM_TTL_S, event_id, event_rev, event_head, now, day_of(now, self._tz.key),
            datetime.fromtimestamp(now / 1000, self._tz).strftime("%Y%m%d"),
            _tail(task, _ID_HEAD), _tail(message, _TASK_ID_HEAD), old_tid, old_raw, old_json,
            len(units),
        ]
        for kind, unit_id, record, rev in units:
            status = BUSY_STATUS[kind]
            args += [kind, unit_id, rev, _dumps({**record, "status": status, "status_ts": now}),
                     status]
        out = self._dispatch(*args)
        verdict, what = _s(out[0]), _s(out[1])
        if verdict == "ok":
            task["id"] = what
            return task, False
        if verdict == "dup":
            return None  # the caller's loop returns the stored task
        if verdict == "has_task":
            raise DispatchError("has_task", 409, "the event already has a task", task_id=what)
        if verdict == "unit_busy":
            unit_id = what.split(":", 1)[1]
            # not `task_id`: in a 409 that names the event's own task (has_task)
            raise DispatchError("unit_busy", 409, f"{what} is engaged in task {_s(out[2])}",
                                unit=unit_id, engaged_in=_s(out[2]))
        if verdict == "no_event":
            raise DispatchError("no_event", 404, f"no event {event_id!r}")
        return None  # stale: read again

    def _free_units(self, chosen: list[dict[str, str]]
                    ) -> list[tuple[str, str, dict[str, Any], str]]:
        """(kind, id, record, rev) of the chosen units, in order; refused if one is not free."""
        store = self.store
        found: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for kind in UNIT_KINDS:
            ids = [a["id"] for a in chosen if a["kind"] == kind]
            for unit_id, rec in store.records(kind, ids).items():
                found[(kind, unit_id)] = rec
        engaged = store.r.mget([store.key(f"task:unit:{a['kind']}:{a['id']}") for a in chosen])
        units = []
        for a, task_id in zip(chosen, engaged, strict=True):
            key = (a["kind"], a["id"])
            if key not in found:
                raise DispatchError("unit_unknown", 400, f"no {a['kind']} {a['id']!r}",
                                    unit=a["id"])
            record, rev = found[key]
            if task_id:
                raise DispatchError("unit_busy", 409, f"{a['id']} is engaged in {_s(task_id)}",
                                    unit=a["id"], engaged_in=_s(task_id))
            if record.get("status") != FREE_STATUS[a["kind"]]:
                raise DispatchError("unit_busy", 409, f"{a['id']} is {record.get('status')}",
                                    unit=a["id"])
            units.append((a["kind"], a["id"], record, rev))
        return units

    # -- the lifecycle --------------------------------------------------------------------

    def on_feedback(self, feedback: dict[str, Any]) -> dict[str, Any] | None:
        """Apply one stored feedback record; the task after it, or None when the feedback is
        for no task we know or from someone not in the task. A repeated message changes
        nothing."""
        task_id, actor, stage = (feedback.get("task_id"), feedback.get("actor_id"),
                                 feedback.get("stage"))
        if not isinstance(task_id, str) or not isinstance(actor, str) or \
                stage not in FEEDBACK_STAGES:
            return None
        note = str(feedback.get("note") or "")[:2000]
        fb_ts = feedback.get("ts")

        def rule(read: _Read, now: int) -> _Step | None:
            task = read.task
            if feedback.get("event_id") not in (None, task["event_id"]):
                raise _Ignore
            mine = [a for a in task["assignees"] if a["id"] == actor]
            if not mine:
                raise _Ignore
            if task["stage"] in ("closed", "rejected") or any(
                h.get("by") == actor and h.get("stage") == stage and h.get("fb_ts") == fb_ts
                for h in task["history"]
            ):
                return None
            return self._feedback_step(read, mine[0], stage, actor, note, fb_ts, now)

        try:
            return self._run(task_id, rule)
        except _Ignore:
            return None

    def _feedback_step(self, read: _Read, who: dict[str, Any], stage: str, actor: str,
                       note: str, fb_ts: Any, now: int) -> _Step | None:
        task = read.task
        step = _Step(task)
        me = (who["kind"], who["id"])
        event = read.event or {}
        if stage in PROGRESS:
            if RANK.get(who["stage"], 0) >= RANK[stage]:
                return None  # already there (or further): a repeat
            who["stage"] = stage
            if stage == "handled":
                step.release.add(me)
            elif who["kind"] == "resource":
                step.unit_status[me] = RESOURCE_STAGE_STATUS[stage]
            common = _common(task["assignees"])
            task["stage"] = common
            if common == "handled":
                step.event_status = "handled"
            elif event.get("status") == "dispatched":
                step.event_status = "in_progress"
        elif stage == "rejected":
            if task["stage"] in TASK_DONE:
                return None
            who["stage"] = "rejected"
            task["stage"] = "rejected"
            step.release = {(a["kind"], a["id"]) for a in task["assignees"]}
            step.event_status = "reported"
        else:  # need_support
            if task["stage"] in TASK_DONE:
                return None
            task["stage"] = "need_support"
            if event.get("status") == "dispatched":
                step.event_status = "in_progress"
        task["history"] = _hist(task, now, stage, actor, note, fb_ts=fb_ts)
        return step

    def verify(self, event_id: str, *, by: str, passed: bool, note: str = "") -> dict[str, Any]:
        """The duty officer's check of a handled task: passed → event verified; failed →
        event back in progress and the task reopened at stage `rework`."""
        if not isinstance(passed, bool):
            raise DispatchError("bad_body", 400, "passed must be true or false")
        note = _text(note, "note", 2000)

        def rule(read: _Read, now: int) -> _Step:
            task = read.task
            if task["stage"] != "handled" or (task.get("verify") or {}).get("passed"):
                raise DispatchError("bad_stage", 409, f"task is {task['stage']}; only a "
                                    "handled task that is not yet verified can be verified",
                                    task_id=task["id"])
            task["verify"] = {"by": by, "ts": now, "passed": passed, "note": note}
            step = _Step(task, event_status="verified" if passed else "in_progress")
            if not passed:
                task["stage"] = "rework"
                for a in task["assignees"]:
                    a["stage"] = "rework"
            task["history"] = _hist(task, now, "verified" if passed else "rework", by, note)
            return step

        return self._event_step(event_id, rule)

    def evaluate(self, event_id: str, *, by: str, score: int, note: str = "") -> dict[str, Any]:
        """Score 1-5 for a verified task; closes the task and the event."""
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise DispatchError("bad_score", 400, "score must be a whole number 1-5")
        note = _text(note, "note", 2000)

        def rule(read: _Read, now: int) -> _Step:
            task = read.task
            if task["stage"] != "handled" or not (task.get("verify") or {}).get("passed"):
                raise DispatchError("not_verified", 409, "only a verified task can be "
                                    "evaluated", task_id=task["id"], stage=task["stage"])
            task["evaluation"] = {"by": by, "ts": now, "score": score, "note": note}
            task["stage"] = "closed"
            task["history"] = _hist(task, now, "closed", by, note)
            return _Step(task, event_status="closed", keep_open=False, clear_event=True,
                         release={(a["kind"], a["id"]) for a in task["assignees"]})

        return self._event_step(event_id, rule)

    def _event_step(self, event_id: str,
                    rule: Callable[[_Read, int], _Step | None]) -> dict[str, Any]:
        if self.store.event(event_id) is None:
            raise DispatchError("no_event", 404, f"no event {event_id!r}")
        task = self.task_of_event(event_id)
        if task is None:
            raise DispatchError("no_task", 409, "the event has no task")
        out = self._run(task["id"], rule)
        assert out is not None
        return out

    def _run(self, task_id: str,
             rule: Callable[[_Read, int], _Step | None]) -> dict[str, Any] | None:
        """Read, apply `rule`, write with one script; again if something moved meanwhile."""
        for _ in range(ATTEMPTS):
            read = self._read(task_id)
            if read is None:
                return None
            now = int(self.clock())
            step = rule(read, now)
            if step is None:
                return read.task  # nothing to change
            if self._write(read, step, now):
                return step.task
        raise DispatchError("conflict", 409, "the task kept changing; try again",
                            task_id=task_id)

    def _read(self, task_id: str) -> _Read | None:
        store = self.store
        raw = store.r.hget(store.key("state:task"), task_id)
        if raw is None:
            return None
        raw = _s(raw)
        task = json.loads(raw)
        found = store.records("event", [task["event_id"]]).get(task["event_id"])
        keys = [(a["kind"], a["id"]) for a in task["assignees"]]
        units: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for kind in UNIT_KINDS:
            for unit_id, rec in store.records(kind, [i for k, i in keys if k == kind]).items():
                units[(kind, unit_id)] = rec
        engaged_raw = store.r.mget([store.key(f"task:unit:{k}:{i}") for k, i in keys]) \
            if keys else []
        engaged = {k: (_s(v) if v else None) for k, v in zip(keys, engaged_raw, strict=True)}
        return _Read(raw, task, found[0] if found else None, found[1] if found else "",
                     units, engaged)

    def _write(self, read: _Read, step: _Step, now: int) -> bool:
        task = step.task
        tid = task["id"]
        event_json, event_rev = "", ""
        if (step.event_status and read.event is not None
                and read.event.get("status") not in EVENT_CLOSED
                and read.event.get("status") != step.event_status):
            event_json = _dumps({**read.event, "status": step.event_status, "status_ts": now})
            event_rev = read.event_rev
        unit_args: list[str] = []
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
                    record_json = _dumps({**record, "status": new, "status_ts": now})
            unit_args += [kind, unit_id, record_json, new, rev,
                          "1" if key in step.release else "0"]
            n += 1
        out = self._step(tid, read.raw, _dumps(task), "1" if step.keep_open else "0",
                         "1" if step.clear_event else "0", task["event_id"], event_json,
                         step.event_status or "", event_rev, now, day_of(now, self._tz.key), n,
                         *unit_args)
        return _s(out) == "ok"


class _Ignore(Exception):
    """Feedback that is not for this task's people."""


def _common(assignees: list[dict[str, Any]]) -> str:
    """The furthest stage every assignee reached (rework counts as accepted, and wins a tie)."""
    low = min(assignees, key=lambda a: (RANK.get(a["stage"], 0), a["stage"] != "rework"))
    return low["stage"]


def _hist(task: dict[str, Any], now: int, stage: str, by: str, note: str,
          **extra: Any) -> list[dict[str, Any]]:
    entry = {"ts": now, "stage": stage, "by": by, "note": note}
    entry.update({k: v for k, v in extra.items() if v is not None})
    return [*task.get("history", []), entry][-HISTORY_MAX:]


def _assignees(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise DispatchError("no_units", 400, "assignees must be a non-empty list")
    if len(raw) > MAX_ASSIGNEES:
        raise DispatchError("bad_body", 400, f"at most {MAX_ASSIGNEES} assignees")
    out, seen = [], set()
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) \
                or item.get("kind") not in UNIT_KINDS or not 1 <= len(item["id"]) <= 64:
            raise DispatchError("bad_body", 400,
                                'each assignee must be {"id": str, "kind": "worker"|"resource"}')
        key = (item["kind"], item["id"])
        if key not in seen:
            seen.add(key)
            out.append({"id": item["id"], "kind": item["kind"]})
    return out


def _text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DispatchError("bad_body", 400, f"{name} must be text")
    if len(value) > limit:
        raise DispatchError("bad_body", 400, f"{name} is longer than {limit} characters")
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _tail(record: dict[str, Any], head: str) -> str:
    """The JSON of `record` after its empty first field (the id the script fills in)."""
    text = _dumps(record)
    if not text.startswith(head):
        raise AssertionError(f"JSON must start with {head}")
    return text[len(head):]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
