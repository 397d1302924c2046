"""The demo's other seats: an "autopilot" commander and duty officer (演示自动值守).

Only in the demo (`settings.sim_autopilot_s` > 0), in the simulator process. Every second it
looks at the open events and acts where nobody did within `sim_autopilot_s` seconds (twice
as long for level I/II, so a person at the wall has time to click first):

- an event still `reported` (new, or back from a rejected task) is dispatched with the
  proposal (`Desk.dispatch(..., by="autopilot", assignees=None)`);
- a `handled` event is verified (passed), a `verified` one evaluated (score 4–5);
- an event its reporting grid worker settles on the spot (小事不出网格, see
  `feeds.sim.incidents`) is recorded at once as that worker's task.

Everything goes through the same `Desk` and audit log as a person's click, so walls, the
audit and the watch service's alerts see the same thing.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

import redis

from dashboard.access.audit import Audit
from dashboard.backoff import Backoff
from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines
from dashboard.config import Settings
from dashboard.connect import open_redis
from dashboard.errors import Refused
from dashboard.models import URGENT_LEVELS
from dashboard.store import Store, now_ms
from feeds.sim.incidents import OnSpot

log = logging.getLogger("feeds.simulator")

USER: Final = "autopilot"
IP: Final = "simulator"  # what the audit log shows as the seat's address
TICK_S: Final = 1.0
RETRY_MAX: Final = 10_000  # events waiting for a retry (no free unit, …); bounded
ON_SPOT_WAIT_MS: Final = 30_000  # how long a settled-on-the-spot event may take to be stored
ACTIONABLE: Final = ("reported", "handled", "verified")
VERIFY_NOTES: Final = ("电话回访当事群众，对处置结果满意。", "视频核查现场，已恢复正常。",
                       "网格员上传照片与现场一致，核查通过。", "回访核实：问题已解决。")
EVALUATE_NOTES: Final = {5: ("响应迅速，处置规范，群众满意。", "处置及时到位，值得肯定。"),
                         4: ("处置到位，到场时间略长。", "处置有效，反馈材料可再完善。")}
ON_SPOT_NOTE: Final = "网格员巡查发现并就地处置（小事不出网格），系统补录派单。"
ON_SPOT_REASON: Final = "上报网格员已在现场，就地处置"
FALLBACK_NOTE: Final = "预案力量暂无可及时到场者，先派就近网格员到场核实、先期处置。"
FALLBACK_REASON: Final = "预案所需力量均不在时限内"


class Autopilot:
    """One autopilot over one Store. `tick()` is one round (tests call it with their own
    clock); `run(stop)` ticks every second until `stop` is set, surviving Redis outages."""

    def __init__(self, store: Store, desk: Desk, audit: Audit, settings: Settings,
                 clock: Callable[[], int] = now_ms, rng: random.Random | None = None,
                 on_spot: Any = None, lock: Any = None,
                 engaged: Callable[[list[str]], None] | None = None) -> None:
        self.store, self.desk, self.audit, self.settings = store, desk, audit, settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_spot = on_spot  # a deque of OnSpot shared with the incident desk, or None
        # The simulator's publishing lock: our dispatch never lands between its reading of
        # cc:dispatch and the sending of fixes made before it (see Simulator.run).
        self.lock = lock or threading.Lock()
        self.engaged = engaged  # told the units of each task we dispatch, under the lock
        self._spot_wait: list[tuple[int, OnSpot]] = []
        self._retry: OrderedDict[str, int] = OrderedDict()  # event id → not before (ms)
        self.counters = {"dispatched": 0, "verified": 0, "evaluated": 0, "on_spot": 0,
                         "refused": 0}

    def delay_ms(self, severity: Any) -> int:
        """How long the autopilot leaves an event to the people at the wall."""
        factor = 2 if severity in URGENT_LEVELS else 1
        return int(self.settings.sim_autopilot_s * 1000 * factor)

    # ---- one round ------------------------------------------------------------------------

    def tick(self) -> dict[str, int]:
        """Act on every event that waited long enough; counts of what was done."""
        done = {"dispatched": 0, "verified": 0, "evaluated": 0, "on_spot": 0}
        now = int(self.clock())
        self._take_on_spot(now, done)
        for event_id, event in self._due(now):
            status = event.get("status")
            if status == "reported":
                done["dispatched"] += self._dispatch(event_id, event, now)
            elif status == "handled":
                done["verified"] += self._act("event.verify", "duty_officer", event_id,
                                              lambda e=event_id: self.desk.verify(
                                                  e, by=USER, passed=True,
                                                  note=self.rng.choice(VERIFY_NOTES)), now)
            elif status == "verified":
                score = 5 if self.rng.random() < 0.6 else 4
                done["evaluated"] += self._act("event.evaluate", "duty_officer", event_id,
                                               lambda e=event_id, s=score: self.desk.evaluate(
                                                   e, by=USER, score=s,
                                                   note=self.rng.choice(EVALUATE_NOTES[s])),
                                               now)
        for key, n in done.items():
            self.counters[key] += n
        return done

    def _due(self, now: int) -> list[tuple[str, dict[str, Any]]]:
        """Open events in an actionable status whose wait is over, oldest first."""
        store = self.store
        ids = [_s(i) for i in store.r.smembers(store.key("events:open"))]
        if not ids:
            return []
        metas = store.r.hmget(store.key("meta:event"), ids)
        shortest = self.delay_ms(4)
        maybe = []
        for event_id, meta in zip(ids, metas, strict=True):
            if meta is None:
                continue
            _, ts, status = _s(meta).split("|", 2)
            # The stored ts is the report's: nothing can be due before it plus the wait.
            if status in ACTIONABLE and int(float(ts)) + shortest <= now \
                    and self._retry.get(event_id, 0) <= now:
                maybe.append(event_id)
        due = []
        for event_id, (event, _) in self.store.records("event", maybe).items():
            # Since when it waits: the report, or the last status change (a rejection, …).
            since = max(int(event.get("ts") or 0), int(event.get("status_ts") or 0))
            if since + self.delay_ms(event.get("severity")) <= now:
                due.append((since, event_id, event))
        due.sort(key=lambda d: d[0])
        return [(event_id, event) for _, event_id, event in due]

    def _dispatch(self, event_id: str, event: dict[str, Any], now: int) -> int:
        # A fresh key per task the event had: after a rejection the same key would only
        # return the rejected task again.
        previous = event.get("task_id")
        key = f"autopilot:{event_id}" + (f":after:{previous}" if previous else "")

        def work() -> tuple[dict[str, Any], bool]:
            try:
                return self.desk.dispatch(event_id, by=USER, key=key, assignees=None,
                                          plan_id=None)
            except Refused as exc:
                if exc.code != "no_units":
                    raise
                # Nobody the plan asks for makes it in time: as a commander would, send the
                # nearest grid worker to see and report, and say why.
                nearest = self.desk.proposal(event_id)["candidates"]["workers"][:1]
                if not nearest:
                    raise
                return self.desk.dispatch(event_id, by=USER, key=key, plan_id=None,
                                          assignees=[{"id": nearest[0]["id"], "kind": "worker"}],
                                          note=FALLBACK_NOTE, override_reason=FALLBACK_REASON)

        return self._act("event.dispatch", "commander", event_id, work, now=now)

    def _take_on_spot(self, now: int, done: dict[str, int]) -> None:
        """Record the events their reporter settles on the spot as that reporter's task."""
        while self.on_spot:
            try:
                spot = self.on_spot.popleft()
            except IndexError:
                break
            self._spot_wait.append((now + ON_SPOT_WAIT_MS, spot))
        waiting = []
        for until, spot in self._spot_wait:
            event = self.store.event(spot.event_id)
            if event is None:  # not stored yet (ingest is a moment behind): try again
                if until > now:
                    waiting.append((until, spot))
                continue
            if event.get("status") != "reported":
                continue  # someone was quicker
            done["on_spot"] += self._act(
                "event.dispatch", "commander", spot.event_id, lambda s=spot: self.desk.dispatch(
                    s.event_id, by=USER, key=f"autopilot:{s.event_id}",
                    assignees=[{"id": s.unit_id, "kind": s.kind}], plan_id=None,
                    note=ON_SPOT_NOTE, override_reason=ON_SPOT_REASON), now=None)
        self._spot_wait = waiting

    def _act(self, action: str, role: str, event_id: str, work: Callable[[], Any],
             now: int | None = None) -> int:
        """Run one desk action and audit it as the API does; 1 when it changed something."""
        try:
            with self.lock:
                out = work()
                if self.engaged is not None and isinstance(out, tuple) and not out[1]:
                    self.engaged([a["id"] for a in out[0].get("assignees", ())])
        except Refused as exc:
            self.counters["refused"] += 1
            self.audit.write(user=USER, role=role, action=action, target=event_id, ip=IP,
                             outcome="failure", detail={"code": exc.code,
                                                        "error": exc.message[:200]})
            if now is not None:  # e.g. no free unit near: try again after a while
                self._retry[event_id] = now + self.delay_ms(4) // 2
                self._retry.move_to_end(event_id)
                while len(self._retry) > RETRY_MAX:
                    self._retry.popitem(last=False)
            return 0
        duplicate = isinstance(out, tuple) and out[1]
        task = out[0] if isinstance(out, tuple) else out
        self._retry.pop(event_id, None)
        self.audit.write(user=USER, role=role, action=action, target=event_id, ip=IP,
                         outcome="duplicate" if duplicate else "success",
                         detail={"task_id": task.get("id")} if isinstance(task, dict) else None)
        return 0 if duplicate else 1

    # ---- the thread -----------------------------------------------------------------------

    def close(self) -> None:
        self.store.r.close()

    def run(self, stop: threading.Event) -> None:
        backoff = Backoff(0.2, 5.0)
        next_log = time.monotonic() + 60
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
                backoff.reset()
            except (redis.RedisError, OSError) as exc:
                wait = backoff.next()
                log.warning("autopilot: Redis unavailable (%s); retrying in %.1fs", exc, wait)
                stop.wait(wait)
                continue
            if started >= next_log:
                log.info("autopilot: %s", self.counters)
                next_log = started + 60
            stop.wait(max(0.0, TICK_S - (time.monotonic() - started)))
        self.close()


