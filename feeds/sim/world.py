"""The simulated city's moving parts: grid workers, emergency resources and cameras.

Positions move in simulated seconds along straight legs between waypoints (no road
network: the wall shows the boundary hierarchy, not streets). All randomness comes
from the `random.Random` passed in, in a fixed order, so a seed rebuilds the same world.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Protocol

from feeds.sim.text import Text, is_urban, short_town

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0
WALK_MPS = 1.2
DRIVE_MPS = 15.0  # straight-line speed to a scene: ~50 km/h along real roads
PATROL_MPS = 8.0
FLY_MPS = 15.0


class UnitLike(Protocol):
    code: str
    name: str
    parent: str | None
    centroid: tuple[float, float]
    area_km2: float


class CityLike(Protocol):
    """The part of `dashboard.city.City` the simulator uses."""

    towns: list[Any]
    communities: list[Any]
    grids: list[Any]

    def parents(self, grid_code: str) -> list[Any]: ...
    def random_point_in(self, code: str, rng: random.Random) -> tuple[float, float]: ...
    def locate(self, lon: float, lat: float) -> str | None: ...


def offset(lon: float, lat: float, dist_m: float, bearing_deg: float) -> tuple[float, float]:
    """The point `dist_m` metres from (lon, lat) towards `bearing_deg` (flat-earth, < 50 km)."""
    b = math.radians(bearing_deg)
    dlat = dist_m * math.cos(b) / M_PER_DEG_LAT
    dlon = dist_m * math.sin(b) / (M_PER_DEG_LON_EQ * math.cos(math.radians(lat)))
    return lon + dlon, lat + dlat


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    kx = M_PER_DEG_LON_EQ * math.cos(math.radians((a[1] + b[1]) / 2))
    return math.hypot((b[0] - a[0]) * kx, (b[1] - a[1]) * M_PER_DEG_LAT)


def bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    kx = M_PER_DEG_LON_EQ * math.cos(math.radians((a[1] + b[1]) / 2))
    return math.degrees(math.atan2((b[0] - a[0]) * kx, (b[1] - a[1]) * M_PER_DEG_LAT)) % 360


class Mover:
    """One leg at a time: from `p0` at `t0` to `p1` at `t1`, then still until `until`.

    A leg is straight, or a route through corners (`follow`): the knots are times and points.
    """

    __slots__ = ("heading", "knots", "p0", "p1", "speed", "t0", "t1", "until")

    def __init__(self, at: tuple[float, float], t: float = 0.0) -> None:
        self.p0 = self.p1 = at
        self.t0 = self.t1 = self.until = t
        self.speed = 0.0
        self.heading = 0.0
        self.knots: tuple[list[float], list[tuple[float, float]]] | None = None

    def go(self, t: float, to: tuple[float, float], speed: float, dwell: float) -> float:
        """Start a leg from wherever we are at `t`; returns the arrival time."""
        here = self.at(t)
        dist = distance_m(here, to)
        self.p0, self.p1, self.t0, self.speed = here, to, t, speed
        self.t1 = t + dist / speed
        self.until = self.t1 + dwell
        self.knots = None
        if dist > 0.5:
            self.heading = bearing(here, to)
        return self.t1

    def follow(self, t: float, corners: list[tuple[float, float]], duration: float,
               dwell: float, start: float | None = None) -> float:
        """Travel from where we are through `corners` (the last is the goal) in `duration`
        seconds, leaving at `start` (default `t`); returns the arrival time."""
        start = t if start is None else start
        here = self.at(t)
        points = [here, *corners]
        lengths = [distance_m(a, b) for a, b in pairwise(points)]
        total = sum(lengths)
        self.p0, self.p1, self.t0 = here, points[-1], start
        if total < 0.5 or duration <= 0:
            self.t1, self.speed, self.knots = start, 0.0, None
            self.until = start + dwell
            return start
        times, run = [start], 0.0
        for length in lengths:
            run += length
            times.append(start + duration * run / total)
        self.knots = (times, points)
        self.t1, self.speed = start + duration, total / duration
        self.until = self.t1 + dwell
        self.heading = bearing(*self._leg(start))
        return self.t1

    def stay(self, t: float, dwell: float) -> None:
        here = self.at(t)
        self.p0 = self.p1 = here
        self.t0 = self.t1 = t
        self.until = t + dwell
        self.knots = None

    def _leg(self, t: float) -> tuple[tuple[float, float], tuple[float, float]]:
        """The two ends of the route's leg under way at `t` (skipping zero-length ones)."""
        assert self.knots is not None
        times, points = self.knots
        i = max(0, min(len(times) - 2, bisect_right(times, t) - 1))
        while i < len(points) - 2 and distance_m(points[i], points[i + 1]) < 0.5:
            i += 1
        return points[i], points[i + 1]

    def at(self, t: float) -> tuple[float, float]:
        if t >= self.t1 or self.t1 <= self.t0:
            return self.p1
        if t <= self.t0:  # not left yet
            return self.p0
        if self.knots is not None:
            times, points = self.knots
            i = max(0, min(len(times) - 2, bisect_right(times, t) - 1))
            span = times[i + 1] - times[i]
            f = (t - times[i]) / span if span > 0 else 1.0
            a, b = points[i], points[i + 1]
            return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
        f = (t - self.t0) / (self.t1 - self.t0)
        return (self.p0[0] + (self.p1[0] - self.p0[0]) * f,
                self.p0[1] + (self.p1[1] - self.p0[1]) * f)

    def heading_at(self, t: float) -> float:
        """Degrees clockwise from north of the leg under way at `t` (else the last one)."""
        if self.knots is not None and self.moving(t):
            a, b = self._leg(t)
            if distance_m(a, b) > 0.5:
                self.heading = bearing(a, b)
        return self.heading

    def moving(self, t: float) -> bool:
        return self.t0 <= t < self.t1


