"""Geofence: one `geofence_exit` alert when an on-duty grid worker leaves the grid assigned
to them, none for the positions after it, until they are back."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

from dashboard.city import load_city
from dashboard.i18n import LANGS
from feeds.watch.context import DAY_S, Context, Handler, remember

GEOFENCE_TTL_S: Final = 7 * DAY_S
GEOFENCE_SEVERITY: Final = 3  # level III: someone to ring, not an emergency by itself
# Out of their grid but not an alarm: sent on a task, busy with one, or in an SOS (its own
# alarm). Such an episode stays excused until the worker is back in their grid, so the walk
# home after a task raises nothing.
GEOFENCE_EXCUSED: Final = ("busy", "sos")


class Geofence(Handler):
    def __init__(self) -> None:
        self._fence: OrderedDict[str, str] = OrderedDict()  # worker → episode cause, "" = none
        # back in their grid since the last flush: their episodes end in one HDEL a block
        # (after a (re)start every worker's first position was a round trip of its own)
        self._back: set[str] = set()

    def attach(self, ctx: Context) -> None:
        super().attach(ctx)
        self._fence.clear()
        self._back.clear()

    def flush(self) -> None:
        if self._back:
            store = self.ctx.store
            store.r.hdel(store.key("geofence:out"), *sorted(self._back))
            self._back.clear()

    def entry(self, seq: int, kind: str, op: str, record: dict[str, Any]) -> bool:
        return kind == "worker" and self._geofence(seq, record)

    def _geofence(self, seq: int, worker: dict[str, Any]) -> bool:
        """The position (`loc_grid_id`) against the grid assigned (`grid_id`); the episode
        (`Pgeofence:out` worker → cause) ends when they are back in their grid. Off duty:
        nothing (a worker who comes on duty outside their grid is alerted then). Busy, in an
        SOS or with an active task (`Ptask:unit:worker:{id}`, they were sent): the episode
        is recorded as excused. No round trip while nothing changes."""
        home, here = worker.get("grid_id"), worker.get("loc_grid_id")
        if not home or not here:
            return False
        worker_id = str(worker.get("id"))
        known = self._fence.get(worker_id)
        ctx = self.ctx
        store = ctx.store
        key = store.key("geofence:out")
        if here == home:
            if known != "":  # in an episode, or not known since the (re)start
                self._back.add(worker_id)
                remember(self._fence, worker_id, "")
            return False
        if known is None:
            known = store.r.hget(key, worker_id) or ""
            remember(self._fence, worker_id, known)
        status = worker.get("status")
        if known or status == "off_duty":
            return False
        if status in GEOFENCE_EXCUSED:
            cause = f"excused:{status}"
        elif store.r.exists(store.key(f"task:unit:worker:{worker_id}")):
            cause = "excused:task"
        else:
            cause = f"alert:{seq}"
            city = load_city(ctx.settings.city)
            names = [{lang: (u.label(lang) if (u := city.unit(str(g))) else str(g))
                      for lang in LANGS} for g in (home, here)]
            text = ("alert.geofence_exit", {"name": str(worker.get("name") or worker_id)},
                    {"grid": names[0], "here": names[1]})
            # the seq where the episode began tells it from the next one (as an SOS)
            ctx.raise_alert("geofence_exit", worker_id, None, text, GEOFENCE_SEVERITY,
                            GEOFENCE_TTL_S, str(seq))
        self._back.discard(worker_id)  # out again in the same block: this episode stays
        pipe = store.r.pipeline(transaction=False)
        pipe.hset(key, worker_id, cause)
        pipe.expire(key, GEOFENCE_TTL_S)  # a worker who vanished while out must not stay
        pipe.execute()
        remember(self._fence, worker_id, cause)
        return True
