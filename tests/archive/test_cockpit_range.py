"""The cockpit's time range (issue 16) on the fixed history (tests/cockpit_util.py), in a
real Valkey: ck201 each range's figures equal the hand count and its comparison with the
span before; ck202 `GET /api/stats` takes `range=` and `from`/`to` (days or ms), caches each
range apart and keeps the default answer as before; ck203 a wrong range is a JSON 400;
ck204 the export takes the same `range=` and counts what the figures count; ck205 a custom
range older than the figures' usual months is read from the archive too.

The fixture's moment is Wednesday 2026-11-25 15:00 +08:00.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from dashboard.archive.events import Archive
from dashboard.archive.span import MAX_DAYS, SpanError, prev_span, span_of
from dashboard.archive.stats import SHAPE
from dashboard.config import Settings

from ..cockpit_util import Hand, by_hand, load_history, ms, now_ms
from .test_stats import client_for, day_start, figures_of, stats_app

TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 25)


@pytest.fixture
def history(r: redis.Redis) -> dict[str, Any]:
    return load_history(r)


@pytest.fixture
def app(redis_url: str, history: dict[str, Any]) -> Any:
    return stats_app(redis_url, now_ms, stats_min_age_s=0.0)


def counted(first: date, end_s: int) -> list[Hand]:
    """The fixture's events reported from local midnight of `first` to `end_s` (excluded)
    and not after now: what a range counts, by hand."""
    now = now_ms() // 1000
    return [h for h in by_hand() if day_start(first) <= h.report < end_s and h.report <= now]


@pytest.mark.parametrize(("name", "first"), [
    ("today", TODAY), ("7d", TODAY - timedelta(days=6)), ("30d", TODAY - timedelta(days=29)),
    ("year", date(2026, 1, 1))])
def test_ck201_each_range_equals_the_hand_count(r: redis.Redis, history: dict[str, Any],
                                                name: str, first: date) -> None:
    figs = figures_of(r)
    now = now_ms()
    fig = figs.figures(None, now, figs.span(name, None, None, now))
    win = counted(first, now // 1000 + 1)
    assert fig["range"] == name
    assert fig["window"]["from"] == day_start(first) * 1000 and fig["window"]["to"] == now
    assert fig["window"]["total"] == len(win)
    assert fig["window"]["closed"] == sum(h.status == "closed" for h in win)
    assert fig["by_category"] == dict(Counter(h.category for h in win))
    assert fig["by_source"] == dict(Counter(h.source for h in win))
    assert fig["by_severity"] == {str(k): v for k, v in Counter(h.severity for h in win).items()}
    assert sum(c["total"] for c in fig["children"]) == len(win)
    days = [first + timedelta(days=k) for k in range((TODAY - first).days + 1)]
    assert fig["window_days"] == len(days)
    assert fig["trend"]["days"] == [d.isoformat() for d in days]
    assert fig["trend"]["total"] == [sum(day_start(d) <= h.report < day_start(
        d + timedelta(days=1)) for h in win) for d in days]
    # the range against the same span before it, up to the same offset
    prev_from, prev_to = prev_span(figs.span(name, None, None, now), now, TZ)
    if name == "year":
        assert prev_from == day_start(date(2025, 1, 1))
    else:
        assert prev_from == day_start(first - timedelta(days=len(days)))
    assert prev_to - prev_from == now // 1000 - day_start(first)
    per = fig["periods"]["range"]
    assert per["count"] == len(win)
    assert per["prev"] == sum(prev_from <= h.report < prev_to for h in by_hand())
    # the calendar periods are the calendar's, whatever the range
    assert fig["periods"]["today"]["count"] == 4 and fig["periods"]["week"]["count"] == 7
    assert fig["now"] == {"open": 3, "overdue": 2, "in_progress": 1, "closed_today": 1}
    if name == "today":  # the range "today" is the period "today"
        assert (per["count"], per["prev"]) == (fig["periods"]["today"]["count"],
                                               fig["periods"]["today"]["prev"])


def test_ck201_a_custom_span_counts_both_days_and_nothing_after(
        r: redis.Redis, history: dict[str, Any]) -> None:
    figs = figures_of(r)
    now = now_ms()
    start, end = ms("2026-11-01T00:00:00"), ms("2026-11-21T00:00:00")  # 1–20 November
    span = figs.span(None, start, end, now)
    fig = figs.figures("370283001", now, span)
    win = [h for h in counted(date(2026, 11, 1), end // 1000) if h.town == "370283001"]
    assert fig["range"] == "custom" and fig["window_days"] == 20
    assert fig["window"]["from"] == start and fig["window"]["to"] == end
    assert fig["window"]["total"] == len(win) and win
    assert fig["trend"]["days"][0] == "2026-11-01" and fig["trend"]["days"][-1] == "2026-11-20"
    per = fig["periods"]["range"]  # against 12–31 October
    assert per["prev_from"] == ms("2026-10-12T00:00:00")
    assert per["prev_to"] == ms("2026-11-01T00:00:00")
    assert per["prev"] == sum(h.town == "370283001" and per["prev_from"] <= h.report * 1000
                              < per["prev_to"] for h in by_hand())
    # a span reaching past now counts up to now
    late = figs.figures(None, now, figs.span(None, start, now + 86_400_000, now))
    assert late["window"]["to"] == now
    assert late["window"]["total"] == len(counted(date(2026, 11, 1), now // 1000 + 1))


def test_ck202_the_api_takes_the_range_and_caches_each_apart(app: Any, r: redis.Redis) -> None:
    leader = client_for(app, r, "leader")
    plain = leader.get("/api/stats")
    assert plain.status_code == 200 and plain.json["range"] == "30d"
    assert plain.json["window_days"] == 30
    same = leader.get("/api/stats?range=30d")  # the default's own cache entry
    assert same.headers["X-Cache"] == "hit" and same.json == plain.json
    week = leader.get("/api/stats?range=7d")
    assert week.headers["X-Cache"] == "miss" and week.json["range"] == "7d"
    assert week.json["window_days"] == 7
    assert leader.get("/api/stats?range=7d").headers["X-Cache"] == "hit"
    assert leader.get("/api/stats").json == plain.json
    days = leader.get("/api/stats?from=2026-11-01&to=2026-11-20&scope=370283001")
    assert days.status_code == 200 and days.json["range"] == "custom"
    assert days.json["window"]["from"] == ms("2026-11-01T00:00:00")
    assert days.json["window"]["to"] == ms("2026-11-21T00:00:00")
    by_ms = leader.get(f"/api/stats?from={ms('2026-11-01T00:00:00')}"
                       f"&to={ms('2026-11-21T00:00:00')}&scope=370283001")
    assert by_ms.headers["X-Cache"] == "hit"  # the same span, the same entry
    assert by_ms.json == days.json
    keys = sorted(k for k in r.keys("cc:cache:*") if "lock" not in k)
    assert any(k.endswith(f"stats:v{SHAPE}:370283") for k in keys)
    assert any(k.endswith(f"stats:v{SHAPE}:370283:7d") for k in keys)
    assert any(k.endswith(f"stats:v{SHAPE}:370283001:{ms('2026-11-01T00:00:00') // 1000}-"
                          f"{ms('2026-11-21T00:00:00') // 1000}") for k in keys)
    # a scoped leader's range stays in their scope
    town = client_for(app, r, "leader", scope="370283002")
    res = town.get("/api/stats?range=year")
    assert res.json["scope"]["code"] == "370283002"
    assert res.json["window"]["total"] == sum(
        h.town == "370283002" and h.report >= day_start(date(2026, 1, 1))
        for h in by_hand())


@pytest.mark.parametrize(("query", "why"), [
    ("range=week", "range: one of"), ("range=7d&from=2026-11-01", "not both"),
    ("to=2026-11-01", "needs a from"), ("from=2026-11-20&to=2026-11-01", "after from"),
    ("from=2020-01-01&to=2026-11-01", "at most"), ("from=yesterday", "YYYY-MM-DD")])
def test_ck203_a_wrong_range_is_a_json_400(app: Any, r: redis.Redis, query: str,
                                           why: str) -> None:
    res = client_for(app, r, "leader").get(f"/api/stats?{query}")
    assert res.status_code == 400 and res.is_json, query
    assert res.json["code"] in ("bad_range", "bad_time") and why in res.json["error"]
    assert "Traceback" not in res.get_data(as_text=True)


def test_ck203_the_span_rules_without_http() -> None:
    now = now_ms()
    with pytest.raises(SpanError):
        span_of("decade", None, None, now, TZ)
    first = day_start(TODAY - timedelta(days=MAX_DAYS - 1)) * 1000
    assert span_of(None, first, None, now, TZ).days == MAX_DAYS  # up to now
    with pytest.raises(SpanError):
        span_of(None, first - 86_400_000, None, now, TZ)
    # a span reaching past now is counted, and bounded, up to now
    assert span_of(None, first, now + 400 * 86_400_000, now, TZ).days == MAX_DAYS
    assert span_of(None, None, None, now, TZ).key() == ""  # the cache key from before ranges
    assert span_of("today", None, None, now, TZ).key() == ":today"


def test_ck204_the_export_takes_the_range_and_counts_what_the_figures_count(
        app: Any, r: redis.Redis) -> None:
    leader = client_for(app, r, "leader")
    for query in ("range=today", "range=7d", "range=year", "from=2026-11-01&to=2026-11-20"):
        fig = leader.get(f"/api/stats?{query}").json
        res = leader.get(f"/api/export?{query}")
        assert res.status_code == 200, query
        rows = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))[1:]
        assert len(rows) == int(res.headers["X-Rows"]) == fig["window"]["total"], query
    res = leader.get("/api/export?range=fortnight")
    assert res.status_code == 400 and res.json["code"] == "bad_range"


def test_ck205_a_custom_range_before_last_year_reads_the_archive(
        r: redis.Redis, history: dict[str, Any], redis_url: str) -> None:
    from dashboard.store import Store

    # the fixture's oldest events are last year's: archive them, then ask for 2025 alone
    archive = Archive(Store(r), Settings())
    archive.run(now_ms(), 1000)
    figs = figures_of(r)
    now = now_ms()
    old = [h for h in by_hand() if h.report < day_start(date(2026, 1, 1))]
    fig = figs.figures(None, now, figs.span(None, ms("2025-01-01T00:00:00"),
                                            ms("2026-01-01T00:00:00"), now))
    assert old and fig["window"]["total"] == len(old)
    # compared with the 365 days before (2024 had 366)
    assert fig["periods"]["range"]["prev_from"] == day_start(date(2024, 1, 2)) * 1000
