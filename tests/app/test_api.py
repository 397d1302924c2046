"""HTTP API (docs/HTTP.md) on the real stack: health, event list and detail, JSON errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from dashboard.city import load_city

from ..auth_util import XHR, sign_in
from ..conftest import Stack, start_stack

TS = 1_795_312_800_000


@pytest.fixture
def http(stack: Stack) -> Any:
    client = stack.app.server.test_client()
    sign_in(client, stack.client, "leader")
    return client


@pytest.fixture
def watched(redis_url: str) -> Any:
    """The stack with the watch service, its clock at TS (no deadline is due yet)."""
    live, stop, threads = start_stack(redis_url, watch=True, clock=lambda: TS)
    yield live
    stop.set()
    for thread in threads:
        thread.join(5)
    live.client.close()


def publish_events(stack: Stack) -> None:
    city = load_city()
    lon, lat = city.grids[10].centroid
    for i, (sev, status) in enumerate([(4, "reported"), (2, "dispatched"), (1, "reported")]):
        stack.publish("event", {"id": f"ev-{i}", "type": "fire", "severity": sev, "lon": lon,
                                "lat": lat, "ts": TS + i * 1000, "status": status,
                                "title": f"事件{i}"})
    stack.publish("worker", {"id": "w-1", "name": "李强", "lon": lon + 0.001, "lat": lat,
                             "ts": TS, "status": "on_duty"})
    stack.publish("camera", {"id": "37028300001320000001", "lon": lon, "lat": lat + 0.001,
                             "name": "路口球机", "stream_type": "mjpeg"})
    stack.wait_seq(5)


def test_api001_health_reports_redis_ingest_and_dead_letters(watched: Stack) -> None:
    stack, http = watched, watched.app.server.test_client()
    stack.publish("event", "not json")
    publish_events(stack)
    body = None
    for _ in range(50):  # the ingest and watch heartbeats are written once a second
        res = http.get("/api/health")
        body = res.get_json()
        if body["ingest"]["last_message_ts"] and body["watch"]["cursor"] == 7:
            break
        stack.wait_seq(5)
        import time

        time.sleep(0.1)
    assert res.status_code == 200
    assert body is not None
    assert body["status"] == "ok"
    assert body["redis"]["ok"] is True
    assert body["ingest"]["alive"] is True
    assert body["ingest"]["accepted"] >= 5
    assert body["deadletters"] == 1
    assert body["seq"] == 7  # 5 accepted + the watch's alerts for the level I and II events
    assert body["watch"]["alive"] is True and body["watch"]["alerts"] == 2
    assert body["watch"]["lag"] == 0
    assert body["version"]


def test_api002_events_newest_first_with_filters(stack: Stack, http: Any) -> None:
    publish_events(stack)
    events = http.get("/api/events").get_json()["events"]
    assert [e["id"] for e in events] == ["ev-2", "ev-1", "ev-0"]
    assert all({"grid_id", "status", "category"} <= e.keys() for e in events)
    assert events[0]["category"] == "accident"
    assert [e["id"] for e in http.get("/api/events?severity=2").get_json()["events"]] == ["ev-1"]
    reported = http.get("/api/events?status=reported").get_json()["events"]
    assert [e["id"] for e in reported] == ["ev-2", "ev-0"]
    assert len(http.get("/api/events?limit=1").get_json()["events"]) == 1


@pytest.mark.parametrize("query", ["severity=9", "severity=x", "status=done", "limit=0",
                                   "limit=100000"])
def test_api003_bad_query_is_a_json_400(stack: Stack, http: Any, query: str) -> None:
    res = http.get(f"/api/events?{query}")
    assert res.status_code == 400
    assert res.is_json and res.get_json()["error"]


def test_api004_event_detail_with_area_timeline_and_nearby(stack: Stack, http: Any) -> None:
    publish_events(stack)
    body = http.get("/api/events/ev-1").get_json()
    assert body["event"]["id"] == "ev-1"
    assert [u["level"] for u in body["area"]] == ["town", "community", "grid"]
    assert [step["status"] for step in body["timeline"]] == ["dispatched"]
    assert [w["id"] for w in body["nearby"]["workers"]] == ["w-1"]
    assert 50 < body["nearby"]["workers"][0]["distance_m"] < 150
    assert [c["id"] for c in body["nearby"]["cameras"]] == ["37028300001320000001"]
    assert isinstance(body["nearby"]["cameras"][0]["covers"], bool)
    # a level II fire: the fire plan first, with why
    assert body["plans"][0]["plan"]["id"] == "P-FIRE-01" and body["plans"][0]["reasons"]
    assert body["nearby"]["workers"][0]["eta_s"] > 0 and "rule135" in body["nearby"]["workers"][0]
    assert body["task"] is None


def test_api005_unknown_event_and_route_are_json_404(stack: Stack, http: Any) -> None:
    for path in ("/api/events/nope", "/api/nothing-here", "/geo/planet.geojson"):
        res = http.get(path)
        assert res.status_code == 404, path
        assert res.is_json and "error" in res.get_json()
        assert "Traceback" not in res.get_data(as_text=True)


def test_api006_wrong_method_is_json_405(stack: Stack, http: Any) -> None:
    res = http.delete("/api/events", headers=XHR)
    assert res.status_code == 405
    assert res.is_json


def test_api007_geojson_served_with_caching(stack: Stack, http: Any) -> None:
    res = http.get("/geo/town.geojson")
    assert res.status_code == 200
    assert res.mimetype == "application/geo+json"
    assert "max-age=86400" in res.headers["Cache-Control"]
    data = json.loads(res.get_data())
    assert len(data["features"]) == 17
    res.close()


def test_api008_health_degraded_without_ingest(redis_url: str, r: redis.Redis) -> None:
    import dataclasses

    from app import create_app
    from dashboard.config import Settings

    app = create_app(dataclasses.replace(Settings(), redis_url=redis_url))
    res = app.server.test_client().get("/api/health")
    assert res.status_code == 503  # no ingest has subscribed yet: not ready
    assert res.get_json()["status"] == "starting"
    assert res.get_json()["ingest"]["alive"] is False
    assert res.get_json()["watch"]["alive"] is False


def test_api009_chinese_text_is_sent_as_utf8(stack: Stack, http: Any) -> None:
    publish_events(stack)
    raw = http.get("/api/events/ev-0").get_data()
    assert "事件0".encode() in raw
