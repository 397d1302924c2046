"""The duty desk: proposal, one-click dispatch and the task lifecycle (上报-派发-反馈-核查-评价).

`Desk` is the one entry point the others use (docs/COMMAND-LOOP.md). This module holds the
dispatch itself — checking the pick, building the task and retrying when something moved;
the proposal is `dashboard.command.proposal`, the Lua scripts
`dashboard.command.task_scripts` and the steps after dispatch `dashboard.command.tasks`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import orjson

from dashboard.command.common import ATTEMPTS, as_str, dumps, history
from dashboard.command.nearby import FREE_STATUS, UNIT_KINDS, unit_of
from dashboard.command.proposal import last_shown, propose, show, units_of
from dashboard.command.task_scripts import TaskScripts, Unit, read_units
from dashboard.command.tasks import Lifecycle
from dashboard.config import Settings
from dashboard.errors import Refused, text_arg
from dashboard.geo import haversine_m
from dashboard.models import EVENT_CLOSED
from dashboard.scope import sees
from dashboard.store import Store, now_ms

if TYPE_CHECKING:
    from dashboard.command.plans import PlanLibrary
    from dashboard.command.sla import Deadlines


MAX_ASSIGNEES: Final = 30
KEY_RE: Final = re.compile(r"[\x21-\x7e]{1,128}\Z")  # printable ASCII, no spaces


class _KeyUsed:
    """An attempt found the idempotency key's task."""


_KEY_USED: Final = _KeyUsed()