def street_corners(rng: random.Random, a: tuple[float, float],
                   b: tuple[float, float]) -> list[tuple[float, float]]:
    """A Manhattan-like way from `a` to `b`: east-west and north-south legs, one or two
    turns (no road network, but a path that looks driven rather than flown)."""
    if rng.random() < 0.5:  # one turn: along one axis, then the other
        corner = (b[0], a[1]) if rng.random() < 0.5 else (a[0], b[1])
        return [corner, b]
    f = rng.uniform(0.3, 0.7)  # a jog: part of the way east-west, all north-south, the rest
    x = a[0] + (b[0] - a[0]) * f
    return [(x, a[1]), (x, b[1]), b]


@dataclass(slots=True, eq=False)
class Worker:
    id: str
    name: str
    phone: str
    grid: str
    town: Any
    community: Any
    mover: Mover
    status: str = "on_duty"
    shift_until: float = 0.0
    battery: float = 100.0
    battery_t: float = 0.0
    busy_with: str | None = None  # event id while engaged in a task
    task: str | None = None  # that task's id
    sos_until: float = 0.0
    token: int = 0  # the one live report entry in the scheduler


@dataclass(slots=True, eq=False)
class Resource:
    id: str
    kind: str
    name: str
    unit: str
    base: tuple[float, float]
    area: str  # town code it patrols
    mobile: bool
    patrols: bool
    mover: Mover
    status: str = "available"
    plate: str | None = None
    capacity: int | None = None
    mission: str | None = None  # event id while engaged in a task
    task: str | None = None  # that task's id
    token: int = 0


@dataclass(slots=True, eq=False)
class Camera:
    id: str
    name: str
    lon: float
    lat: float
    grid: str
    stream_type: str
    ptz: bool
    range_m: int
    heading: int | None
    fov: int | None
    ai: bool
    lookout: bool
    online: bool = True
    token: int = 0


