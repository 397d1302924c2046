"""Camera frames for the map's camera layer (feature code cam1NN; the browser side is in
tests/video/test_camlayer_browser.py): a camera's re-report is logged as a move, an online/offline
change as an upsert, and the relay coalesces both into its once-a-second batch."""

from __future__ import annotations

import json
import time

import redis

from ..conftest import Stack

TS = 1_795_312_800_000  # 2026-11-22 10:00 +08:00


def test_cam106_camera_changes_are_coalesced_into_the_batch(
        stack: Stack, r: redis.Redis) -> None:
    cam = {"id": "37028300001310000001", "lon": 119.96, "lat": 36.79, "name": "人民路口",
           "stream_type": "mjpeg", "stream_url": "http://127.0.0.1:8060/video/a.mjpg",
           "online": True, "heading": 90, "fov": 60, "ts": TS}
    with stack.connect() as ws:
        assert json.loads(ws.recv(5))["type"] == "snapshot"
        stack.publish("camera", cam)
        stack.publish("camera", {**cam, "ts": TS + 1000})  # a re-report: same state
        stack.publish("camera", {**cam, "online": False, "ts": TS + 2000})
        stack.wait_seq(3)
        ops = [fields["o"] for _, fields in r.xrange("cc:log")]
        assert ops == ["upsert", "move", "upsert"]
        # over the socket: batches only, the last one with the latest record (camera
        # changes are coalesced like moves; the camera layer redraws at most once a second)
        frames: list[dict] = []
        deadline = time.monotonic() + 5
        while not frames or frames[-1].get("seq", 0) < 3:
            assert time.monotonic() < deadline, frames
            f = json.loads(ws.recv(5))
            if f["type"] != "stats":
                frames.append(f)
        assert {f["type"] for f in frames} == {"batch"}
        assert [(i["kind"], i["data"]["id"], i["data"]["online"]) for i in frames[-1]["items"]] \
            == [("camera", cam["id"], False)]
    assert r.hget("cc:count:camera", "offline") == "1"
