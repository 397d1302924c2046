"""Simulated events (事件): where they come from, what they say, and how each one is closed.

Until a dispatch module drives the loop, the simulator moves every event on itself:
reported → dispatched → in_progress → handled → (verified) → closed, or cancelled,
re-publishing the same id with a later `ts`. Dispatch sends the grid's own worker and,
for accidents and fires, the nearest free vehicles, which really drive to the scene.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from dashboard.geo import wgs84_to_bd09, wgs84_to_gcj02
from feeds.sim.text import Text, Weighted, fill, load_pool
from feeds.sim.world import (
    DRIVE_MPS,
    FLY_MPS,
    WALK_MPS,
    Camera,
    CityLike,
    Resource,
    Worker,
    World,
    distance_m,
    offset,
)

MEAN_EVENT_GAP_S = 4.0
LEVEL_ONE_SHARE = 1 / 500
# Sources whose systems stamp epoch milliseconds (devices); people-facing systems send ISO text.
MS_SOURCES = frozenset({"video_ai", "iot"})
# Sources that already know their grid (a worker's phone, a registered device, a patrol unit).
GRID_SOURCES = frozenset({"app", "iot", "patrol"})
_DEVICE = {"elderly_alone": "MTR", "gas_leak": "GAS", "fire": "SMK", "manhole_cover": "MHC",
           "water_pipe_burst": "WPS", "pollution": "AQM", "rainstorm": "WLV", "flood": "WLV"}
_SOURCE_TAGS = {"video_ai": "AI识别", "iot": "物联感知", "hotline": "12345热线",
                "wechat": "随手拍", "app": "网格上报", "patrol": "巡查发现", "police": "110联动"}
_DEPARTMENTS = ("平度市信访局", "平度市卫生健康局", "平度市应急管理局", "平度市市场监督管理局",
                "平度市自然资源局")
_PATROL_KINDS = ("patrol_car", "law_enforcement", "police_car")


class Hooks(Protocol):
    """What the desk needs from the engine."""

    def emit(self, kind: str, msg: dict[str, Any]) -> None: ...
    def at(self, due: float, code: str, obj: Any) -> None: ...
    def wake(self, entity: Worker | Resource, t: float) -> None: ...
    def stamp(self, t: float, iso: bool) -> int | str: ...


@dataclass(slots=True, eq=False)
class Incident:
    id: str
    msg: dict[str, Any]  # everything but status and ts, resent whole on every update
    iso: bool
    point: tuple[float, float]  # WGS-84
    grid: str
    severity: int
    handle_s: float
    cancel_at: float
    status: str = "reported"
    worker: Worker | None = None
    responders: list[Resource] = field(default_factory=list)


class IncidentDesk:
    """Creates events on a Poisson clock and walks each through its lifecycle."""

    def __init__(self, world: World, city: CityLike, text: Text, rng: random.Random,
                 hooks: Hooks, run_tag: str) -> None:
        self.world, self.city, self.text, self.rng, self.hooks = world, city, text, rng, hooks
        self.run_tag = run_tag
        pool = load_pool("events")
        self.normal: dict[str, dict[str, Any]] = pool["normal"]
        self.major = {k: v for k, v in pool["major"].items() if not k.startswith("_")}
        self.topics: list[str] = pool["topics"]
        self._normal_pick = Weighted({k: v["weight"] for k, v in self.normal.items()})
        self._major_pick = Weighted({k: v["weight"] for k, v in self.major.items()})
        self._sev = {k: Weighted(v["severity"]) for k, v in self.normal.items()}
        self._src = {k: Weighted(v["sources"]) for k, v in self.normal.items()}
        self._src.update({f"major:{k}": Weighted(v["sources"]) for k, v in self.major.items()})
        self.ai_cams = [c for c in world.cameras if c.ai]
        self.lookouts = [c for c in world.cameras if c.lookout] or self.ai_cams
        self.rural = [g for g in world.grid_codes if g not in world.urban_grids]
        self.patrollers = [r for k in _PATROL_KINDS for r in world.by_kind.get(k, []) if r.patrols]
        self.seq = 0
        self.open = 0  # a gauge, not a list: memory stays flat

    # ---- creation -------------------------------------------------------------------------

    def spawn(self, t: float) -> None:
        """One new event at sim time `t`; the engine calls this on the Poisson clock."""
        rng = self.rng
        self._now = t
        if rng.random() < LEVEL_ONE_SHARE:
            etype = self._major_pick.pick(rng)
            spec, severity, source = self.major[etype], 1, self._src[f"major:{etype}"].pick(rng)
        else:
            etype = self._normal_pick.pick(rng)
            spec = self.normal[etype]
            severity, source = int(self._sev[etype].pick(rng)), self._src[etype].pick(rng)
        source, point, grid, origin = self._locate(spec, source)
        self.seq += 1
        inc = self._compose(f"E{self.run_tag}-{self.seq:05d}", etype, spec, severity, source,
                            point, grid, origin, t)
        self.open += 1
        self._publish(inc, t)
        if isinstance(origin, Worker | Resource) and rng.random() < spec.get("self_handle", 0):
            # 小事一格解决: the reporter settles it on the spot and the case skips dispatch.
            self._engage(origin, inc, t, at_scene=True)
            self.hooks.at(t + rng.uniform(5, 30), "e", (inc, "in_progress"))
        else:
            urgent = severity <= 2
            delay = rng.uniform(5, 20) if urgent else rng.uniform(20, 90)
            self._next(inc, t + delay, "dispatched")

    def _locate(self, spec: dict[str, Any],
                source: str) -> tuple[str, tuple[float, float], str, Any]:
        """(source, WGS-84 point, grid, the camera/worker/vehicle that saw it or None)."""
        rng, world = self.rng, self.world
        if source == "app":
            for _ in range(12):
                w = rng.choice(world.workers)
                if w.status == "on_duty" and w.busy_with is None:
                    here = w.mover.at(self._now)
                    return source, offset(*here, rng.uniform(3, 30), rng.uniform(0, 360)), \
                        w.grid, w
        elif source == "video_ai":
            cams = self.lookouts if spec.get("rural") else self.ai_cams
            for _ in range(6):
                cam = rng.choice(cams) if cams else None
                if cam is not None and cam.online:
                    look = cam.heading if cam.heading is not None else rng.uniform(0, 360)
                    dist = rng.uniform(10, min(cam.range_m, 120))
                    return source, offset(cam.lon, cam.lat, dist, look), cam.grid, cam
        elif source == "patrol" and self.patrollers:
            for _ in range(6):
                r = rng.choice(self.patrollers)
                if r.status == "available" and r.mission is None:
                    here = r.mover.at(self._now)
                    seen = offset(*here, rng.uniform(10, 60), rng.uniform(0, 360))
                    grid = self.city.locate(*seen)
                    if grid is not None:  # else it is across the city line: not ours
                        return source, seen, grid, r
        if source in ("app", "video_ai", "patrol"):
            source = "hotline"  # nobody suitable on hand: a citizen phones it in instead
        grid = rng.choice(self.rural) if spec.get("rural") and self.rural else \
            world.pick_grid(rng)
        return source, self.city.random_point_in(grid, rng), grid, None

    def _compose(self, eid: str, etype: str, spec: dict[str, Any], severity: int, source: str,
                 point: tuple[float, float], grid: str, origin: Any, t: float) -> Incident:
        rng, text, world = self.rng, self.text, self.world
        town, comm = world.town_of[grid], world.community_of[grid]
        urban = grid in world.urban_grids
        road, road2, village = text.grid_places(grid, urban)
        title, desc = rng.choice(spec["cases"])
        by_source = spec.get("by_source", {}).get(source)
        if by_source:
            desc = rng.choice(by_source)
        no, building = rng.randint(1, 399), rng.randint(1, 30)
        compound = rng.choice(text.places["compounds"])
        # The address follows what the case talks about: a village, a compound or a street.
        where = title + desc
        if "{village}" in where or (not urban and "{road}" not in where):
            addr = f"{town.name}{comm.name}{village}村{no}号"
        elif "{compound}" in where:
            addr = f"{town.name}{comm.name}{compound}{building}号楼"
        else:
            addr = f"{town.name}{comm.name}{road}{no}号"
        device = f"IOT-{_DEVICE.get(etype, 'DEV')}-{rng.randrange(10**8):08d}"
        ctx = {
            "town": town.name, "community": comm.name, "road": road, "road2": road2,
            "village": village, "no": no, "addr": addr, "device": device,
            "camera": origin.name if isinstance(origin, Camera) else "",
            "compound": compound, "building": building,
            "gate": rng.choice(text.places["compound_gates"]),
            "place": rng.choice(text.places["places"]), "topic": rng.choice(self.topics),
            "person": text.masked_person(rng), "person2": text.masked_person(rng),
            "plate": text.plate(rng), "floor": rng.randint(1, 18),
            "age": rng.randint(68, 93), "hours": rng.randint(24, 72),
            "minutes": rng.randint(5, 40), "count": rng.randint(2, 9),
            "money": rng.randint(2, 60) * 1000, "meters": rng.randint(1, 5),
            "angle": rng.randint(10, 45), "pm": rng.randint(150, 400),
            "lel": rng.randint(20, 60), "drop": rng.randint(30, 70),
            "depth": rng.randint(20, 60), "conf": rng.randint(80, 99),
        }
        msg: dict[str, Any] = {
            "v": 1, "id": eid, "type": etype, "severity": severity,
            "title": fill(title, ctx), "description": fill(desc, ctx),
            "address": addr, "source": source,
            "reporter": self._reporter(source, origin, device),
            "tags": [*spec.get("tags", []), _SOURCE_TAGS.get(source, "部门移交")],
        }
        lon, lat = point
        if source == "wechat":  # the mini-program takes its position from the (GCJ-02) map SDK
            (lon, lat), msg["crs"] = wgs84_to_gcj02(lon, lat), "gcj02"
        elif source == "hotline" and rng.random() < 0.4:  # address geocoded by Baidu
            (lon, lat), msg["crs"] = wgs84_to_bd09(lon, lat), "bd09"
        elif source == "iot":
            msg["crs"] = "wgs84"
        msg["lon"], msg["lat"] = round(lon, 6), round(lat, 6)
        if source in GRID_SOURCES:
            msg["grid_id"] = grid
        if isinstance(origin, Camera):
            msg["camera_id"] = origin.id
        if source == "iot":
            msg["device_id"] = device
        lo, hi = spec["handle_min"]
        cancel_p = 0.0 if severity == 1 else spec.get("cancel", 0.03)
        cancel_at = t + rng.uniform(60, 400) if rng.random() < cancel_p else math.inf
        return Incident(eid, msg, source not in MS_SOURCES, point, grid, severity,
                        rng.uniform(lo, hi) * 60, cancel_at)

    def _reporter(self, source: str, origin: Any, device: str) -> str:
        rng, text = self.rng, self.text
        if isinstance(origin, Worker | Resource | Camera):
            return origin.id
        if source == "iot":
            return device
        if source == "wechat":
            return f"微信用户 {text.masked_phone(rng)}"
        if source == "police":
            return f"110联动 {text.masked_phone(rng)}"
        if source == "other":
            return rng.choice(_DEPARTMENTS)
        return text.masked_phone(rng)

    # ---- lifecycle ------------------------------------------------------------------------

    _now = 0.0  # sim time of the step being run, for position look-ups

    def step(self, inc: Incident, status: str, t: float) -> None:
        """Move `inc` to `status` at sim time `t`, publish it and plan the next step."""
        self._now = t
        rng = self.rng
        inc.status = status
        self._publish(inc, t)
        if status == "dispatched":
            arrive = self._dispatch(inc, t)
            self._next(inc, min(max(arrive, t + 30), t + 900), "in_progress")
        elif status == "in_progress":
            self._next(inc, t + inc.handle_s, "handled")
        elif status == "handled":
            self._release(inc, t)
            if rng.random() < 0.5:
                self.hooks.at(t + rng.uniform(30, 120), "e", (inc, "verified"))
            else:
                self.hooks.at(t + rng.uniform(60, 180), "e", (inc, "closed"))
        elif status == "verified":
            self.hooks.at(t + rng.uniform(30, 90), "e", (inc, "closed"))
        else:  # closed / cancelled: the incident is dropped here
            self._release(inc, t)
            self.open -= 1

    def _next(self, inc: Incident, due: float, status: str) -> None:
        # A cancellation (duplicate report, 误报) wins if it comes before dispatch or arrival.
        if inc.cancel_at <= due:
            self.hooks.at(inc.cancel_at, "e", (inc, "cancelled"))
        else:
            self.hooks.at(due, "e", (inc, status))

    def _publish(self, inc: Incident, t: float) -> None:
        msg = dict(inc.msg)
        msg["status"] = inc.status
        msg["ts"] = self.hooks.stamp(t, inc.iso)
        self.hooks.emit("event", msg)

    def _dispatch(self, inc: Incident, t: float) -> float:
        """Send the grid's worker and the nearest free vehicles; returns the first arrival."""
        rng = self.rng
        arrivals = [t + rng.uniform(120, 480)]  # a department with no tracked unit
        free = [w for w in self.world.workers_by_grid.get(inc.grid, ())
                if w.status == "on_duty" and w.busy_with is None]
        if free:
            w = min(free, key=lambda w: distance_m(w.mover.at(t), inc.point))
            arrivals.append(self._engage(w, inc, t, at_scene=False))
        spec = self.major.get(inc.msg["type"]) if inc.severity == 1 else \
            self.normal.get(inc.msg["type"], {})
        for kind in (spec or {}).get("responders", ()):
            if kind == "ambulance" and inc.severity == 4:
                continue
            best = None
            for r in self.world.by_kind.get(kind, ()):
                if r.status == "available" and r.mission is None and r.mobile:
                    d = distance_m(r.mover.at(t), inc.point)
                    if best is None or d < best[0]:
                        best = (d, r)
            if best is not None:
                arrivals.append(self._engage(best[1], inc, t, at_scene=False))
        return min(arrivals)

    def _engage(self, unit: Worker | Resource, inc: Incident, t: float, at_scene: bool) -> float:
        """Commit one worker or vehicle to `inc`; returns when it will be on scene."""
        rng = self.rng
        if isinstance(unit, Worker):
            unit.busy_with, unit.status = inc.id, "busy"
            inc.worker = unit
            dist = distance_m(unit.mover.at(t), inc.point)
            # Beyond ~5 minutes' walk a grid worker takes the e-bike.
            speed = WALK_MPS if dist < 400 else max(5.0, dist / 600)
            arrive = unit.mover.go(t, inc.point, speed, math.inf)
            self.hooks.wake(unit, t)
            return arrive
        unit.mission, unit.scene = inc.id, inc.point
        inc.responders.append(unit)
        if at_scene:
            unit.status = "on_scene"
            unit.mover.stay(t, math.inf)
            self.hooks.wake(unit, t)
            return t
        unit.status = "dispatched"
        unit.depart_at = t + rng.uniform(20, 60)  # crew to the vehicle (出车)
        speed = FLY_MPS if unit.kind == "drone" else DRIVE_MPS
        unit.mover.stay(t, math.inf)
        self.hooks.wake(unit, t)
        return unit.depart_at + distance_m(unit.mover.at(t), inc.point) / speed

    def _release(self, inc: Incident, t: float) -> None:
        w, inc.worker = inc.worker, None
        if w is not None and w.busy_with == inc.id:
            w.busy_with = None
            if w.status == "busy":
                w.status = "on_duty"
            w.mover.stay(t, 0)  # pick a new waypoint at the next report
            self.hooks.wake(w, t)
        for r in inc.responders:
            if r.mission == inc.id:
                r.mission = None
                r.status = "returning"
                r.mover.go(t, r.base, FLY_MPS if r.kind == "drone" else DRIVE_MPS, 0)
                self.hooks.wake(r, t)
        inc.responders = []

