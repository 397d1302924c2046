"""The demo city's administrative hierarchy: city -> town/street -> community -> grid -> micro-grid.

Reads the files `scripts/derive_city.py` ships in data/<city>/. Codes nest by prefix
(town 9 digits, community 12, grid 15, micro-grid 17), so a unit's ancestors are prefixes
of its code and "inside scope S" is `code.startswith(S)`.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely

from dashboard.config import ROOT
from dashboard.i18n import normalise_lang

LEVELS = ("town", "community", "grid", "microgrid")
_CODE_LEN = {6: "city", 9: "town", 12: "community", 15: "grid", 17: "microgrid"}
_FILES = {
    "boundary": "boundary.geojson",
    "town": "towns.geojson",
    "community": "communities.geojson",
    "grid": "grids.geojson",
    "microgrid": "microgrids.geojson",
}


@dataclass(frozen=True, slots=True)
class Unit:
    """One administrative unit; `centroid` is (lon, lat) WGS-84 and always inside the unit."""

    code: str
    name: str
    level: str
    parent: str | None
    centroid: tuple[float, float]
    area_km2: float
    name_en: str = ""

    def label(self, lang: str) -> str:
        """The unit's name in `lang`: its English one on an English page (the Chinese one when
        the city's data has none), else the Chinese one."""
        return (self.name_en or self.name) if normalise_lang(lang) == "en" else self.name