class Desk:
    """Proposal, dispatch and the lifecycle of tasks, over one Store."""

    def __init__(self, store: Store, plans: PlanLibrary, deadlines: Deadlines,
                 settings: Settings, clock: Callable[[], int] = now_ms,
                 remember: int = 0) -> None:
        """`remember`: how many tasks' last writes to rule the next step over without a
        read first (dashboard.command.tasks.Lifecycle; the demo's history)."""
        self.store = store
        self.plans = plans
        self.deadlines = deadlines
        self.settings = settings
        self.clock = clock
        self._scripts = TaskScripts(store, ZoneInfo(settings.timezone))
        self._tasks = Lifecycle(store, self._scripts, clock, remember)

    # -- reads ----------------------------------------------------------------------------

    def task(self, task_id: str) -> dict[str, Any] | None:
        return self._tasks.task(task_id)

    def task_of_event(self, event_id: str) -> dict[str, Any] | None:
        """The event's active task, else the last one it had (kept in the event record)."""
        return self._tasks.task_of_event(event_id)

    def proposal(self, event_id: str, scope: str | None = None) -> dict[str, Any]:
        """The best plan's resource calls filled with the nearest free units that make it in
        time (the event's own grid worker first), what could not be filled, and the nearest
        free units of every kind for the commander to choose from; for a scoped commander
        only units of their area."""
        return show(self.store, self.plans, self.settings, event_id, scope)

    # -- the lifecycle (dashboard.command.tasks) --------------------------------------------------

    def on_feedback(self, feedback: dict[str, Any]) -> dict[str, Any] | None:
        """Apply one stored feedback record; the task after it, or None when the feedback is
        for no task we know or from someone not in the task."""
        return self._tasks.on_feedback(feedback)

    def on_feedbacks(self, records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
        """Apply stored feedback records of one task as one step (a team reporting a stage
        at once); the task after them, or None when none is for a task we know from
        someone in it."""
        return self._tasks.on_feedbacks(records)

    def verify(self, event_id: str, *, by: str, passed: bool, note: str = "") -> dict[str, Any]:
        """The duty officer's check of a handled task: passed → event verified; failed →
        event back in progress and the task reopened at stage `rework`."""
        return self._tasks.verify(event_id, by=by, passed=passed, note=note)

    def evaluate(self, event_id: str, *, by: str, score: int, note: str = "") -> dict[str, Any]:
        """Score 1-5 for a verified task; closes the task and the event."""
        return self._tasks.evaluate(event_id, by=by, score=score, note=note)

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(self, event_id: str, *, by: str, key: str, assignees: list[dict] | None,
                 plan_id: str | None, note: str = "", override_reason: str = "",
                 scope: str | None = None) -> tuple[dict[str, Any], bool]:
        """Create the event's task and send it (`cc:dispatch`); returns (task, duplicate).

        `assignees` None takes the proposal. Assignees other than the proposal's need an
        `override_reason`, kept in the task with the recommended ids. The same `key` again
        returns the task it made (duplicate=True) and sends nothing. A scoped commander sends
        units of their area only (another's answers as unknown)."""
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise Refused("bad_key", 400, "key must be 1-128 printable characters")
        note = text_arg(note, "note", 2000)
        override_reason = text_arg(override_reason, "override_reason", 2000).strip()
        wanted = None if assignees is None else _assignees(assignees)
        if plan_id is not None and (not isinstance(plan_id, str) or self.plans.get(plan_id)
                                    is None):
            raise Refused("unknown_plan", 400, f"no plan {plan_id!r}")
        for _ in range(ATTEMPTS):
            try:
                outcome = self._try_dispatch(event_id, by, key, wanted, plan_id, note,
                                             override_reason, scope)
            except Refused as exc:
                # the same key may have just won from another thread: that is no error
                done = self._duplicate(key, event_id)
                if done is not None:
                    return done, True
                # units or the proposal changed because this event got its task meanwhile
                if exc.code in ("unit_busy", "no_units", "override_reason_required"):
                    self._check_no_task(event_id)
                raise
            if isinstance(outcome, _KeyUsed):  # before anything else is checked, as on a first try
                done = self._duplicate(key, event_id)
                if done is not None:
                    return done, True
            elif outcome is not None:
                return outcome
        raise Refused("conflict", 409, "the event or a unit kept changing; try again")

    def _check_no_task(self, event_id: str) -> None:
        active = self.store.r.get(self.store.key(f"task:event:{event_id}"))
        task = self.task(as_str(active)) if active else None
        if task is not None and task["stage"] != "rejected":
            raise Refused("has_task", 409, "the event already has a task",
                                task_id=task["id"])

    def _duplicate(self, key: str, event_id: str) -> dict[str, Any] | None:
        task_id = self.store.r.get(self.store.key(f"idem:{key}"))
        if not task_id:
            return None
        task = self.task(as_str(task_id))
        if task is None:
            return None
        if task["event_id"] != event_id:
            raise Refused("key_reused", 409, "this key was used for another event",
                                task_id=task["id"])
        return task

    def _try_dispatch(self, event_id: str, by: str, key: str, wanted: list[dict] | None,
                      plan_id: str | None, note: str, override_reason: str,
                      scope: str | None = None) -> tuple[dict[str, Any], bool] | _KeyUsed | None:
        """One attempt; None when something changed in between (read again), _KEY_USED when
        the key's task exists (the caller returns it)."""
        store = self.store
        pipe = store.r.pipeline(transaction=False)  # the event, the key and its task at once
        pipe.hget(store.key("state:event"), event_id)
        pipe.hget(store.key("meta:event"), event_id)
        pipe.get(store.key(f"idem:{key}"))
        pipe.get(store.key(f"task:event:{event_id}"))
        raw_event, meta, done, active = pipe.execute()
        if done:
            return _KEY_USED
        if raw_event is None or meta is None:
            raise Refused("no_event", 404, f"no event {event_id!r}")
        event, event_rev = orjson.loads(raw_event), as_str(meta).split("|", 1)[0]
        if event.get("status") in EVENT_CLOSED:
            raise Refused("bad_stage", 409, f"event is {event['status']}")
        old_tid, old_raw, old = "", "", {}
        if active:
            raw = store.r.hget(store.key("state:task"), active)
            old_raw = as_str(raw) if raw else ""
            old = orjson.loads(old_raw) if old_raw else {}
            if old.get("stage") != "rejected":
                raise Refused("has_task", 409, "the event already has a task",
                                    task_id=as_str(active))
            # a rejected task is superseded by the new dispatch
            old_tid = as_str(active)
        proposed: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        proposal = propose(store, self.plans, self.settings, event, candidates=False,
                           scope=scope, found=proposed)
        recommended = units_of(proposal)
        chosen = recommended if wanted is None else wanted
        if not chosen:
            raise Refused("no_units", 409, "no free unit to send; choose units")
        units = self._free_units(chosen, scope, proposed if wanted is None else None)
        shown = last_shown(store, event_id) if wanted is not None else []
        override = _override(chosen, recommended, shown, override_reason)
        if plan_id is None and wanted is None and proposal["plan"]:
            plan_id = proposal["plan"]["plan"]["id"]
        now = int(self.clock())
        task_assignees = self._task_assignees(event, units)
        task = {
            "id": "", "event_id": event_id, "grid_id": event.get("grid_id"),
            "plan_id": plan_id, "assignees": task_assignees,
            "stage": "dispatched", "by": by, "ts": now, "note": note, "override": override,
            "deadlines": self.deadlines.deadlines(event, now),
            "history": [{"ts": now, "stage": "dispatched", "by": by, "note": note}],
            "verify": None, "evaluation": None,
        }
        message = {"task_id": "", "event_id": event_id, "plan_id": plan_id,
                   "assignees": [{"id": a["id"], "kind": a["kind"], "eta_s": a["eta_s"]}
                                 for a in task_assignees],
                   "by": by, "ts": now, "note": note}
        old_json = ""
        if old_tid:
            old["stage"] = "closed"
            old["history"] = history(old, now, "closed", by, "superseded by a new dispatch")
            old_json = dumps(old)
        written = self._scripts.dispatch(
            key=key, event_id=event_id, event=event, event_rev=event_rev, task=task,
            message=message, old_tid=old_tid, old_raw=old_raw, old_json=old_json, units=units,
            now=now)
        if written is None:
            return None  # the key's task exists (the caller returns it), or read again
        self._tasks.keep(written)  # what the script left, as a read of it would find it
        return task, False

    def _task_assignees(self, event: dict[str, Any], units: list[Unit]) -> list[dict[str, Any]]:
        """The task's assignees with their ETA to the event, all at stage `dispatched`."""
        lon, lat = float(event["lon"]), float(event["lat"])
        out = []
        for kind, unit_id, record, _ in units:
            dist = haversine_m(lon, lat, float(record["lon"]), float(record["lat"]))
            unit = unit_of(record, kind, dist, self.settings)
            out.append({"id": unit_id, "kind": kind, "eta_s": unit["eta_s"],
                        "resource_kind": unit["resource_kind"], "name": unit["name"],
                        "stage": "dispatched"})
        return out

    def _free_units(self, chosen: list[dict[str, str]], scope: str | None = None,
                    proposed: dict[tuple[str, str], tuple[dict[str, Any], str]] | None = None
                    ) -> list[Unit]:
        """(kind, id, record, rev) of the chosen units, in order; refused if one is not free
        or (answered as unknown) outside `scope`. The proposal's own units are taken as its
        search found them free, unengaged and in scope (`proposed`): the dispatch script
        checks their revisions and engagement again."""
        keys = [(a["kind"], a["id"]) for a in chosen]
        if proposed is not None and all(key in proposed for key in keys):
            return [(kind, unit_id, *proposed[(kind, unit_id)]) for kind, unit_id in keys]
        found, engaged = read_units(self.store, keys)
        units = []
        for a, task_id in zip(chosen, engaged, strict=True):
            key = (a["kind"], a["id"])
            if key not in found or not sees(scope, found[key][0]):
                raise Refused("unit_unknown", 400, f"no {a['kind']} {a['id']!r}",
                                    unit=a["id"])
            record, rev = found[key]
            if task_id:
                raise Refused("unit_busy", 409, f"{a['id']} is engaged in {task_id}",
                                    unit=a["id"], engaged_in=task_id)
            if record.get("status") != FREE_STATUS[a["kind"]]:
                raise Refused("unit_busy", 409, f"{a['id']} is {record.get('status')}",
                                    unit=a["id"])
            units.append((a["kind"], a["id"], record, rev))
        return units


def _override(chosen: list[dict[str, str]], recommended: list[dict[str, str]],
              shown: list[dict[str, str]], reason: str) -> dict[str, Any] | None:
    """The override kept in the task when the pick is neither what the commander was shown
    (units move: picking exactly that later is no override) nor the recommendation now; it
    is against what was shown, if anything was. Refused without a reason."""
    picked = _keys(chosen)
    if (shown and picked == _keys(shown)) or picked == _keys(recommended):
        return None
    against = [a["id"] for a in (shown or recommended)]
    if not reason:
        raise Refused("override_reason_required", 400,
                            "units other than the recommended ones need a reason",
                            recommended=against)
    return {"reason": reason, "recommended": against}


def _keys(units: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(a["kind"], a["id"]) for a in units}


def _assignees(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise Refused("no_units", 400, "assignees must be a non-empty list")
    if len(raw) > MAX_ASSIGNEES:
        raise Refused("bad_body", 400, f"at most {MAX_ASSIGNEES} assignees")
    out, seen = [], set()
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) \
                or item.get("kind") not in UNIT_KINDS or not 1 <= len(item["id"]) <= 64:
            raise Refused("bad_body", 400,
                                'each assignee must be {"id": str, "kind": "worker"|"resource"}')
        key = (item["kind"], item["id"])
        if key not in seen:
            seen.add(key)
            out.append({"id": item["id"], "kind": item["kind"]})
    return out