@dataclass(slots=True)
class World:
    workers: list[Worker]
    resources: list[Resource]
    cameras: list[Camera]
    grid_codes: list[str]
    grid_cum: list[float]  # cumulative weights: urban grids are busier
    urban_grids: set[str]
    town_of: dict[str, Any]
    community_of: dict[str, Any]
    workers_by_grid: dict[str, list[Worker]] = field(default_factory=dict)
    by_kind: dict[str, list[Resource]] = field(default_factory=dict)

    def pick_grid(self, rng: random.Random) -> str:
        return rng.choices(self.grid_codes, cum_weights=self.grid_cum)[0]


def _grid_weights(city: CityLike) -> tuple[list[str], list[float], set[str], dict, dict]:
    codes, cum, urban, town_of, comm_of = [], [], set(), {}, {}
    total = 0.0
    for g in city.grids:
        town, comm = city.parents(g.code)
        town_of[g.code], comm_of[g.code] = town, comm
        if is_urban(town.name):
            urban.add(g.code)
        # Urban grids are small and crowded: about four times the reports of a village grid.
        total += 4.0 if g.code in urban else 1.0
        codes.append(g.code)
        cum.append(total)
    return codes, cum, urban, town_of, comm_of


def build_world(city: CityLike, text: Text, rng: random.Random, *, workers: int = 2140,
                cameras: int = 3000) -> World:
    """Place every worker, resource and camera; deterministic for a given rng state."""
    codes, cum, urban, town_of, comm_of = _grid_weights(city)
    world = World([], [], [], codes, cum, urban, town_of, comm_of)
    _place_workers(world, city, text, rng, workers)
    _place_resources(world, city, text, rng)
    _place_cameras(world, city, text, rng, cameras)
    return world


def _place_workers(world: World, city: CityLike, text: Text, rng: random.Random, n: int) -> None:
    # One per grid, and the rest as second workers in the busiest (urban) grids.
    grids = list(world.grid_codes)
    extra_pool = [g for g in grids if g in world.urban_grids] or grids
    extra = rng.sample(extra_pool, min(max(0, n - len(grids)), len(extra_pool)))
    order = {g: i for i, g in enumerate(grids)}
    assigned = sorted(grids[:n] + extra, key=order.__getitem__)
    for i, grid in enumerate(assigned, 1):
        at = city.random_point_in(grid, rng)
        w = Worker(f"W{i:05d}", text.person(rng), text.phone(rng), grid,
                   world.town_of[grid], world.community_of[grid], Mover(at))
        w.battery = rng.uniform(45, 100)
        if rng.random() < 0.08:
            w.status = "off_duty"
            w.shift_until = rng.expovariate(1 / 1800)
        else:
            w.shift_until = rng.expovariate(1 / 21600)
        world.workers.append(w)
        world.workers_by_grid.setdefault(grid, []).append(w)


# kind → (id prefix, mobile, share of units on patrol)
_KINDS: dict[str, tuple[str, bool, float]] = {
    "fire_engine": ("fire", True, 0.0), "ambulance": ("amb", True, 0.0),
    "police_car": ("police", True, 0.7), "patrol_car": ("patrol", True, 0.9),
    "law_enforcement": ("cg", True, 0.6), "rescue_team": ("rescue", True, 0.0),
    "volunteer": ("vol", True, 0.2), "drone": ("uav", True, 0.0),
    "supply_depot": ("depot", False, 0.0), "shelter": ("shelter", False, 0.0),
    "other": ("other", True, 0.0),
}
_HOSPITALS = ("平度市人民医院", "平度市中医医院", "平度市第二人民医院", "平度市妇幼保健院",
              "平度市第三人民医院")
_FIRE_TRUCKS = ("水罐消防车", "泡沫消防车", "抢险救援车", "登高平台消防车")
_UTILITIES = (("平度市供电公司", "电力抢修车"), ("平度市燃气公司", "燃气抢修车"),
              ("平度市自来水公司", "供水抢修车"))


