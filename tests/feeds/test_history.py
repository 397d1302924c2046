"""A city with a past (issue 17, item 1): the demo's history, written through ingest, the
desk, the watch's cards and the archive into a real Valkey, gives the cockpit trends,
closure rates, averages and comparisons with the period before; the duty desk's handovers
of past shifts, workers' tracks and patrol coverage of recent days, the replay's last day;
once per data folder."""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from dashboard.archive.events import Archive
from dashboard.archive.stats import Figures, patrol_key
from dashboard.archive.tracks import Tracks
from dashboard.city import City, load_city
from dashboard.command.alerts import Alerts
from dashboard.config import Settings
from dashboard.duty.handover import Handovers
from dashboard.duty.roster import RosterStore
from dashboard.models import CATEGORIES, SOURCES
from dashboard.replay.reader import History
from dashboard.store import Store
from feeds.sim import history
from feeds.sim.history import (
    ACK_AFTER_MS,
    ACK_QUIET_MS,
    MARKER,
    REPLAY_PAST_MS,
    Seeded,
    seed_history,
)
from feeds.sim.history_duty import ACCEPT_AFTER_MS, DRAFT_BEFORE_MS
from feeds.sim.history_patrol import FIX_MAX_MS, plan_fixes
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
                                                 city: City, world: World,
                                                 tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
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
    # the duty officer acknowledged every alarm but the last two hours' (an open event's too)
    waiting = Alerts(Store(r), lambda: now).open(limit=1000)
    assert all(int(a["ts"]) > now - ACK_QUIET_MS - ACK_AFTER_MS for a in waiting), waiting[-1:]
    # each card raised at its own moment (within the second a live watch takes), not at
    # the next step's: red ones 1 s over, yellow ones at 80 % of the limit and 1 s
    cards = [json.loads(v) for v in r.hvals("cc:state:alert")]
    cards = [a["texts"]["en"] for a in cards if a["kind"].startswith("sla_")]
    assert len(cards) >= 10
    assert not [t for t in cards if not _on_time(t)], [t for t in cards if not _on_time(t)][:3]
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