class City:
    """A city's hierarchy and geometry; geometry and the locate index load on first use."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        doc = json.loads((data_dir / "city.json").read_text(encoding="utf-8"))
        info = doc["city"]
        self.code: str = info["code"]
        self.name: str = info["name"]
        self.name_en: str = info.get("name_en", "")
        self.bbox: tuple[float, float, float, float] = tuple(info["bbox"])  # type: ignore[assignment]
        self.centroid: tuple[float, float] = tuple(info["centroid"])  # type: ignore[assignment]
        self.area_km2: float = info.get("area_km2", 0.0)
        self.counts: dict[str, int] = info.get("counts", {})
        self.towns = self._units(doc["towns"], "town")
        self.communities = self._units(doc["communities"], "community")
        self.grids = self._units(doc["grids"], "grid")
        self._by_code = {u.code: u for u in (*self.towns, *self.communities, *self.grids)}
        self._children: dict[str, list[Unit]] = {}
        for u in self._by_code.values():
            self._children.setdefault(u.parent or self.code, []).append(u)
        self._geoms: dict[str, dict[str, shapely.Geometry]] = {}
        self._index: _GridIndex | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _units(rows: list[dict], level: str) -> list[Unit]:
        return [
            Unit(r["code"], r["name"], level, r.get("parent"), tuple(r["centroid"]), r["area_km2"],
                 r.get("name_en", ""))
            for r in rows
        ]

    # --- hierarchy ----------------------------------------------------------------------

    def label(self, lang: str) -> str:
        """The city's own name in `lang` (as `Unit.label`)."""
        return (self.name_en or self.name) if normalise_lang(lang) == "en" else self.name

    def unit(self, code: str) -> Unit | None:
        """The town, community or grid with this code (micro-grids are not units here)."""
        return self._by_code.get(code)

    def level_of(self, code: str) -> str | None:
        """'city', 'town', 'community', 'grid' or 'microgrid', judged by the code's length."""
        return _CODE_LEN.get(len(code)) if code.startswith(self.code) else None

    def parents(self, code: str) -> list[Unit]:
        """Ancestors from the town down (a grid gives [town, community]); [] when unknown."""
        out = []
        for n in (9, 12, 15):
            if len(code) > n and (u := self._by_code.get(code[:n])) is not None:
                out.append(u)
        return out

    def children(self, code: str) -> list[Unit]:
        """Direct sub-units of the city (by its code), a town or a community."""
        return list(self._children.get(code, []))

    # --- geometry -----------------------------------------------------------------------

    def geojson_path(self, level: str) -> Path:
        """The shipped GeoJSON of one level: town, community, grid, microgrid or boundary."""
        if level not in _FILES:
            raise ValueError(f"unknown level {level!r}")
        return self.data_dir / _FILES[level]

    def _level_geoms(self, level: str) -> dict[str, shapely.Geometry]:
        geoms = self._geoms.get(level)
        if geoms is None:
            fc = json.loads(self.geojson_path(level).read_text(encoding="utf-8"))
            geoms = {
                f["properties"]["code"]: shapely.from_geojson(json.dumps(f["geometry"]))
                for f in fc["features"]
            }
            shapely.prepare(list(geoms.values()))
            self._geoms[level] = geoms
        return geoms

    def polygon(self, code: str) -> shapely.Geometry | None:
        """Shapely geometry of any unit (city, town, community, grid, micro-grid)."""
        level = self.level_of(code)
        if level is None:
            return None
        return self._level_geoms("boundary" if level == "city" else level).get(code)

    def grid_polygon(self, code: str) -> shapely.Geometry | None:
        """Shapely geometry of a grid (any level's code works, see `polygon`)."""
        return self.polygon(code)

    def random_point_in(self, code: str, rng: random.Random) -> tuple[float, float]:
        """A uniformly random (lon, lat) inside the unit; its centroid in the unlikely case
        rejection sampling keeps missing."""
        geom = self.polygon(code)
        if geom is None:
            raise KeyError(code)
        x0, y0, x1, y1 = geom.bounds
        for _ in range(200):
            lon, lat = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if shapely.contains_xy(geom, lon, lat):
                return lon, lat
        u = self._by_code.get(code)
        p = u.centroid if u else geom.point_on_surface().coords[0]
        return float(p[0]), float(p[1])

    # --- point -> grid ------------------------------------------------------------------

    def _grid_index(self) -> _GridIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    geoms = self._level_geoms("grid")
                    codes = [g.code for g in self.grids]
                    self._index = _GridIndex(codes, [geoms[c] for c in codes])
        return self._index

    def locate(self, lon: float, lat: float) -> str | None:
        """Code of the grid containing (lon, lat) WGS-84, or None outside the city."""
        return self._grid_index().locate(lon, lat)

    def locate_many(self, lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
        """`locate` for many points at once (numpy for the easy cells)."""
        return self._grid_index().locate_many(lons, lats)


class _GridIndex:
    """Raster over the grid coverage: cells wholly inside one grid answer from a table;
    cells that some grid edge passes through keep the few grids to test exactly."""

    CELL_M = 50.0  # ~10% of lookups in Pingdu hit an edge cell at this size; table ~7 MB

    def __init__(self, codes: list[str], polys: list[shapely.Geometry]) -> None:
        self.codes = codes
        self.polys = polys
        x0, y0, x1, y1 = shapely.total_bounds(polys)
        self.x0, self.y0 = float(x0), float(y0)
        lat = (y0 + y1) / 2
        # Multiply (not divide) everywhere, so build and lookup round the same way.
        self.sx = 111_320.0 * math.cos(math.radians(lat)) / self.CELL_M
        self.sy = 110_570.0 / self.CELL_M
        self.nx = int((x1 - x0) * self.sx) + 1
        self.ny = int((y1 - y0) * self.sy) + 1
        table = np.full(self.nx * self.ny, -1, dtype=np.int32)
        edge_cell, edge_poly = self._edge_cells()
        self._label_pure(table, edge_cell)
        # Boundary cell number g is stored as -2 - g; its grids are flat[starts[g]:starts[g + 1]].
        starts = np.flatnonzero(np.r_[True, edge_cell[1:] != edge_cell[:-1]])
        table[edge_cell[starts]] = -2 - np.arange(len(starts), dtype=np.int32)
        self._flat = memoryview(edge_poly)
        self._starts = memoryview(np.r_[starts, len(edge_poly)].astype(np.int64))
        self.table = table
        self._mv = memoryview(table)  # indexing a memoryview yields plain ints, fast
        self.edge_fraction = len(starts) / max(1, int((table != -1).sum()))

    def _cell_xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (x - self.x0) * self.sx, (y - self.y0) * self.sy

    def _edge_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (cell, grid) pair where the grid's outline touches the cell (supercover)."""
        rings = shapely.get_rings(self.polys, return_index=True)
        coords, ring_idx = shapely.get_coordinates(rings[0], return_index=True)
        poly_of_coord = rings[1][ring_idx]
        same = ring_idx[1:] == ring_idx[:-1]
        ax, ay = self._cell_xy(coords[:-1, 0][same], coords[:-1, 1][same])
        bx, by = self._cell_xy(coords[1:, 0][same], coords[1:, 1][same])
        pid = poly_of_coord[:-1][same]
        eps = 1e-6  # cell units (~5 cm): mark both sides of a crossing that grazes a corner
        xs, ys, ps = [], [], []
        for dx in (-eps, eps):
            for dy in (-eps, eps):
                xs += [np.floor(ax + dx), np.floor(bx + dx)]
                ys += [np.floor(ay + dy), np.floor(by + dy)]
                ps += [pid, pid]
        for u0, u1, v0, v1, swap in ((ax, bx, ay, by, False), (ay, by, ax, bx, True)):
            lo, hi = np.minimum(u0, u1), np.maximum(u0, u1)
            first = np.floor(lo) + 1
            n = np.maximum(np.floor(hi) - first + 1, 0).astype(np.int64)
            seg = np.repeat(np.arange(len(n)), n)
            k = first[seg] + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
            t = (k - u0[seg]) / (u1[seg] - u0[seg])
            v = v0[seg] + t * (v1[seg] - v0[seg])
            for side in (k - 1, k):
                for dv in (-eps, eps):
                    cu, cv = side, np.floor(v + dv)
                    xs.append(cv if swap else cu)
                    ys.append(cu if swap else cv)
                    ps.append(pid[seg])
        cx, cy, p = np.concatenate(xs), np.concatenate(ys), np.concatenate(ps)
        ok = (cx >= 0) & (cx < self.nx) & (cy >= 0) & (cy < self.ny)
        cell = cy[ok].astype(np.int64) * self.nx + cx[ok].astype(np.int64)
        # One sortable int64 per pair: unique() then also groups the pairs by cell.
        key = np.unique(cell * len(self.polys) + p[ok].astype(np.int64))
        return key // len(self.polys), (key % len(self.polys)).astype(np.int32)

    def _label_pure(self, table: np.ndarray, edge_cell: np.ndarray) -> None:
        """Cells no outline touches are wholly inside one grid (or outside): test the centre."""
        is_edge = np.zeros(len(table), dtype=bool)
        is_edge[edge_cell] = True
        bounds = shapely.bounds(self.polys)
        for i, (poly, b) in enumerate(zip(self.polys, bounds, strict=True)):
            (i0, i1), (j0, j1) = self._cell_xy(b[[0, 2]], b[[1, 3]])
            ii = np.arange(max(int(i0), 0), min(int(i1) + 1, self.nx))
            jj = np.arange(max(int(j0), 0), min(int(j1) + 1, self.ny))
            cells = (jj[:, None] * self.nx + ii[None, :]).ravel()
            cells = cells[~is_edge[cells]]
            cx = self.x0 + ((cells % self.nx) + 0.5) / self.sx
            cy = self.y0 + ((cells // self.nx) + 0.5) / self.sy
            table[cells[shapely.contains_xy(poly, cx, cy)]] = i

    def locate(self, lon: float, lat: float) -> str | None:
        fx = (lon - self.x0) * self.sx
        fy = (lat - self.y0) * self.sy
        # Written so that NaN and infinities fail the test too.
        if not (0.0 <= fx < self.nx and 0.0 <= fy < self.ny):
            return None
        v = self._mv[int(fy) * self.nx + int(fx)]
        if v >= 0:
            return self.codes[v]
        if v == -1:
            return None
        g = -2 - v
        for k in range(self._starts[g], self._starts[g + 1]):
            p = self._flat[k]
            if shapely.intersects_xy(self.polys[p], lon, lat):
                return self.codes[p]
        return None

    def locate_many(self, lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
        x, y = np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)
        fx, fy = self._cell_xy(x, y)
        ok = (fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny)
        v = np.full(len(x), -1, dtype=np.int64)
        v[ok] = self.table[fy[ok].astype(np.int64) * self.nx + fx[ok].astype(np.int64)]
        out: list[str | None] = [self.codes[i] if i >= 0 else None for i in v.tolist()]
        for j in np.flatnonzero(v < -1).tolist():
            out[j] = self.locate(float(x[j]), float(y[j]))
        return out


@lru_cache(maxsize=8)
def _load(name: str, data_dir: Path | None) -> City:
    return City(data_dir or ROOT / "data" / name)


def load_city(name: str = "pingdu", data_dir: Path | None = None) -> City:
    """The named city, read from data/<name>/ (or `data_dir`); one instance per name."""
    return _load(name, data_dir)
