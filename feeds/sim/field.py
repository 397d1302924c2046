"""The field's side of the command loop: units that receive `cc:dispatch` and answer.

For each task whose assignees include our units, in simulated time: accept after a short
delay (`cc:feedback` `accepted`), travel to the scene at the kind's speed along a
Manhattan-like way (ETA = straight line × detour ÷ speed, as the wall estimates it, give or
take traffic), report `arrived`, work for a time that depends on the event type, report
`handled` with what was done, then go back to patrol or base. While engaged a unit's fixes
carry no `status`: the command center sets it (docs/PROTOCOL.md, docs/COMMAND-LOOP.md). A
few tasks are `rejected` (and so end for every unit of the task) or ask for support
(`need_support`) and still get handled, so the alarm path shows.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from dashboard.config import Settings
from feeds.sim.text import fill, load_pool
from feeds.sim.world import Resource, Worker, World, distance_m, street_corners

Unit = Worker | Resource

REJECT_SHARE = 0.03  # tasks a unit turns down (busy elsewhere, vehicle broken down, …)
SUPPORT_SHARE = 0.05  # tasks whose first unit on scene asks for support
SUPPORT_SLOWER = 1.6  # such a task takes this much longer on scene
TRAFFIC = (0.9, 1.25)  # actual travel time ÷ the wall's estimate
TEAM_KINDS = frozenset({"rescue_team", "volunteer"})
ENDED_MAX = 4096  # tasks we finished, remembered so a stored task is not taken up twice
_BY_CATEGORY = {"accident": "accident", "social_security": "social_security",
                "natural_disaster": "natural_disaster"}


class Hooks(Protocol):
    """What the field needs from the engine."""

    def emit(self, kind: str, msg: dict[str, Any]) -> None: ...
    def at(self, due: float, code: str, obj: Any) -> None: ...
    def wake(self, entity: Worker | Resource, t: float) -> None: ...
    def stamp(self, t: float, iso: bool) -> int | str: ...


@dataclass(frozen=True, slots=True)
class Scene:
    """Where a dispatched event is and what it is, as the field needs it."""

    point: tuple[float, float]  # WGS-84
    type: str
    category: str
    severity: int
    handle_s: float


@dataclass(slots=True, eq=False)
class Play:
    """One task as the field plays it."""

    task_id: str
    event_id: str
    scene: Scene
    units: list[Unit]
    outcome: str  # "handled" | "need_support" | "rejected"
    lead: Unit | None = None  # the first on scene: reports progress and `handled`
    started: float = -1.0  # first arrival (sim s)
    done: bool = False
    rework: bool = False  # sent back after a failed check (核查不通过)
    eta_min: dict[str, int] = field(default_factory=dict)


class Field:
    """Plays every dispatched task whose assignees are our units."""

    def __init__(self, world: World, rng: random.Random, hooks: Hooks,
                 settings: Settings) -> None:
        self.rng, self.hooks, self.settings = rng, hooks, settings
        self.workers = {w.id: w for w in world.workers}
        self.resources = {r.id: r for r in world.resources}
        self.plays: dict[str, Play] = {}  # open tasks only: memory follows the open tasks
        self.ended: OrderedDict[str, int] = OrderedDict()  # task id → when we ended it (ms)
        self.text = load_pool("feedback")
        self.on_handled: list[Any] = []  # callbacks(event_id), e.g. the incident desk's gauge

    # ---- a dispatch arrives ---------------------------------------------------------------

    def ours(self, msg: dict[str, Any]) -> list[Unit]:
        """The assignees of a `cc:dispatch` message that are our units."""
        units: list[Unit] = []
        for a in msg.get("assignees") or ():
            if not isinstance(a, dict):
                continue
            table = self.workers if a.get("kind") == "worker" else self.resources
            unit = table.get(str(a.get("id")))
            if unit is not None and unit not in units:
                units.append(unit)
        return units

    def dispatch(self, msg: dict[str, Any], scene: Scene, t: float,
                 resumed: str = "") -> Play | None:
        """Start playing the task of `msg` at sim time `t`; None when none of it is ours
        or it is being played already. `resumed` names the stage of a task taken up again
        (`rework` after a failed check, or one we missed): it then simply gets done."""
        task_id, event_id = str(msg.get("task_id") or ""), str(msg.get("event_id") or "")
        units = self.ours(msg)
        if not units or not task_id or task_id in self.plays:
            return None
        rng = self.rng
        roll = rng.random()
        outcome = "handled"  # a task taken up again simply gets done
        if not resumed and scene.severity > 1 and roll < REJECT_SHARE:
            outcome = "rejected"
        elif not resumed and roll < REJECT_SHARE + SUPPORT_SHARE:
            outcome = "need_support"
        play = Play(task_id, event_id, scene, units, outcome, rework=resumed == "rework")
        self.plays[task_id] = play
        urgent = scene.severity <= 2
        # A unit that cannot go says so at once; the whole task then returns to the commander.
        for unit in units:
            reason = self._cannot_go(unit)
            if reason:
                self.hooks.at(t + rng.uniform(8, 25), "f", (play, unit, "reject:" + reason))
                return play
        for unit in units:
            self._engage(unit, play)
        if outcome == "rejected":
            self.hooks.at(t + rng.uniform(15, 60), "f", (play, rng.choice(units), "reject:"))
            return play
        for unit in units:
            lo, hi = (5, 20) if urgent else (10, 45)
            self.hooks.at(t + rng.uniform(lo, hi), "f", (play, unit, "accept"))
        return play

    def to_resume(self, task: dict[str, Any]) -> str:
        """The stage to take a stored open task up again at, or "" to leave it: a task sent
        back for rework after we handled it, or one of our units' tasks we never heard of
        (dispatched while we were not listening)."""
        task_id, stage = str(task.get("id") or ""), task.get("stage")
        if not task_id or task_id in self.plays or stage in ("handled", "closed", "rejected"):
            return ""
        if task_id in self.ended:
            verify = task.get("verify") or {}
            failed_after = stage == "rework" and int(verify.get("ts") or 0) > self.ended[task_id]
            return "rework" if failed_after else ""
        return str(stage or "dispatched")

    def _cannot_go(self, unit: Unit) -> str:
        if unit.task is not None:
            return "busy"
        if isinstance(unit, Worker):
            return unit.status if unit.status in ("off_duty", "sos") else ""
        return "workshop" if unit.status == "unavailable" else ""

    def _engage(self, unit: Unit, play: Play) -> None:
        unit.task = play.task_id
        if isinstance(unit, Worker):
            unit.busy_with = play.event_id
        else:
            unit.mission = play.event_id

    # ---- the task's steps -----------------------------------------------------------------

    def step(self, play: Play, unit: Unit, stage: str, t: float) -> None:
        """Run one scheduled step (engine heap code "f")."""
        if play.done or unit not in play.units:
            return  # the task ended meanwhile (rejected, or handled by the lead)
        if stage == "accept":
            self._accept(play, unit, t)
        elif stage == "arrive":
            self._arrive(play, unit, t)
        elif stage == "support":
            self._feedback(play, unit, "need_support", t, self._support_note(play))
        elif stage == "handled":
            self._handled(play, unit, t)
        elif stage.startswith("reject:"):
            reason = stage.partition(":")[2] or self._group(unit)
            note = fill(self.rng.choice(self.text["rejected"][reason]), {"name": unit.name})
            self._feedback(play, unit, "rejected", t, note)
            self._end(play, t, handled=False)

    def _accept(self, play: Play, unit: Unit, t: float) -> None:
        rng, scene = self.rng, play.scene
        urgent = scene.severity <= 2
        group = self._group(unit)
        if group == "worker":
            leave = t + rng.uniform(0, 10)
        elif group == "team":
            leave = t + rng.uniform(60, 180) * (0.5 if urgent else 1.0)  # muster (集结)
        else:
            leave = t + rng.uniform(20, 60) * (0.5 if urgent else 1.0)  # crew out (出车)
        kind = "worker" if isinstance(unit, Worker) else unit.kind
        speed = self.settings.speed_kmh(kind) / 3.6
        here = unit.mover.at(t)
        straight = distance_m(here, scene.point)
        if isinstance(unit, Resource) and not unit.mobile:
            # A depot or shelter does not move: its supplies or staff are sent instead.
            arrive = leave + straight * self.settings.detour_factor / speed
            unit.mover.stay(t, math.inf)
        else:
            flies = kind == "drone"
            detour = 1.0 if flies else self.settings.detour_factor
            duration = straight * detour / speed * rng.uniform(*TRAFFIC)
            corners = [scene.point] if flies else street_corners(rng, here, scene.point)
            unit.mover.stay(t, math.inf)
            arrive = unit.mover.follow(t, corners, duration, math.inf, start=leave)
        eta = max(1, math.ceil((arrive - t) / 60))
        play.eta_min[unit.id] = eta
        pool = self.text["accepted"]["rework" if play.rework else group]
        note = fill(rng.choice(pool), {"name": unit.name, "eta": eta})
        self._feedback(play, unit, "accepted", t, note)
        self.hooks.at(arrive, "f", (play, unit, "arrive"))
        self.hooks.wake(unit, leave)  # the first fix on the way leaves with it

    def _arrive(self, play: Play, unit: Unit, t: float) -> None:
        unit.mover.stay(t, math.inf)
        note = fill(self.rng.choice(self.text["arrived"][self._group(unit)]), {"name": unit.name})
        self._feedback(play, unit, "arrived", t, note)
        self.hooks.wake(unit, t)  # a fix at the scene with the arrival
        if play.lead is None:
            play.lead, play.started = unit, t
            on_scene = play.scene.handle_s
            if play.outcome == "need_support":
                self.hooks.at(t + self.rng.uniform(60, 240), "f", (play, unit, "support"))
                on_scene *= SUPPORT_SLOWER
            self.hooks.at(t + on_scene, "f", (play, unit, "handled"))

    def _handled(self, play: Play, lead: Unit, t: float) -> None:
        """The lead reports what was done; every other unit closes its own order too (the
        task is handled once all its assignees say so), whether on scene or still on the way.
        """
        rng, notes = self.rng, self.text["handled"]
        minutes = max(1, round((t - play.started) / 60))
        note = fill(rng.choice(notes.get(play.scene.type) or notes["default"]),
                    {"minutes": minutes})
        self._feedback(play, lead, "handled", t, note)
        for unit in play.units:
            if unit is not lead and unit.task == play.task_id:
                there = distance_m(unit.mover.at(t), play.scene.point) < 5 \
                    or (isinstance(unit, Resource) and not unit.mobile)
                pool = notes["_with" if there else "_turned_back"]
                self._feedback(play, unit, "handled", t,
                               fill(rng.choice(pool), {"name": unit.name}))
        self._end(play, t, handled=True)

    def _support_note(self, play: Play) -> str:
        notes = self.text["need_support"]
        pool = notes.get(_BY_CATEGORY.get(play.scene.category, ""), notes["default"])
        return str(self.rng.choice(pool))

    def _end(self, play: Play, t: float, *, handled: bool) -> None:
        """The task is over for the field: every unit of it is free again."""
        play.done = True
        self.plays.pop(play.task_id, None)
        self.ended[play.task_id] = int(self.hooks.stamp(t, iso=False))
        self.ended.move_to_end(play.task_id)
        while len(self.ended) > ENDED_MAX:
            self.ended.popitem(last=False)
        rng = self.rng
        for unit in play.units:
            if unit.task != play.task_id:
                continue  # never engaged (a task rejected at once)
            unit.task = None
            if isinstance(unit, Worker):
                unit.busy_with = None
                unit.mover.stay(t, rng.uniform(30, 300))  # a word with the people, then on
                # A shift that ran out on the job goes on a little: back on duty first, as
                # the command center has just marked it, and off later.
                unit.shift_until = max(unit.shift_until, t + rng.uniform(300, 1800))
            else:
                unit.mission = None
                if unit.mobile and distance_m(unit.mover.at(t), unit.base) > 50:
                    # Back to base without lights; patrol cars pick up their patrol from there.
                    speed = self.settings.speed_kmh(unit.kind) / 3.6 * 0.8
                    here = unit.mover.at(t)
                    straight = distance_m(here, unit.base)
                    unit.mover.follow(t, street_corners(rng, here, unit.base),
                                      straight * self.settings.detour_factor / speed,
                                      rng.uniform(60, 600))
                else:
                    unit.mover.stay(t, rng.uniform(60, 600))
            self.hooks.wake(unit, t)  # the first fix with a status again
        if handled:
            for callback in self.on_handled:
                callback(play.event_id)

    # ---- helpers --------------------------------------------------------------------------

    def _group(self, unit: Unit) -> str:
        if isinstance(unit, Worker):
            return "worker"
        if not unit.mobile:
            return "static"
        return "team" if unit.kind in TEAM_KINDS else "vehicle"

    def _feedback(self, play: Play, unit: Unit, stage: str, t: float, note: str) -> None:
        self.hooks.emit("feedback", {
            "v": 1, "task_id": play.task_id, "event_id": play.event_id, "actor_id": unit.id,
            "stage": stage, "ts": self.hooks.stamp(t, iso=False), "note": note,
        })
