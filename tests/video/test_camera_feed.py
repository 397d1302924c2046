"""Cameras through the real ingest and API: bad stream URLs dead-lettered, nearby ordering."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from ..auth_util import sign_in
from ..conftest import Stack
from .test_cameras import offset

TS = 1_795_312_800_000  # 2026-11-22 10:00 +08:00
SPOT = (119.95, 36.78)


@pytest.fixture
def http(stack: Stack) -> Any:
    client = stack.app.server.test_client()
    sign_in(client, stack.client, "commander")
    return client


@pytest.mark.parametrize("url", [
    "rtsp://10.1.2.3:554/h264/ch1/main",  # a real camera's RTSP address: browsers cannot play it
    "javascript:alert(1)",
    "http//no-host/a.m3u8",
    "https://cams.local/a b.mjpg",  # a space: malformed
    "file:///etc/passwd",
])
def test_cam004_non_http_stream_url_is_dead_lettered_and_the_feed_goes_on(
        stack: Stack, r: redis.Redis, url: str) -> None:
    bad = {"id": "37028300001310000001", "lon": SPOT[0], "lat": SPOT[1], "name": "路口枪机",
           "stream_type": "hls", "stream_url": url, "ts": TS}
    stack.publish("camera", bad)
    stack.publish("camera", {**bad, "id": "37028300001310000002", "ts": TS + 1,
                             "stream_url": "http://10.1.2.3/live/2.m3u8"})
    stack.wait_seq(1)
    assert r.hget("cc:state:camera", "37028300001310000001") is None
    assert r.hget("cc:state:camera", "37028300001310000002") is not None
    letters = [json.loads(x) for x in r.lrange("cc:deadletter", 0, -1)]
    assert len(letters) == 1
    assert letters[0]["code"] == "bad_url" and "http" in letters[0]["reason"]
    assert json.loads(letters[0]["raw"])["stream_url"] == url  # kept as it came


def test_cam005_event_detail_lists_covering_cameras_first_then_nearest(
        stack: Stack, http: Any) -> None:
    def placed(cid: str, bearing: float, distance: float, **fields: Any) -> dict[str, Any]:
        lon, lat = offset(bearing, distance, SPOT)
        return {"id": cid, "lon": lon, "lat": lat, "ts": TS, "stream_type": "mjpeg",
                "stream_url": f"http://cams.local/{cid}.mjpg", **fields}

    cameras = [
        placed("cam-near-away", 0, 20, heading=0, fov=60, range_m=100),   # near, faces away
        placed("cam-east-sees", 90, 60, heading=270, fov=60, range_m=100),
        placed("cam-dome", 180, 120),                                    # all round, 150 m
        placed("cam-mid-short", 300, 250, range_m=50),                   # near, short range
        placed("cam-far", 45, 3000),                                     # out of the search
    ]
    for cam in cameras:
        stack.publish("camera", cam)
    stack.publish("event", {"id": "ev-cam", "type": "fire", "severity": 2, "lon": SPOT[0],
                            "lat": SPOT[1], "ts": TS, "title": "仓库起火"})
    stack.wait_seq(len(cameras) + 1)
    body = http.get("/api/events/ev-cam").get_json()
    got = [(c["id"], c["covers"]) for c in body["nearby"]["cameras"]]
    assert got == [("cam-east-sees", True), ("cam-dome", True),
                   ("cam-near-away", False), ("cam-mid-short", False)]
    distances = [c["distance_m"] for c in body["nearby"]["cameras"]]
    assert distances == [60, 120, 20, 250]
    assert body["nearby"]["cameras"][0]["stream_url"].endswith("cam-east-sees.mjpg")
