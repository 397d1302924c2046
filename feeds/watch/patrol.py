"""Patrol coverage: the grids on-duty workers are in join that day's patrolled set (the
cockpit's figure), one round trip per block of log entries."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from dashboard.archive.stats import PATROL_KEEP_S, patrol_key
from dashboard.store import day_of
from feeds.watch.context import Context, Handler, remember


class Patrol(Handler):
    def __init__(self) -> None:
        self._patrolled: OrderedDict[str, tuple[str, str]] = OrderedDict()  # id → (day, grid)
        self._new: dict[str, set[str]] = {}  # day → grids seen since the last flush

    def attach(self, ctx: Context) -> None:
        super().attach(ctx)
        self._patrolled.clear()

    def entry(self, seq: int, kind: str, op: str, record: dict[str, Any]) -> bool:
        """One set member per worker per grid change, not per position."""
        if kind != "worker":
            return False
        grid = record.get("loc_grid_id") or record.get("grid_id")
        ts = record.get("ts")
        if not grid or record.get("status") == "off_duty" or not isinstance(ts, int):
            return False
        day = day_of(ts, self.ctx.settings.timezone)
        worker_id = str(record.get("id"))
        if self._patrolled.get(worker_id) == (day, str(grid)):
            return False
        remember(self._patrolled, worker_id, (day, str(grid)))
        self._new.setdefault(day, set()).add(str(grid))
        return False

    def flush(self) -> None:
        """Today's new grids in one round trip."""
        if not self._new:
            return
        store = self.ctx.store
        pipe = store.r.pipeline(transaction=False)
        for day, grids in self._new.items():
            pipe.sadd(patrol_key(store.prefix, day), *grids)
            pipe.expire(patrol_key(store.prefix, day), PATROL_KEEP_S)
        added = sum(pipe.execute()[0::2])
        self._new.clear()
        if added:  # a grid patrolled for the first time that day moves the coverage
            store.r.incr(store.key("stats:ver"))
