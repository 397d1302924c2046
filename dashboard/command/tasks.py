"""The task lifecycle after dispatch (反馈-核查-评价): field feedback stages, the duty officer's
verify and evaluate, and the release of units when a task is handled, rejected or closed.

Each change is a rule over what was read (`Read` → `Step`), written by the step script of
`dashboard.command.task_scripts`; when something moved meanwhile it is read and ruled again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final

import orjson

from dashboard.command.common import ATTEMPTS, as_str, history
from dashboard.command.task_scripts import Read, Step, TaskScripts
from dashboard.errors import Refused, text_arg
from dashboard.models import FEEDBACK_STAGES
from dashboard.store import Store

RESOURCE_STAGE_STATUS: Final = {"accepted": "en_route", "arrived": "on_scene"}
# Progress of one assignee; the task's stage is the furthest stage all of them reached.
RANK: Final = {"dispatched": 0, "rework": 1, "accepted": 1, "arrived": 2, "handled": 3}
PROGRESS: Final = ("accepted", "arrived", "handled")
TASK_DONE: Final = frozenset({"handled", "closed", "rejected"})

Rule = Callable[[Read, int], Step | None]


class Lifecycle:
    """Reads tasks and moves them through their stages, over one Store.

    With `remember` > 0 it keeps what its own last write of that many tasks left (the task,
    its event and units with their revisions) and rules the next step of one over that
    instead of reading it first: the step script then checks every revision the rule relied
    on, and anything else (a stale write, no change, a refusal) is ruled again over a fresh
    read. For one thread replaying lives as the only writer (the demo's history); live, a
    unit's GPS fix between two steps would make most remembered reads stale."""

    def __init__(self, store: Store, scripts: TaskScripts, clock: Callable[[], int],
                 remember: int = 0) -> None:
        self.store = store
        self.scripts = scripts
        self.clock = clock
        self.remember = remember
        self._reads: OrderedDict[str, Read] = OrderedDict()  # task id → as last written
        self._tasks: OrderedDict[str, str] = OrderedDict()  # event id → its task written last

    def keep(self, read: Read) -> None:
        """Remember `read` as its task's last write (no-op unless `remember`)."""
        if not self.remember or read.event is None:
            return
        # its own copy of the task, as its JSON says: the caller may change the one it got
        read = replace(read, task=orjson.loads(read.raw))
        task_id = read.task["id"]
        for memo, key, value in ((self._reads, task_id, read),
                                 (self._tasks, str(read.task["event_id"]), task_id)):
            memo[key] = value  # type: ignore[assignment]
            memo.move_to_end(key)
            while len(memo) > self.remember:
                memo.popitem(last=False)

    def _recall(self, task_id: str, event_id: str) -> Read | None:
        task_id = task_id or self._tasks.get(event_id, "")
        return self._reads.pop(task_id, None) if task_id else None

    def task(self, task_id: str) -> dict[str, Any] | None:
        raw = self.store.r.hget(self.store.key("state:task"), task_id)
        return orjson.loads(raw) if raw else None

    def task_of_event(self, event_id: str) -> dict[str, Any] | None:
        """The event's active task, else the last one it had (kept in the event record)."""
        task_id = self.store.r.get(self.store.key(f"task:event:{event_id}"))
        if not task_id:
            event = self.store.event(event_id)
            task_id = event.get("task_id") if event else None
        return self.task(as_str(task_id)) if task_id else None

    def on_feedback(self, feedback: dict[str, Any]) -> dict[str, Any] | None:
        """Apply one stored feedback record; the task after it, or None when the feedback is
        for no task we know or from someone not in the task. A repeated message changes
        nothing."""
        return self.on_feedbacks([feedback])

    def on_feedbacks(self, records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
        """Apply stored feedback records of one task, in order, as one step (one read, one
        write): a team reporting the same stage at once. The task after them, or None when
        no record is for a task we know from someone in it; records for another task than
        the first valid one's, or from someone not in the task, change nothing."""
        valid = [fb for fb in records if _well_formed(fb)]
        if not valid:
            return None
        task_id = valid[0]["task_id"]
        valid = [fb for fb in valid if fb["task_id"] == task_id]

        def rule(read: Read, now: int) -> Step | None:
            merged: Step | None = None
            ours = 0
            for fb in valid:
                try:
                    step = _feedback_rule(read, fb, now)
                except _Ignore:
                    continue
                ours += 1
                if step is not None:
                    merged = step if merged is None else _merge(merged, step)
            if not ours:
                raise _Ignore
            return merged

        try:
            return self._run(task_id, rule)
        except _Ignore:
            return None

    def verify(self, event_id: str, *, by: str, passed: bool, note: str = "") -> dict[str, Any]:
        """The duty officer's check of a handled task: passed → event verified; failed →
        event back in progress and the task reopened at stage `rework`."""
        if not isinstance(passed, bool):
            raise Refused("bad_body", 400, "passed must be true or false")
        note = text_arg(note, "note", 2000)

        def rule(read: Read, now: int) -> Step:
            task = read.task
            if task["stage"] != "handled" or (task.get("verify") or {}).get("passed"):
                raise Refused("bad_stage", 409, f"task is {task['stage']}; only a "
                                    "handled task that is not yet verified can be verified",
                                    task_id=task["id"])
            task["verify"] = {"by": by, "ts": now, "passed": passed, "note": note}
            step = Step(task, event_status="verified" if passed else "in_progress")
            if not passed:
                task["stage"] = "rework"
                for a in task["assignees"]:
                    a["stage"] = "rework"
            task["history"] = history(task, now, "verified" if passed else "rework", by, note)
            return step

        return self._event_step(event_id, rule)

    def evaluate(self, event_id: str, *, by: str, score: int, note: str = "") -> dict[str, Any]:
        """Score 1-5 for a verified task; closes the task and the event."""
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise Refused("bad_score", 400, "score must be a whole number 1-5")
        note = text_arg(note, "note", 2000)

        def rule(read: Read, now: int) -> Step:
            task = read.task
            if task["stage"] != "handled" or not (task.get("verify") or {}).get("passed"):
                raise Refused("not_verified", 409, "only a verified task can be "
                                    "evaluated", task_id=task["id"], stage=task["stage"])
            task["evaluation"] = {"by": by, "ts": now, "score": score, "note": note}
            task["stage"] = "closed"
            task["history"] = history(task, now, "closed", by, note)
            return Step(task, event_status="closed", keep_open=False, clear_event=True,
                        release={(a["kind"], a["id"]) for a in task["assignees"]})

        return self._event_step(event_id, rule)

    def _event_step(self, event_id: str, rule: Rule) -> dict[str, Any]:
        """`rule` over the event's task (its active one, else its last), found by the read."""
        out = self._run("", rule, event_id)
        if out is None:
            raise Refused("no_task", 409, "the event has no task")
        return out

    def _run(self, task_id: str, rule: Rule, event_id: str = "") -> dict[str, Any] | None:
        """Read, apply `rule`, write with one script; again if something moved meanwhile.
        `task_id` '': the task of `event_id`, found by the first read."""
        recalled = self._recall(task_id, event_id) if self.remember else None
        for _ in range(ATTEMPTS):
            strict = recalled is not None
            read = recalled if recalled is not None else self.scripts.read(task_id, event_id)
            recalled = None
            if read is None:
                return None
            if not strict:  # a remembered task may no longer be the event's: ask again
                task_id = read.task["id"]
            now = int(self.clock())
            try:
                step = rule(read, now)
            except (Refused, _Ignore):
                if strict:
                    continue  # a remembered read is trusted only by a write that checks it
                raise
            if step is None:
                if strict:
                    continue
                return read.task  # nothing to change
            after = self.scripts.step(read, step, now, strict=strict)
            if after is not None:
                self.keep(after)
                return step.task
        raise Refused("conflict", 409, "the task kept changing; try again",
                            task_id=task_id)


def _well_formed(feedback: dict[str, Any]) -> bool:
    return (isinstance(feedback.get("task_id"), str)
            and isinstance(feedback.get("actor_id"), str)
            and feedback.get("stage") in FEEDBACK_STAGES)


class _Ignore(Exception):
    """Feedback that is not for this task's people."""


def _feedback_rule(read: Read, feedback: dict[str, Any], now: int) -> Step | None:
    """What one well-formed feedback record changes in the task read (changed in place);
    None for a repeat or a task already done; _Ignore when it is for another event or from
    someone not in the task."""
    task = read.task
    actor, stage, fb_ts = feedback["actor_id"], feedback["stage"], feedback.get("ts")
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
    note = str(feedback.get("note") or "")[:2000]
    return _feedback_step(read, mine[0], stage, actor, note, fb_ts, now)


def _merge(first: Step, then: Step) -> Step:
    """Two feedback steps of one task as one: the later status wins, units freed stay so."""
    first.unit_status.update(then.unit_status)
    first.release |= then.release
    first.event_status = then.event_status or first.event_status
    first.task = then.task
    return first


def _feedback_step(read: Read, who: dict[str, Any], stage: str, actor: str, note: str,
                   fb_ts: Any, now: int) -> Step | None:
    """What one assignee's feedback changes; None for a repeat or a task already done."""
    task = read.task
    step = Step(task)
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
    task["history"] = history(task, now, stage, actor, note, fb_ts=fb_ts)
    return step


def _common(assignees: list[dict[str, Any]]) -> str:
    """The furthest stage every assignee reached (rework counts as accepted, and wins a tie)."""
    low = min(assignees, key=lambda a: (RANK.get(a["stage"], 0), a["stage"] != "rework"))
    return low["stage"]
