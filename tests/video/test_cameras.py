"""Which cameras see a spot: range, field of view, edges, headings across north, ordering."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dashboard.video.cameras import around, bearing_deg, off_axis_deg, sees

ORIGIN = (119.95, 36.78)  # central Pingdu
_R = 6_371_008.8


def offset(bearing: float, distance_m: float, start: tuple[float, float] = ORIGIN
           ) -> tuple[float, float]:
    """The point `distance_m` from `start` along `bearing` (great circle)."""
    lon1, lat1 = map(math.radians, start)
    b, d = math.radians(bearing), distance_m / _R
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(b))
    lon2 = lon1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(lat1),
                             math.cos(d) - math.sin(lat1) * math.sin(lat2))
    return math.degrees(lon2), math.degrees(lat2)


def camera(**fields: Any) -> dict[str, Any]:
    return {"id": "C1", "lon": ORIGIN[0], "lat": ORIGIN[1], **fields}


@pytest.mark.parametrize(("fields", "bearing", "distance", "expected"), [
    ({"heading": 90, "fov": 60, "range_m": 100}, 90, 50, True),     # facing the spot
    ({"heading": 270, "fov": 60, "range_m": 100}, 90, 50, False),   # facing away
    ({"heading": 90, "fov": 60, "range_m": 100}, 119.5, 50, True),  # just inside the edge
    ({"heading": 90, "fov": 60, "range_m": 100}, 120.5, 50, False),  # just outside it
    ({"heading": 90, "fov": 60, "range_m": 100}, 60.5, 50, True),   # the other edge
    ({"heading": 350, "fov": 60, "range_m": 100}, 10, 50, True),    # across north
    ({"heading": 10, "fov": 60, "range_m": 100}, 330, 50, False),   # across north, outside
    ({"heading": 90, "fov": 60, "range_m": 100}, 90, 101, False),   # beyond its range
    ({"heading": 90, "fov": 360, "range_m": 100}, 270, 50, True),   # a 360° camera
    ({"range_m": 100}, 200, 99, True),                              # no heading: all around
    ({}, 200, 149, True),                                           # default range 150 m
    ({}, 200, 151, False),
    ({"heading": 90}, 270, 50, True),                               # heading without fov
    ({"heading": 270, "fov": 10}, 90, 0.5, True),                   # standing on the spot
])
def test_cam001_field_of_view(fields: dict[str, Any], bearing: float, distance: float,
                              expected: bool) -> None:
    lon, lat = offset(bearing, distance)
    assert sees(camera(**fields), lon, lat) is expected


def test_cam002_bearing_and_off_axis() -> None:
    for bearing in (0, 45, 90, 179, 181, 270, 359):
        lon, lat = offset(bearing, 80)
        assert off_axis_deg(bearing, bearing_deg(*ORIGIN, lon, lat)) < 0.01
    assert off_axis_deg(350, 10) == 20 and off_axis_deg(10, 350) == 20
    assert off_axis_deg(0, 180) == 180


def test_cam003_covering_cameras_first_then_the_others_nearest_first() -> None:
    spot = ORIGIN
    def placed(cid: str, bearing: float, distance: float, **fields: Any) -> dict[str, Any]:
        lon, lat = offset(bearing, distance, spot)
        return {"id": cid, "lon": lon, "lat": lat, **fields}

    cameras = [
        # 40 m east, facing west toward the spot: covers
        placed("east-facing-spot", 90, 40, heading=270, fov=60, range_m=100),
        # 20 m north, facing north, away from the spot: near but blind to it
        placed("north-facing-away", 0, 20, heading=0, fov=60, range_m=100),
        # 120 m south, dome (no heading): covers within its default 150 m
        placed("south-dome", 180, 120),
        # 90 m west, facing east, offline: covers
        placed("west-offline", 270, 90, heading=90, fov=40, range_m=200, online=False),
        # 400 m away, blind: outside the 300 m radius, left out
        placed("far-blind", 45, 400, heading=45, fov=30, range_m=100),
        # 250 m away, dome with a short range: within the radius, does not cover
        placed("mid-short", 300, 250, range_m=50),
    ]
    order = [(s.camera["id"], s.covers) for s in around(cameras, *spot, radius_m=300)]
    assert order == [("east-facing-spot", True), ("west-offline", True), ("south-dome", True),
                     ("north-facing-away", False), ("mid-short", False)]
