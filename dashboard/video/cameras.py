"""Which cameras can see a spot: range and field of view (issue 4).

A fixed camera with `heading` (degrees clockwise from north) and `fov` (degrees) sees the
sector of `range_m` around its heading; without them it is taken to see all around within
`range_m` (docs/PROTOCOL.md, default 150 m). Pure functions: the caller brings the records; only
`for_spot` reads them from the store (the one ordering the event detail and the video wall
share).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dashboard.geo import haversine_m

if TYPE_CHECKING:
    from dashboard.store import Store

DEFAULT_RANGE_M: Final = 150.0
# For a spot: look this far for cameras whose range reaches it (the geo index knows places,
# not ranges), list the others this close, and show at most this many (a 4×4 wall).
SEARCH_M: Final = 1000
RADIUS_M: Final = 500
CANDIDATES: Final = 200
SHOWN: Final = 16
# A camera this close to the spot sees it whatever way it faces (it stands on the spot).
ON_SPOT_M: Final = 1.0


def bearing_deg(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Initial bearing from point 1 to point 2, degrees clockwise from north, in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def off_axis_deg(heading: float, bearing: float) -> float:
    """How far a bearing lies from a heading, in [0, 180]."""
    diff = abs(bearing - heading) % 360.0
    return 360.0 - diff if diff > 180.0 else diff


def sees(camera: dict[str, Any], lon: float, lat: float) -> bool:
    """Whether the camera's view covers the spot (edges included)."""
    distance = haversine_m(camera["lon"], camera["lat"], lon, lat)
    return _sees(camera, distance, lon, lat)


def _sees(camera: dict[str, Any], distance: float, lon: float, lat: float) -> bool:
    reach = camera.get("range_m")
    if distance > (DEFAULT_RANGE_M if reach is None else float(reach)):
        return False
    heading, fov = camera.get("heading"), camera.get("fov")
    if heading is None or fov is None or float(fov) >= 360.0 or distance < ON_SPOT_M:
        return True
    bearing = bearing_deg(camera["lon"], camera["lat"], lon, lat)
    return off_axis_deg(float(heading), bearing) <= float(fov) / 2.0


@dataclass(frozen=True, slots=True)
class Sight:
    """A camera near the spot: whether it covers it and how far it is."""

    camera: dict[str, Any]
    distance_m: float
    covers: bool


def around(cameras: Iterable[dict[str, Any]], lon: float, lat: float,
           radius_m: float) -> list[Sight]:
    """Cameras within `radius_m`: those whose view covers the spot first, each group nearest
    first (online before offline at the same distance)."""
    sights = []
    for camera in cameras:
        distance = haversine_m(camera["lon"], camera["lat"], lon, lat)
        covers = _sees(camera, distance, lon, lat)
        if covers or distance <= radius_m:
            sights.append(Sight(camera, distance, covers))
    sights.sort(key=lambda s: (not s.covers, round(s.distance_m, 1),
                               s.camera.get("online") is False, str(s.camera.get("id"))))
    return sights


def for_spot(store: Store, lon: float, lat: float, limit: int = SHOWN) -> list[dict[str, Any]]:
    """The cameras for a spot, as records with `distance_m` and `covers`: those whose view
    covers it first, then the others within `RADIUS_M`, each group nearest first; `limit`
    at most. Used by the event detail and by the video wall's focus."""
    hits = store.nearby("camera", lon, lat, SEARCH_M, CANDIDATES)
    records = store.records("camera", [h[0] for h in hits])
    return [
        {**s.camera, "distance_m": round(s.distance_m), "covers": s.covers}
        for s in around((r for r, _ in records.values()), lon, lat, RADIUS_M)[:limit]
    ]
