"""Feed protocol v1: every kind of bad input is refused with a reason; good input normalised."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dashboard.geo import wgs84_to_bd09, wgs84_to_gcj02
from dashboard.protocol import MAX_BYTES, Accepted, Rejected, parse

from ..conftest import FIXTURES

BAD = json.loads((FIXTURES / "bad_messages.json").read_text(encoding="utf-8"))
NOW = 1_795_320_000_000


def event(**fields: Any) -> str:
    base = {"id": "ev-1", "type": "fire", "severity": 2, "lon": 119.96, "lat": 36.78,
            "ts": "2026-11-22T10:00:00+08:00"}
    base.update(fields)
    return json.dumps(base, ensure_ascii=False)


@pytest.mark.parametrize("case", BAD, ids=[c["name"] for c in BAD])
def test_proto001_bad_input_rejected_with_reason(case: dict[str, str]) -> None:
    result = parse(case["kind"], case["raw"], NOW)
    assert isinstance(result, Rejected), result
    assert result.code == case["code"]
    assert result.reason  # a person can read why


def test_proto002_oversize_rejected() -> None:
    raw = event(description="x" * MAX_BYTES)
    result = parse("event", raw, NOW)
    assert isinstance(result, Rejected)
    assert result.code == "too_large"
    assert str(MAX_BYTES) in result.reason


def test_proto003_not_utf8_rejected() -> None:
    result = parse("event", b'{"id": "\xff\xfe"}', NOW)
    assert isinstance(result, Rejected)
    assert result.code in ("not_utf8", "not_json")


def test_proto004_valid_event_normalised() -> None:
    result = parse("event", event(title="燃气泄漏", v=1, extra_field={"kept": True}), NOW)
    assert isinstance(result, Accepted)
    rec = result.record
    assert result.kind == "event" and result.id == "ev-1"
    assert rec["ts"] == 1_795_312_800_000 == result.ts
    assert rec["category"] == "accident"
    assert rec["received"] == NOW
    assert rec["extra_field"] == {"kept": True}  # unknown fields are kept
    assert "v" not in rec and "crs" not in rec
    assert "status" not in rec  # defaulted at merge time, so an update never resets it


def test_proto005_epoch_ms_and_iso_agree() -> None:
    a = parse("event", event(ts="2026-11-22T02:00:00Z"), NOW)
    b = parse("event", event(ts=1_795_312_800_000), NOW)
    assert isinstance(a, Accepted) and isinstance(b, Accepted)
    assert a.ts == b.ts


def test_proto006_unknown_type_is_other() -> None:
    result = parse("event", event(type="ufo_sighting"), NOW)
    assert isinstance(result, Accepted)
    assert result.record["category"] == "other"


@pytest.mark.parametrize(("crs", "forward"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_proto007_chinese_datums_converted_to_wgs84(crs: str, forward: Any) -> None:
    lon, lat = 119.959_012, 36.783_456
    slon, slat = forward(lon, lat)
    result = parse("event", event(lon=slon, lat=slat, crs=crs), NOW)
    assert isinstance(result, Accepted)
    assert result.record["src_crs"] == crs
    assert result.record["lon"] == pytest.approx(lon, abs=2e-6)
    assert result.record["lat"] == pytest.approx(lat, abs=2e-6)


def test_proto008_camera_without_ts_and_with_https_stream() -> None:
    raw = json.dumps({"id": "37028300001320000001", "lon": 119.9, "lat": 36.7,
                      "stream_url": "https://cams.local/a.m3u8", "stream_type": "hls"})
    result = parse("camera", raw, NOW)
    assert isinstance(result, Accepted)
    assert result.ts == NOW


def test_proto009_feedback_keyed_by_task() -> None:
    raw = json.dumps({"task_id": "t-9", "event_id": "ev-1", "actor_id": "w-1",
                      "stage": "arrived", "ts": 1_795_312_800_000})
    result = parse("feedback", raw, NOW)
    assert isinstance(result, Accepted)
    assert result.id == "t-9"


def test_proto010_text_is_not_interpreted() -> None:
    title = "<img src=x onerror=alert(1)>"
    result = parse("event", event(title=title), NOW)
    assert isinstance(result, Accepted)
    assert result.record["title"] == title  # stored as sent; shown as text by the wall
