"""Camera frames for the map's camera layer (feature code cam1NN; the browser side is in
tests/test_camlayer_browser.py): a camera's re-report is a move the relay coalesces, an
online/offline change an upsert sent at once."""

from __future__ import annotations

import json
import time

import redis

from .conftest import Stack

TS = 1_795_312_800_000  # 2026-11-22 10:00 +08:00


def test_cam106_camera_rereport_is_a_move_and_a_state_change_an_upsert(
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
        # over the socket: the first upsert, the move (as a one-item batch, flushed before the
        # next delta to keep sequence order), then the change, at once and in order
        got: list[dict] = []
        deadline = time.monotonic() + 5
        while len([f for f in got if f["type"] in ("delta", "batch")]) < 3:
            assert time.monotonic() < deadline, got
            got.append(json.loads(ws.recv(5)))
        frames = [f for f in got if f["type"] in ("delta", "batch")]
        assert [f["type"] for f in frames] == ["delta", "batch", "delta"]
        assert frames[1]["items"][0]["op"] == "move"
        assert frames[1]["items"][0]["data"]["online"] is True
        assert frames[2]["op"] == "upsert" and frames[2]["data"]["online"] is False
        assert [f["seq"] for f in frames] == sorted(f["seq"] for f in frames)
    assert r.hget("cc:count:camera", "offline") == "1"