def _place_resources(world: World, city: CityLike, text: Text, rng: random.Random) -> None:
    counters: dict[str, int] = {}

    def add(kind: str, name: str, unit: str, town: Any, *, plate: str = "",
            capacity: int | None = None, base: tuple[float, float] | None = None) -> Resource:
        prefix, mobile, patrol_share = _KINDS[kind]
        counters[kind] = counters.get(kind, 0) + 1
        at = base or city.random_point_in(town.code, rng)
        res = Resource(f"{prefix}-{counters[kind]:03d}", kind, name, unit, at, town.code, mobile,
                       rng.random() < patrol_share, Mover(at), plate=plate or None,
                       capacity=capacity)
        if mobile and rng.random() < 0.03:
            res.status = "unavailable"  # in the workshop (维修保养)
        world.resources.append(res)
        world.by_kind.setdefault(kind, []).append(res)
        return res

    streets = [t for t in city.towns if is_urban(t.name)]
    for i, town in enumerate(city.towns):
        s = short_town(town.name)
        urban = is_urban(town.name)
        station = f"{s}中队" if urban else f"{s}专职消防队"
        base = city.random_point_in(town.code, rng)
        for k in range(4 if urban else 2):
            truck = _FIRE_TRUCKS[k % (4 if urban else 3)]
            add("fire_engine", f"{station}{truck}", f"平度市消防救援大队 {station}", town,
                plate=text.plate(rng, "应急"), base=base)
        hospital = _HOSPITALS[i % len(_HOSPITALS)] if urban else f"平度市{s}镇卫生院"
        base = city.random_point_in(town.code, rng)
        for k in range(4 if urban else 2):
            add("ambulance", f"{hospital}急救车{k + 1:02d}",
                f"平度市急救中心 {hospital.removeprefix('平度市')}急救站",
                town, plate=text.plate(rng), base=base)
        base = city.random_point_in(town.code, rng)
        for k in range(4 if urban else 3):
            add("police_car", f"{s}派出所警车{k + 1:02d}", f"平度市公安局{s}派出所", town,
                plate=text.plate(rng, "警"), base=base)
        for k in range(3 if urban else 1):
            unit = "平度市公安局巡特警大队" if urban else f"{s}综治中心"
            add("patrol_car", f"{s}巡逻车{k + 1:02d}", unit, town, plate=text.plate(rng))
        base = city.random_point_in(town.code, rng)
        for k in range(4 if urban else 2):
            add("law_enforcement", f"{s}执法中队执法车{k + 1:02d}",
                f"平度市综合行政执法局{s}中队", town, plate=text.plate(rng), base=base)
        add("rescue_team", f"{s}应急救援分队", f"{town.name}应急办", town,
            capacity=rng.randint(8, 20))
        for _ in range(3 if urban else 2):
            comm = rng.choice([c for c in city.communities if c.parent == town.code]
                              or city.communities)
            add("volunteer", f"{comm.name}志愿服务队", f"{town.name}新时代文明实践所", town,
                capacity=rng.randint(10, 60))
        add("supply_depot", f"{town.name}应急物资储备点", f"{town.name}应急办", town,
            capacity=rng.randint(500, 3000))
        for place in rng.sample(text.places["shelter_places"], 2):
            add("shelter", f"{s}{place}应急避难场所", f"{town.name}应急办", town,
                capacity=rng.randint(5, 50) * 100)
    centre = streets[0] if streets else city.towns[0]
    for name, cap in (("平度蓝天救援队", 40), ("平度市应急救援大队", 60), ("平度市水上救援队", 20)):
        add("rescue_team", name, "平度市应急管理局", centre, capacity=cap)
    add("supply_depot", "平度市应急物资储备库", "平度市应急管理局", centre, capacity=20000)
    for k in range(12):
        owner = ("平度市应急管理局", "平度市公安局", "平度市消防救援大队")[k % 3]
        town = rng.choice(streets or city.towns)
        add("drone", f"{owner}无人机{k + 1:02d}", owner, town)
    for k in range(9):
        owner, vehicle = _UTILITIES[k % 3]
        add("other", f"{vehicle}{k // 3 + 1:02d}", owner, rng.choice(streets or city.towns),
            plate=text.plate(rng))


