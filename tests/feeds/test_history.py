"""A city with a past (issue 17, item 1): the demo's history, written through ingest, the
desk, the watch's cards and the archive into a real Valkey, gives the cockpit trends,
closure rates, averages and comparisons with the period before; once per data folder."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
import redis

from dashboard.archive.events import Archive
from dashboard.archive.stats import Figures
from dashboard.city import City, load_city
from dashboard.config import Settings
from dashboard.models import CATEGORIES, SOURCES
from dashboard.store import Store
from feeds.sim.history import MARKER, seed_history
from feeds.sim.text import Text
from feeds.sim.world import World, build_world


@pytest.fixture(scope="module")
def city() -> City:
    return load_city()


@pytest.fixture(scope="module")
def world(city: City) -> World:
    """The simulator's world (seed 7), built once for the module (~1 s)."""
    return build_world(city, Text(7), random.Random("7:world"))


def test_hst001_history_gives_the_cockpit_a_past(redis_url: str, r: redis.Redis,
                                                 city: City, world: World) -> None:
    settings = Settings()
    now = int(time.time() * 1000)
    done = seed_history(settings, redis_url, city, 14, now_ms=now, world=world)
    assert done.skipped == "" and done.events > 14 * 20
    assert done.closed > 0.8 * done.events and done.archived > 0 and done.alerts > 0
    fig = Figures(Store(r), city, settings).figures(None, now)
    win = fig["window"]
    assert win["total"] == done.events
    assert win["closure_rate"] is not None and win["closure_rate"] > 0.8
    for avg in ("avg_dispatch_s", "avg_arrive_s", "avg_close_s"):
        assert win[avg] is not None and win[avg] > 0
    assert 0 < win["overdue"] < 0.3 * win["total"]  # a few, not most
    assert win["yellow"] + win["red"] > 0
    days_with_events = [n for n in fig["trend"]["total"][-14:] if n]
    assert len(days_with_events) >= 13  # today may have begun just now
    assert sum(fig["trend"]["closed"]) > 0
    assert set(fig["by_category"]) == set(CATEGORIES)
    assert set(fig["by_source"]) <= set(SOURCES) and len(fig["by_source"]) >= 6
    assert fig["periods"]["week"]["prev"] > 0
    assert any(c["closure_rate"] for c in fig["children"])  # towns ranked, not all 0 %
    assert len(fig["rankings"]["town"]["closure_rate"]) >= 5
    # the archive holds the closed ones, the live state the rest (each event once)
    archived = Archive(Store(r), settings).frame()
    assert len(archived) == done.archived
    assert r.hlen("cc:state:event") == done.events - done.archived
    # the desk's own records: tasks with their history, evaluated and closed
    task = json.loads(next(iter(r.hvals("cc:state:task"))))
    assert task["history"][0]["stage"] == "dispatched" and task["by"] == "zhihui"
    # texts filled as the simulator fills them: no placeholder left
    events = [json.loads(v) for v in r.hvals("cc:state:event")]
    assert not [e["title"] for e in events if "{" in e["title"] + e["description"]]
    # the watch followed the log on the same clock: its cursor is at the end, so the live
    # one raises nothing again for the past (a level I/II event's alarm was acknowledged)
    assert int(r.get("cc:watch:cursor")) == int(r.get("cc:seq"))
    open_alerts = [json.loads(v) for v in r.hvals("cc:state:alert")]
    assert any(a["kind"] == "critical_event" for a in open_alerts)
    closed = {e["id"] for e in events if e["status"] == "closed"}
    assert not [a for a in open_alerts if a.get("event_id") in closed and not a.get("acked_by")]
    # the simulator's units, at their posts and free again
    assert r.hlen("cc:state:worker") == len(world.workers)
    assert json.loads(r.get(f"cc:{MARKER}"))["events"] == done.events


def test_hst002_once_per_data_folder(redis_url: str, r: redis.Redis, city: City,
                                     world: World) -> None:
    settings = Settings()
    first = seed_history(settings, redis_url, city, 2, world=world)
    assert first.events > 0
    seq, events = r.get("cc:seq"), r.hlen("cc:state:event")
    again = seed_history(settings, redis_url, city, 2, world=world)
    assert again.skipped == "seeded before" and again.events == 0
    assert r.get("cc:seq") == seq and r.hlen("cc:state:event") == events


def test_hst003_off_or_not_empty_writes_nothing(redis_url: str, r: redis.Redis,
                                                city: City, world: World) -> None:
    settings = Settings()
    off = seed_history(settings, redis_url, city, 0, world=world)
    assert off.skipped == "off" and r.dbsize() == 0
    r.set("cc:seq", 5)  # a folder that already has live data keeps it as it is
    busy = seed_history(settings, redis_url, city, 3, world=world)
    assert busy.skipped == "not empty" and r.hlen("cc:state:event") == 0
    assert r.exists(f"cc:{MARKER}")


def test_hst004_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_DEMO_HISTORY_DAYS", "30")
    assert Settings.from_env().demo_history_days == 30
    monkeypatch.setenv("CC_DEMO_HISTORY_DAYS", "0")
    assert Settings.from_env().demo_history_days == 0
    monkeypatch.delenv("CC_DEMO_HISTORY_DAYS")
    assert Settings.from_env().demo_history_days == 90
    monkeypatch.setenv("CC_DEMO_HISTORY_PER_DAY", "12.5")
    assert Settings.from_env().demo_history_per_day == 12.5
    monkeypatch.setenv("CC_DEMO_HISTORY_DAYS", "-1")
    with pytest.raises(ValueError, match="CC_DEMO_HISTORY_DAYS"):
        Settings.from_env()


def test_hst005_ctrl_c_ends_it_early(redis_url: str, r: redis.Redis, city: City,
                                     world: World) -> None:
    """`app.py` hands its stop event over: set, the history ends, marked as interrupted."""
    stop = threading.Event()
    stop.set()
    done = seed_history(Settings(), redis_url, city, 5, world=world, stop=stop)
    assert done.events == 0 and r.hlen("cc:state:event") == 0
    assert json.loads(r.get(f"cc:{MARKER}"))["interrupted"] is True
