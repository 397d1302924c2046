"""Chinese map datums (WGS-84, GCJ-02, BD-09) and great-circle distance.

GCJ-02 is the obfuscated datum every licensed Chinese map uses; BD-09 is Baidu's extra
offset on top of it. Only the forward WGS->GCJ formula is published, so GCJ->WGS is
solved by iterating the forward one (sub-millimetre after a few rounds).
"""

from __future__ import annotations

import math

# Krasovsky 1940, the ellipsoid the GCJ-02 formula was written against.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
_EARTH_R = 6371008.8  # mean radius (IUGG), metres

CRS = ("wgs84", "gcj02", "bd09")


def out_of_china(lon: float, lat: float) -> bool:
    """The usual rough box outside which GCJ-02 applies no offset."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _delta(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 offset (dlon, dlat) in degrees for a WGS-84 point."""
    x, y = lon - 105.0, lat - 35.0
    xp, yp = x * math.pi, y * math.pi
    sx = math.sqrt(abs(x))
    common = (20.0 * math.sin(6.0 * xp) + 20.0 * math.sin(2.0 * xp)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * math.sin(yp) + 40.0 * math.sin(yp / 3.0)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(yp / 12.0) + 320.0 * math.sin(yp / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * math.sin(xp) + 40.0 * math.sin(xp / 3.0)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(xp / 12.0) + 300.0 * math.sin(xp / 30.0)) * 2.0 / 3.0
    rad = lat / 180.0 * math.pi
    magic = 1.0 - _EE * math.sin(rad) ** 2
    sq = math.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sq) * math.pi)
    dlon = dlon * 180.0 / (_A / sq * math.cos(rad) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02 (identity outside China)."""
    if out_of_china(lon, lat):
        return lon, lat
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> WGS-84 by fixed-point iteration of the forward transform (error < 1 mm)."""
    if out_of_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    # The offset field is smooth (gradient ~1e-5), so each round gains ~5 digits;
    # the cap only guards against pathological input.
    for _ in range(10):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = glon - lon, glat - lat
        wlon -= elon
        wlat -= elat
        if abs(elon) < 1e-10 and abs(elat) < 1e-10:
            break
    return wlon, wlat


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> BD-09."""
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 -> GCJ-02 (Baidu's own published inverse, ~1e-6 degree)."""
    x, y = lon - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 -> WGS-84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert a point from `crs` (wgs84, gcj02, bd09; case-insensitive) to WGS-84."""
    key = crs.lower()
    if key == "wgs84":
        return lon, lat
    if key == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if key == "bd09":
        return bd09_to_wgs84(lon, lat)
    raise ValueError(f"unknown crs {crs!r}; expected one of {', '.join(CRS)}")


def from_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert a WGS-84 point to `crs` (for tile servers and publishers in other datums)."""
    key = crs.lower()
    if key == "wgs84":
        return lon, lat
    if key == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if key == "bd09":
        return wgs84_to_bd09(lon, lat)
    raise ValueError(f"unknown crs {crs!r}; expected one of {', '.join(CRS)}")


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres on the mean-radius sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2.0 * _EARTH_R * math.asin(min(1.0, math.sqrt(h)))