def _on_time(card: str) -> bool:
    """A card's text says it came within a second of its moment (ratio 0.8)."""
    if re.search(r", 1 s over\)$", card):
        return True
    found = re.search(r"(\d+)% of the (.+?) \w+ limit used", card)
    if not found:
        return False
    units = {"d": 86_400_000, "h": 3_600_000, "min": 60_000, "s": 1000}
    limit = sum(int(n) * units[u] for n, u in re.findall(r"(\d+) (d|h|min|s)\b", found[2]))
    return 80 <= int(found[1]) <= (-(-limit * 8 // 10) + 1000) * 100 // limit


def test_hst002_once_per_data_folder(redis_url: str, r: redis.Redis, city: City,
                                     world: World, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = seed_history(settings, redis_url, city, 2, world=world)
    assert first.events > 0
    seq, events = r.get("cc:seq"), r.hlen("cc:state:event")
    again = seed_history(settings, redis_url, city, 2, world=world)
    assert again.skipped == "seeded before" and again.events == 0
    assert r.get("cc:seq") == seq and r.hlen("cc:state:event") == events


def test_hst003_off_or_not_empty_writes_nothing(redis_url: str, r: redis.Redis,
                                                city: City, world: World,
                                                tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
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
                                     world: World, tmp_path: Path) -> None:
    """`app.py` hands its stop event over: set, the history ends, marked as interrupted."""
    stop = threading.Event()
    stop.set()
    done = seed_history(Settings(data_dir=tmp_path), redis_url, city, 5, world=world, stop=stop)
    assert done.events == 0 and r.hlen("cc:state:event") == 0
    assert json.loads(r.get(f"cc:{MARKER}"))["interrupted"] is True


def test_hst010_says_how_far_it_is(redis_url: str, city: City, world: World, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   caplog: pytest.LogCaptureFixture) -> None:
    """A newcomer waits for the history before the wall's URL: the log says how far it is."""
    monkeypatch.setattr(history, "PROGRESS_S", 0.0)
    with caplog.at_level(logging.INFO, logger="feeds.sim.history"):
        seed_history(Settings(data_dir=tmp_path), redis_url, city, 2, world=world)
    said = [int(m.group(1)) for rec in caplog.records
            if (m := re.match(r"demo history: (\d+) % written \(up to \d{4}-\d{2}-\d{2}\)",
                              rec.getMessage()))]
    assert len(said) > 10 and said == sorted(said) and said[0] >= 0 and said[-1] <= 100


def _seeded(redis_url: str, city: City, world: World, tmp_path: Path,
            days: int = 3) -> tuple[Settings, Seeded, int]:
    settings = Settings(data_dir=tmp_path)
    now = int(time.time() * 1000)
    done = seed_history(settings, redis_url, city, days, now_ms=now, world=world)
    assert done.skipped == ""
    return settings, done, now


def test_hst006_past_shifts_were_handed_over(redis_url: str, r: redis.Redis, city: City,
                                             world: World, tmp_path: Path) -> None:
    """Each past shift's report, drafted from the state at the end of its shift, signed by
    the outgoing officer and accepted by the incoming one, through the duty desk's own
    Handovers: the duty page's list has a past, and its signatures verify."""
    settings, done, now = _seeded(redis_url, city, world, tmp_path)
    store = Store(r)
    roster = RosterStore(store, settings.timezone).get()
    books = Handovers(store, settings, lambda: roster)
    reports = books.list(50)
    assert len(reports) == sum(done.handovers.values()) >= 4  # 3 days: two shifts a day
    assert reports[0]["to"] <= now + ACCEPT_AFTER_MS and reports[0]["from"] < now
    for old in reports[1:]:  # all but the newest are done with
        assert old["state"] == "accepted"
    tz = ZoneInfo(settings.timezone)
    for summary in reports:
        duty = roster.at(summary["from"])
        assert (duty.start_ms, duty.end_ms) == (summary["from"], summary["to"])
        report = books.get(summary["id"])
        assert report is not None
        assert report["author"] == (duty.officers or (duty.leader,))[0]
        assert report["created"] == duty.end_ms - DRAFT_BEFORE_MS  # on the history's clock
        if report["state"] != "draft":
            assert report["intact"] is True and report["signed"]["by"] == report["author"]
        if report["state"] == "accepted":
            assert report["accepted"]["by"] != report["author"]
        day = datetime.fromtimestamp(summary["from"] / 1000, tz)
        assert report["id"].startswith(f"H{day:%Y%m%d%H%M}")
    # drafted from the state then: a day shift's report lists the events of its day
    assert sum(r_["counts"]["opened"] for r_ in reports) > 0.5 * done.events
    # the shift now running is the duty officer's to hand over: not drafted by the history
    current = roster.at(now)
    assert not [x for x in reports if x["from"] == current.start_ms]
    officer = (current.officers or (current.leader,))[0]
    assert books.create(by=officer)["from"] == current.start_ms


def test_hst007_recent_patrols_have_tracks_and_coverage(redis_url: str, r: redis.Redis,
                                                        city: City, world: World,
                                                        tmp_path: Path) -> None:
    """Yesterday's patrol of a walking worker reads back as a track through the track
    store, with no gap the replay would show as "no report"; every worker's grid counts in
    yesterday's patrol coverage."""
    settings, done, now = _seeded(redis_url, city, world, tmp_path)
    assert done.fixes > 0
    tz = ZoneInfo(settings.timezone)
    yesterday = datetime.fromtimestamp(now / 1000, tz).date() - timedelta(days=1)
    begin = int(datetime(yesterday.year, yesterday.month, yesterday.day, 9,
                         tzinfo=tz).timestamp() * 1000)
    tracks = Tracks(r, "cc:", settings.timezone)
    walker = world.workers[0]  # one in SAMPLE walks, the first among them
    points = tracks.read("worker", walker.id, begin, begin + 8 * 3_600_000)["points"]
    assert len(points) > 8 * 12 - 1  # a fix kept at least every 5 min for 8 h
    gaps = [b[0] - a[0] for a, b in pairwise(points)]
    assert max(gaps) <= 330_000  # the track replay's "no report" gap is 5.5 min
    lats, lons = [p[1] for p in points], [p[2] for p in points]
    assert max(lats) - min(lats) + max(lons) - min(lons) > 0.001  # it walked (> ~100 m)
    inside = [city.locate(lon, lat) == walker.grid for _, lat, lon in points]
    assert sum(inside) >= 0.9 * len(inside)  # walking their own grid
    # a worker who does not walk the whole day still reported from their grid
    still = world.workers[1]
    day_end = begin + 12 * 3_600_000
    assert tracks.read("worker", still.id, begin - 3_600_000, day_end)["points"]
    grids = {w.grid for w in world.workers}
    patrolled = r.smembers(patrol_key("cc:", yesterday.isoformat()))
    assert len(patrolled & grids) >= 0.95 * len(grids)
    # the moves were merged, not replaced: name and the desk's status kept
    w = json.loads(r.hget("cc:state:worker", walker.id))
    assert w["name"] == walker.name and w["status"] in ("on_duty", "busy")


def test_hst008_the_replay_holds_the_last_day(redis_url: str, r: redis.Redis, city: City,
                                              world: World, tmp_path: Path) -> None:
    """The replay's recorder joins the watch for the history's last REPLAY_PAST_MS only:
    the wall of a few hours ago can be replayed, nothing older was written to expire
    unseen, and the live watch goes on from the history's end."""
    settings, _, now = _seeded(redis_url, city, world, tmp_path)
    history = History(r, "cc:", settings.replay_days)
    span = history.span(now)
    assert span["from"] is not None
    assert now - REPLAY_PAST_MS <= span["from"] <= now - REPLAY_PAST_MS + 3_600_000
    wall = history.wall_at(now - 3 * 3_600_000, None)
    assert wall is not None and wall["events"] and wall["workers"]
    assert len(wall["cameras"]) == len(world.cameras)  # the past has its cameras too
    minutes = [int(k.rsplit(":", 1)[1]) for k in r.scan_iter("cc:replay:m:*")]
    assert minutes and min(minutes) * 60_000 >= now - REPLAY_PAST_MS - 60_000
    # the recorder wrote up to its last full minute; the live watch offers the rest again
    # from the log on attach (feeds/watch/replay.py catch_up)
    cursor = int(r.get("cc:replay:cursor").split("|")[0])
    assert 0 < cursor <= int(r.get("cc:watch:cursor")) == int(r.get("cc:seq"))
    first = Store(r).log_first_seq()
    assert first is not None and first <= cursor + 1


def test_hst009_patrol_plan(city: City, world: World) -> None:
    """The patrols' plan (pure): a walker's fixes through the working day at most
    FIX_MAX_MS apart, everyone's in working hours, none after now nor before the start."""
    tz = ZoneInfo("Asia/Shanghai")
    now = int(datetime(2026, 3, 4, 15, 0, tzinfo=tz).timestamp() * 1000)
    start = now - 10 * 86_400_000
    fixes = plan_fixes(city, world, now, tz, start)
    assert fixes == sorted(fixes) and fixes[-1][0] <= now
    by_worker: dict[str, list[int]] = {}
    for ts, worker_id, _, _ in fixes:
        by_worker.setdefault(worker_id, []).append(ts)
        assert 8 <= datetime.fromtimestamp(ts / 1000, tz).hour < 18
    assert set(by_worker) == {w.id for w in world.workers}
    day = int(datetime(2026, 3, 3, tzinfo=tz).timestamp() * 1000)
    walked = [t for t in by_worker[world.workers[0].id] if day <= t < day + 86_400_000]
    assert max(b - a for a, b in pairwise(walked)) <= FIX_MAX_MS
    assert walked[-1] - walked[0] > 9 * 3_600_000
    one = [t for t in by_worker[world.workers[1].id] if day <= t < day + 86_400_000]
    assert len(one) == 1
    assert not plan_fixes(city, world, now, tz, start=now)  # nothing before the start
