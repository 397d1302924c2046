"""Datum conversions and distances (dashboard.geo)."""

from __future__ import annotations

import random

import pytest

from dashboard import geo

# Published WGS-84 / GCJ-02 pairs (googollee/eviltransform's test vectors): (lon, lat).
WGS_GCJ = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
]
# Published GCJ-02 <-> BD-09 pairs (wandergis/coordTransform's README).
GCJ_TO_BD = ((116.404, 39.915), (116.41036949371029, 39.92133699351021))
BD_TO_GCJ = ((116.404, 39.915), (116.39762729119315, 39.90865673957631))


def _close(a: tuple[float, float], b: tuple[float, float], tol_m: float) -> bool:
    return geo.haversine_m(a[0], a[1], b[0], b[1]) < tol_m


def test_geo001_gcj02_reference_points() -> None:
    for wgs, gcj in WGS_GCJ:
        assert geo.wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-9)
        assert _close(geo.gcj02_to_wgs84(*gcj), wgs, 0.05)
        assert _close(geo.to_wgs84(*gcj, "gcj02"), wgs, 0.05)


def test_geo002_bd09_reference_points() -> None:
    assert geo.gcj02_to_bd09(*GCJ_TO_BD[0]) == pytest.approx(GCJ_TO_BD[1], abs=1e-9)
    assert geo.bd09_to_gcj02(*BD_TO_GCJ[0]) == pytest.approx(BD_TO_GCJ[1], abs=1e-9)
    # Chain through GCJ-02: the Beijing pair from WGS-84 to BD-09 and back.
    wgs, gcj = WGS_GCJ[2]
    bd = geo.wgs84_to_bd09(*wgs)
    assert bd == pytest.approx(geo.gcj02_to_bd09(*gcj), abs=1e-9)
    assert _close(geo.bd09_to_wgs84(*bd), wgs, 0.5)
    assert _close(geo.to_wgs84(*bd, "BD09"), wgs, 0.5)


def test_geo003_round_trips_under_half_a_metre() -> None:
    rng = random.Random(3)
    worst_gcj = worst_bd = 0.0
    for _ in range(2000):
        p = (rng.uniform(74.0, 134.0), rng.uniform(18.0, 53.0))
        g = geo.wgs84_to_gcj02(*p)
        b = geo.wgs84_to_bd09(*p)
        assert geo.haversine_m(*p, *g) > 1.0  # the offset really was applied
        worst_gcj = max(worst_gcj, geo.haversine_m(*p, *geo.gcj02_to_wgs84(*g)))
        worst_bd = max(worst_bd, geo.haversine_m(*p, *geo.bd09_to_wgs84(*b)))
    assert worst_gcj < 0.01
    assert worst_bd < 0.5


def test_geo004_out_of_china_passthrough() -> None:
    for p in [(-0.1276, 51.5072), (139.6917, 35.6895), (2.35, 48.85), (-74.0, 40.7)]:
        assert geo.out_of_china(*p)
        assert geo.wgs84_to_gcj02(*p) == p
        assert geo.gcj02_to_wgs84(*p) == p
        assert geo.to_wgs84(*p, "gcj02") == p
    assert not geo.out_of_china(119.96, 36.78)  # Pingdu


def test_geo005_to_wgs84_dispatch() -> None:
    p = (119.96, 36.78)
    assert geo.to_wgs84(*p, "wgs84") == p
    assert geo.from_wgs84(*p, "wgs84") == p
    for crs in ("gcj02", "bd09"):
        assert _close(geo.to_wgs84(*geo.from_wgs84(*p, crs), crs), p, 0.5)
    with pytest.raises(ValueError):
        geo.to_wgs84(*p, "epsg3857")


def test_geo006_haversine() -> None:
    assert geo.haversine_m(120.0, 36.0, 120.0, 36.0) == 0.0
    # One degree of latitude on the mean sphere is ~111.195 km.
    assert geo.haversine_m(120.0, 36.0, 120.0, 37.0) == pytest.approx(111_195, rel=1e-4)
    # Beijing -> Shanghai (~1,067 km great circle).
    d = geo.haversine_m(116.4074, 39.9042, 121.4737, 31.2304)
    assert d == pytest.approx(1_067_000, rel=0.01)
    assert geo.haversine_m(1.0, 2.0, 3.0, 4.0) == geo.haversine_m(3.0, 4.0, 1.0, 2.0)
