"""Time limits (处置时限): yellow and red cards for every open event, each raised once per
(event, stage, colour); old alerts trimmed once a minute.

A tick over thousands of open events stays cheap: an event whose record and task are as
last seen is skipped until the first moment a card could appear for it."""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Final

import orjson

from dashboard.command.sla import Deadlines
from feeds.watch.context import DAY_S, REDIS_DOWN, Context, Handler

log = logging.getLogger("cc.watch")

BLOCK: Final = 500  # open events read per round trip
SLA_TTL_S: Final = 30 * DAY_S
QUIET_MAX_MS: Final = 60_000  # cards of an unchanged event are recomputed at least this often
TRIM_S: Final = 60.0


class Cards(Handler):
    def __init__(self, deadlines: Deadlines) -> None:
        self.deadlines = deadlines
        # What was already raised, so steady state costs no round trip per tick.
        self._done: dict[str, set[tuple[str, str]]] = {}
        # event id → (its JSON, its task's JSON, no card can change before this ms)
        self._quiet: dict[str, tuple[str, str | None, int]] = {}
        self._last_trim = float("-inf")

    def attach(self, ctx: Context) -> None:
        super().attach(ctx)
        self._done.clear()
        self._quiet.clear()

    def tick(self, now: int) -> int:
        """Cards for every open event (with or without a task); returns how many alerts
        were raised."""
        store = self.ctx.store
        open_ids = sorted(store.r.smembers(store.key("events:open")))
        raised = 0
        for start in range(0, len(open_ids), BLOCK):
            chunk = open_ids[start:start + BLOCK]
            pipe = store.r.pipeline(transaction=False)
            pipe.hmget(store.key("state:event"), chunk)
            for event_id in chunk:  # GET each: a cluster's pipeline refuses MGET
                pipe.get(store.key(f"task:event:{event_id}"))
            events, *task_ids = pipe.execute()
            wanted = [tid for tid in task_ids if tid]
            tasks = dict(zip(wanted, store.r.hmget(store.key("state:task"), wanted),
                             strict=True)) if wanted else {}
            for event_id, raw_event, task_id in zip(chunk, events, task_ids, strict=True):
                if raw_event is None:
                    continue
                raw_task = tasks.get(task_id) if task_id else None
                raised += self._event(event_id, raw_event, raw_task, now)
        open_set = set(open_ids)
        for cache in (self._done, self._quiet):
            for event_id in [e for e in cache if e not in open_set]:
                del cache[event_id]
        if time.monotonic() - self._last_trim >= TRIM_S:
            self._last_trim = time.monotonic()
            self.ctx.alerts.trim(now)
        return raised

    def _event(self, event_id: str, raw_event: str, raw_task: str | None, now: int) -> int:
        quiet = self._quiet.get(event_id)
        if quiet and quiet[0] == raw_event and quiet[1] == raw_task and now < quiet[2]:
            return 0  # nothing changed and no card is due yet
        raised = 0
        try:
            event = orjson.loads(raw_event)
            task = orjson.loads(raw_task) if raw_task else None
            if task is not None and task.get("stage") == "rejected":
                # back with the commander: the clock that runs is the dispatch one
                task = None
            raised = self._cards(event_id, event, task, now)
            quiet_until = self._next_moment(event, task, now)
        except REDIS_DOWN:
            raise
        except Exception as exc:  # one odd record must not stop every card
            self.ctx.counters["errors"] += 1
            log.warning("watch: deadlines of event %s failed: %r", event_id, exc)
            quiet_until = now + QUIET_MAX_MS
        self._quiet[event_id] = (raw_event, raw_task, quiet_until)
        return raised

    def _cards(self, event_id: str, event: dict[str, Any], task: dict[str, Any] | None,
               now: int) -> int:
        ctx = self.ctx
        done = self._done.setdefault(event_id, set())
        raised = 0
        for card in self.deadlines.cards(event, task, now, ctx.settings.sla_yellow_ratio,
                                         known=done):
            key = (card.stage, card.color)
            if key in done:
                continue
            feed, parts = ctx.title(event, event_id)
            text = ("alert.sla", feed, {**parts, "card": dict(card.message)})
            if ctx.raise_alert(f"sla_{card.color}", event_id, event_id, text,
                               int(event.get("severity") or 4), SLA_TTL_S, card.stage):
                raised += 1
            done.add(key)
        return raised

    def _next_moment(self, event: dict[str, Any], task: dict[str, Any] | None,
                     now: int) -> int:
        """The first moment after `now` at which a card could appear for this event and task
        as they are: a yellow or red moment of some stage counted from some start the
        deadlines may use (the report, the dispatch, any step of the task). A superset of
        the real moments, so none is skipped; re-checked at least every QUIET_MAX_MS anyway."""
        limits = self.deadlines.limits(event)
        starts = {event.get("first_ts"), event.get("ts")}
        if task is not None:
            starts.add(task.get("ts"))
            starts.update(h.get("ts") for h in task.get("history") or [] if isinstance(h, dict))
        ratio = self.ctx.settings.sla_yellow_ratio
        soonest = now + QUIET_MAX_MS
        for start in starts:
            if not isinstance(start, int) or isinstance(start, bool):
                continue
            for limit_s in (limits.dispatch_s, limits.arrive_s, limits.handle_s):
                for moment in (start + math.ceil(limit_s * 1000 * ratio),
                               start + limit_s * 1000):
                    if now < moment < soonest:
                        soonest = moment
        return soonest