def build(redis_url: str, settings: Settings, on_spot: Any = None,
          clock: Callable[[], int] = now_ms, lock: Any = None,
          engaged: Callable[[list[str]], None] | None = None) -> Autopilot:
    """An autopilot with its own Redis client, the plan library and the deadlines."""
    client = open_redis(redis_url, decode_responses=True, socket_connect_timeout=2,
                        socket_timeout=10, health_check_interval=10)
    store = Store(client, settings.prefix, settings.log_maxlen)
    desk = Desk(store, PlanLibrary.load(), Deadlines.load(), settings, clock)
    return Autopilot(store, desk, Audit.of(client, settings), settings, clock,
                     on_spot=on_spot, lock=lock, engaged=engaged)


def start(redis_url: str, settings: Settings, stop: threading.Event,
          on_spot: Any = None, lock: Any = None,
          engaged: Callable[[list[str]], None] | None = None) -> threading.Thread | None:
    """Run the autopilot in a daemon thread when the demo asks for it (else None)."""
    if settings.sim_autopilot_s <= 0:
        return None
    pilot = build(redis_url, settings, on_spot, lock=lock, engaged=engaged)
    thread = threading.Thread(target=pilot.run, args=(stop,), daemon=True, name="autopilot")
    thread.start()
    log.info("autopilot: dispatching, verifying and evaluating what waits %gs (level I/II "
             "twice as long)", settings.sim_autopilot_s)
    return thread


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
