"""The replay history on a real Valkey: recorded by the real watch from the real change log,
read back as the wall at a moment, the changes after it and the period's actions."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
import redis

from dashboard.config import Settings
from dashboard.replay import history as h
from dashboard.replay.reader import History, apply, visible
from dashboard.store import Store, day_of

from .. import units_util as units
from ..replay_util import GRID_A, TOWN_A, TOWN_B, Clock, Story, ids, play, recording_watch


def start_ms() -> int:
    """Two hours ago on a minute, within one local day with the next 15 minutes."""
    t0 = (int(time.time() * 1000) - 2 * 3_600_000) // 60_000 * 60_000
    while day_of(t0) != day_of(t0 + 15 * 60_000):
        t0 -= 30 * 60_000
    return t0


@pytest.fixture
def played(r: redis.Redis, redis_url: str) -> tuple[Story, Store, History]:
    settings = dataclasses.replace(Settings(), redis_url=redis_url)
    store = Store(r, settings.prefix)
    story, _ = play(store, settings, redis_url, start_ms())
    return story, store, History(r, settings.prefix, settings.replay_days)


def east_m(record: dict[str, Any]) -> float:
    return round((record["lon"] - units.LON0) / (units.east(1000)[0] - units.LON0) * 1000)


def test_rpl001_the_wall_at_three_moments_is_what_the_history_says(played: Any) -> None:
    story, _, history = played
    for moment in story.moments:
        wall = history.wall_at(story.at(moment), None)
        assert wall is not None
        events = ids(wall["events"])
        assert {k: v["status"] for k, v in events.items()} == moment.events
        workers = ids(wall["workers"])
        assert {k: v["status"] for k, v in workers.items()} == moment.worker_status
        assert east_m(workers["W1"]) == moment.worker_east_m["W1"]
        assert sorted(a["subject_id"] for a in wall["alerts"]) == moment.alerts
        assert set(ids(wall["resources"])) == {"R1"} and set(ids(wall["cameras"])) == {"C1"}
        assert ids(wall["cameras"])["C1"]["online"] is (moment.offset < 500_000)
        stages = {t["id"]: t["stage"] for t in wall["tasks"]}
        assert stages.get("T-E1") == {90_000: "dispatched", 330_000: "dispatched",
                                      750_000: "verified"}[moment.offset]
    # before the first keyframe there is nothing to show
    assert history.wall_at(story.t0 - 1, None) is None


def test_rpl002_a_town_leader_rewinds_only_their_town(played: Any) -> None:
    story, _, history = played
    moment = story.moments[1]
    wall = history.wall_at(story.at(moment), TOWN_A)
    assert set(ids(wall["events"])) == {"E1", "E3"}
    assert set(ids(wall["workers"])) == {"W1"}
    assert [a["subject_id"] for a in wall["alerts"]] == ["E3"]
    other = history.wall_at(story.at(moment), TOWN_B)
    assert set(ids(other["events"])) == {"E2"} and set(ids(other["workers"])) == {"W2"}
    assert [a["subject_id"] for a in other["alerts"]] == ["W2"] and other["tasks"] == []


def test_rpl003_the_changes_after_a_moment_come_in_order_and_scoped(played: Any) -> None:
    story, _, history = played
    first, second = story.moments[0], story.moments[1]
    wall = history.wall_at(story.at(first), None)
    got = history.changes(wall["seq"], story.at(first), story.at(second), None)
    assert not got["more"] and got["to"] == story.at(second)
    seqs = [c[1] for c in got["changes"]]
    assert seqs == sorted(seqs) and seqs[0] > wall["seq"]
    times = [c[0] for c in got["changes"]]
    assert times == sorted(times) and story.at(first) <= times[0] <= times[-1] <= story.at(second)
    kinds = {(c[2], c[4].get("id")) for c in got["changes"]}
    assert ("event", "E3") in kinds and ("alert", story.alert_id) in kinds
    assert ("worker", "W2") in kinds
    mine = history.changes(wall["seq"], story.at(first), story.at(second), TOWN_A)
    assert ("worker", "W2") not in {(c[2], c[4].get("id")) for c in mine["changes"]}
    assert ("event", "E3") in {(c[2], c[4].get("id")) for c in mine["changes"]}
    # applying them to the first wall gives the second
    state = {name: ids(wall[name]) for name in h.LISTS}
    for change in got["changes"]:
        apply(state, [change[1], change[0], change[2], change[3], change[4]])
    again = visible(state, story.at(second))
    truth = history.wall_at(story.at(second), None)
    assert {k: v["status"] for k, v in ids(again["events"]).items()} == \
        {k: v["status"] for k, v in ids(truth["events"]).items()}


def test_rpl004_the_periods_actions_say_who_did_what_and_when(played: Any) -> None:
    story, _, history = played
    rows = history.actions(story.t0, story.end, None)
    got = [(r["action"], r["subject"], r["by"], r["ts"] - story.t0) for r in rows]
    assert got == [("task.dispatched", "T-E1", "zhihui", 60_000),
                   ("alert.ack", story.alert_id, "zhiban", 420_000),
                   ("task.arrived", "T-E1", "W1", 420_000),
                   ("task.verified", "T-E1", "zhiban", 700_000)]
    assert history.actions(story.t0, story.end, TOWN_B) == []  # no one acted in town B
    assert len(history.actions(story.t0, story.t0 + 300_000, TOWN_A)) == 1


def test_rpl005_moves_are_thinned_and_a_stop_is_kept(r: redis.Redis, redis_url: str) -> None:
    settings = dataclasses.replace(Settings(), redis_url=redis_url)
    store = Store(r, settings.prefix)
    t0 = start_ms()
    clock = Clock(t0)
    watch = recording_watch(settings, redis_url, clock, r)
    # a walker every 5 s for two minutes (1.5 m/s), then standing; a camera re-reporting
    for n in range(0, 25):
        clock.ms = t0 + n * 5000
        units.worker(store, "W9", 7.5 * n, ts=clock.ms, grid_id=GRID_A)
        units.put(store, "camera", "C9", *units.east(10), ts=clock.ms, status="online")
        watch.process()
    clock.ms = t0 + 3 * 60_000
    watch.tick()
    got = History(r, settings.prefix, 7).changes(0, t0, clock.ms, None)["changes"]
    walker = [c for c in got if c[4]["id"] == "W9"]
    cameras = [c for c in got if c[4]["id"] == "C9"]
    assert len(cameras) == 1  # its first report; the re-reports change nothing shown
    # 25 fixes in two minutes: the first, about one a minute, where it stopped
    assert 3 <= len(walker) <= 5
    # where it stopped, to within the 8 m a kept move must make
    metres_per_degree = 1 / (units.east(1)[0] - units.LON0)
    assert abs(walker[-1][4]["lon"] - units.east(7.5 * 24)[0]) * metres_per_degree < 8
    assert set(walker[1][4]) <= {"id", "lon", "lat", "ts", "grid_id"}  # a slim move


def test_rpl006_everything_expires_with_the_retention(played: Any) -> None:
    _, store, _ = played
    keys = store.r.keys(store.key("replay:*"))
    assert any(":k:" in k for k in keys) and any(":m:" in k for k in keys)
    assert any(":b:" in k for k in keys)
    for key in keys:
        if key.endswith("replay:cursor"):
            continue
        assert 0 < store.r.ttl(key) <= 7 * 86_400, key
    # a camera block shared by both keyframes is stored once
    heads = [store.r.get(store.key(f"replay:k:{t}")) for t in
             store.r.zrange(store.key("replay:keys"), 0, -1)]
    cams = [json.loads(head)["blocks"]["cameras"] for head in heads]
    assert len(cams) == 2 and cams[0] == cams[1]


def test_rpl007_a_watch_restarted_mid_minute_records_what_it_had_gathered(
        r: redis.Redis, redis_url: str) -> None:
    settings = dataclasses.replace(Settings(), redis_url=redis_url)
    store = Store(r, settings.prefix)
    t0 = start_ms()
    clock = Clock(t0)
    watch = recording_watch(settings, redis_url, clock, r)
    watch.tick()  # a keyframe
    clock.ms = t0 + 10_000
    units.event(store, "E9", 0, ts=clock.ms, grid_id=GRID_A)
    watch.process()  # gathered, not written: the minute is not over
    assert not r.exists(store.key(f"replay:m:{clock.ms // 60_000}"))
    # the first one died: its memory is gone
    again = recording_watch(settings, redis_url, clock, r)
    clock.ms = t0 + 2 * 60_000
    again.tick()
    wall = History(r, settings.prefix, 7).wall_at(t0 + 30_000, None)
    assert "E9" in ids(wall["events"])
