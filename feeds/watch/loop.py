"""The command loop's part of the watch: field feedback moves its task along, and a task
sent back (rejected, asking for support) raises a `critical_event` alert."""

from __future__ import annotations

from typing import Any, Final

from feeds.watch.context import DAY_S, Handler

TASK_TTL_S: Final = 7 * DAY_S
TASK_ALERT_STAGES: Final = ("rejected", "need_support")


class CommandLoop(Handler):
    def entry(self, seq: int, kind: str, op: str, record: dict[str, Any]) -> bool:
        if kind == "feedback":
            self.ctx.desk.on_feedback(record)
            return True
        if kind == "task":
            return self._task(record)
        return False

    def _task(self, task: dict[str, Any]) -> bool:
        stage = task.get("stage")
        if stage not in TASK_ALERT_STAGES:
            return False
        ctx = self.ctx
        event = ctx.store.event(str(task.get("event_id"))) or {}
        # When this stage was entered tells it from a later one of the same task; a frame
        # that repeats the task unchanged has the same cause and raises nothing.
        entered = [h.get("ts") for h in task.get("history") or []
                   if isinstance(h, dict) and h.get("stage") == stage]
        cause = f"{stage}:{entered[-1] if entered else task.get('ts')}"
        feed, parts = ctx.title(event, task.get("event_id"))
        text = (f"alert.{stage}", feed, {**parts, "task": task.get("id", "")})
        return ctx.raise_alert("critical_event", str(task.get("id")), task.get("event_id"),
                               text, int(event.get("severity") or 3), TASK_TTL_S, cause)
