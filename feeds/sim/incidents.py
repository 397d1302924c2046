"""Simulated events (事件): where they come from and what they say.

The simulator only reports events (status `reported`, once each): the command center owns
their lifecycle (dispatch, verify, close). The field's side of a task is `feeds.sim.field`.
A share of small grid issues is settled on the spot by the grid worker who found it
(小事不出网格); such an event is remembered in `on_spot` for the demo's autopilot, which
records it as a task through the real loop, like a commander would.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Protocol

from dashboard.geo import wgs84_to_bd09, wgs84_to_gcj02
from feeds.sim.text import Text, Weighted, fill, load_pool
from feeds.sim.world import Camera, CityLike, Resource, Worker, World, offset

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
# The simulator's own recent events, for the field to find a dispatched event's scene without
# a round trip (older ones are read from Redis). Bounds memory: ~5 h of events at rate 1.
RECENT_MAX = 4096
ON_SPOT_MAX = 256  # settled-on-the-spot events waiting for the autopilot to record them


class Hooks(Protocol):
    """What the desk needs from the engine."""

    def emit(self, kind: str, msg: dict[str, Any]) -> None: ...
    def at(self, due: float, code: str, obj: Any) -> None: ...
    def wake(self, entity: Worker | Resource, t: float) -> None: ...
    def stamp(self, t: float, iso: bool) -> int | str: ...


@dataclass(slots=True, eq=False)
class Incident:
    id: str
    msg: dict[str, Any]  # everything but status and ts
    iso: bool
    point: tuple[float, float]  # WGS-84
    grid: str
    severity: int
    handle_s: float  # time on scene once a unit is there
    handled: bool = False  # the field reported it handled


@dataclass(frozen=True, slots=True)
class OnSpot:
    """An event its reporter settles on the spot (就地解决): who, and since when (sim s)."""

    event_id: str
    unit_id: str
    kind: str  # "worker" | "resource"
    t: float


class IncidentDesk:
    """Creates events on a Poisson clock and reports each once."""

    _now = 0.0  # sim time of the spawn being run, for position look-ups

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
        self.open = 0  # of `recent`, the events the field has not handled
        self.recent: OrderedDict[str, Incident] = OrderedDict()
        self.on_spot: deque[OnSpot] = deque(maxlen=ON_SPOT_MAX)

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
        self._remember(inc)
        self._publish(inc, t)
        if isinstance(origin, Worker | Resource) and rng.random() < spec.get("self_handle", 0):
            # 小事不出网格: the reporter settles it on the spot (recorded through the loop).
            kind = "worker" if isinstance(origin, Worker) else "resource"
            self.on_spot.append(OnSpot(inc.id, origin.id, kind, t))

    def _remember(self, inc: Incident) -> None:
        self.recent[inc.id] = inc
        self.open += 1
        if len(self.recent) > RECENT_MAX:
            _, old = self.recent.popitem(last=False)
            if not old.handled:
                self.open -= 1

    def find(self, event_id: str) -> Incident | None:
        """One of our recent events, or None (older, or not ours)."""
        return self.recent.get(event_id)

    def handle_s(self, etype: str, severity: int, rng: random.Random) -> float:
        """Time on scene for an event we did not create (from its type, as ours)."""
        spec = self.major.get(etype) if severity == 1 else None
        lo, hi = (spec or self.normal.get(etype) or {}).get("handle_min", (8, 20))
        return rng.uniform(lo, hi) * 60

    def mark_handled(self, event_id: str) -> None:
        """The field finished the event's task: it is no longer open as far as we know."""
        inc = self.recent.get(event_id)
        if inc is not None and not inc.handled:
            inc.handled = True
            self.open -= 1

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
        return Incident(eid, msg, source not in MS_SOURCES, point, grid, severity,
                        rng.uniform(lo, hi) * 60)

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

    def _publish(self, inc: Incident, t: float) -> None:
        msg = dict(inc.msg)
        msg["status"] = "reported"  # never a later status: those are the command center's
        msg["ts"] = self.hooks.stamp(t, inc.iso)
        self.hooks.emit("event", msg)