# Stream types of the demo cameras (cumulative shares): mostly MJPEG like a 雪亮 platform's
# transcoded previews, some snapshots, HLS and files, and ~5 % with no stream at all.
_STREAM_MIX = (("mjpeg", 0.70), ("image", 0.80), ("hls", 0.88), ("mp4", 0.92), ("webm", 0.95),
               ("none", 1.01))


def _place_cameras(world: World, city: CityLike, text: Text, rng: random.Random, n: int) -> None:
    urban = [g for g in world.grid_codes if g in world.urban_grids]
    rural = [g for g in world.grid_codes if g not in world.urban_grids] or world.grid_codes
    # 雪亮工程 puts most cameras where people are: 60 % in the urban streets.
    n_urban = int(n * 0.6) if urban else 0
    grids = [rng.choice(urban) for _ in range(n_urban)]
    grids += [rng.choice(rural) for _ in range(n - n_urban)]
    order = {g: i for i, g in enumerate(world.grid_codes)}
    grids.sort(key=order.__getitem__)  # ids then follow the hierarchy, like a real platform
    serials: dict[str, int] = {}
    town_index = {t.code: i for i, t in enumerate(city.towns, 1)}
    for grid in grids:
        town = world.town_of[grid]
        lon, lat = city.random_point_in(grid, rng)
        road, road2, village = text.grid_places(grid, grid in world.urban_grids)
        roll = rng.random()
        lookout = grid not in world.urban_grids and roll < 0.015
        if lookout:
            kind, spot, ptz, rng_m = "高空瞭望", f"{village}制高点", True, rng.randint(15, 30) * 100
        elif roll < 0.32:
            kind, spot, ptz, rng_m = "球机", f"{road}与{road2}路口", True, rng.randint(15, 30) * 10
        elif roll < 0.36:
            kind, spot, ptz, rng_m = "卡口", f"{road}{rng.randint(1, 399)}号", False, 80
        elif roll < 0.46:
            comp = rng.choice(text.places["compounds"])
            kind, spot, ptz, rng_m = "半球", f"{comp}{rng.choice(text.places['compound_gates'])}", \
                False, 40
        elif grid in world.urban_grids:
            kind, spot, ptz, rng_m = "枪机", f"{road}{rng.randint(1, 399)}号", False, \
                rng.randint(6, 15) * 10
        else:
            kind, spot, ptz, rng_m = "枪机", f"{village}村口", False, rng.randint(6, 15) * 10
        # GB/T 28181: 370283 (Pingdu) + 2-digit base unit + 2-digit industry + 131 (camera)
        # + 1-digit network + 6-digit serial.
        industry = "04" if kind == "卡口" else ("10" if rng.random() < 0.2 else "00")
        centre = f"370283{town_index[town.code]:02d}"
        serials[centre] = serials.get(centre, 0) + 1
        cam_id = f"{centre}{industry}1310{serials[centre]:06d}"
        s = rng.random()  # one draw, as before: the world after it does not shift
        stream = next(kind for kind, upto in _STREAM_MIX if s < upto)
        world.cameras.append(Camera(
            cam_id, f"{town.name}-{spot}-{kind}", lon, lat, grid, stream, ptz, rng_m,
            None if ptz else rng.randrange(360), None if ptz else rng.choice((60, 75, 90, 110)),
            ai=lookout or rng.random() < 0.4, lookout=lookout,
        ))
