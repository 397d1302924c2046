"""The relay's core without sockets (feeds/fanout.py): routing, coalescing, resync, replay."""

from __future__ import annotations

import json
from typing import Any

from feeds.fanout import Client, Fanout

GRID_A = "370283001001001"
GRID_B = "370283002001001"


def client(scope: str | None = None, kinds: frozenset[str] | None = None,
           maxlen: int = 100, lag_s: float = 60.0) -> Client:
    return Client(None, maxlen, lag_s, "t", kinds, scope)


def delta(seq: int, kind: str, record: dict[str, Any], op: str = "upsert") -> dict[str, Any]:
    return {"type": "delta", "seq": seq, "kind": kind, "op": op, "data": record}


def sent(c: Client) -> list[dict[str, Any]]:
    return [json.loads(frame) for _, frame, _ in c.queue]


def entry(frame: dict[str, Any]) -> tuple[int, str, str, str]:
    return frame["seq"], frame["kind"], frame["op"], json.dumps(frame["data"])


def test_fan001_a_delta_goes_to_the_walls_of_its_kind_and_scope() -> None:
    fan = Fanout()
    city, town_a, town_b, alerts_only = (client(), client(GRID_A[:9]), client(GRID_B[:9]),
                                         client(kinds=frozenset({"alert"})))
    fan.clients.update((city, town_a, town_b, alerts_only))
    fan.route(delta(1, "event", {"id": "E1", "grid_id": GRID_A}))
    assert [f["data"]["id"] for f in sent(city)] == ["E1"]
    assert [f["data"]["id"] for f in sent(town_a)] == ["E1"]
    assert sent(town_b) == [] and sent(alerts_only) == []
    assert city.queue[0][1] is town_a.queue[0][1]  # encoded once
    assert fan.last_seq == 1


def test_fan002_moves_coalesce_and_flush_before_the_next_delta() -> None:
    fan = Fanout()
    wall = client()
    fan.clients.add(wall)
    fan.route(delta(1, "worker", {"id": "W1", "lon": 1}, "move"))
    fan.route(delta(2, "worker", {"id": "W1", "lon": 2}, "move"))
    fan.route(delta(3, "worker", {"id": "W2", "lon": 3}, "move"))
    assert sent(wall) == []
    fan.route(delta(4, "event", {"id": "E1"}))
    batch, event = sent(wall)
    assert batch["type"] == "batch" and batch["seq"] == 3
    assert [(i["data"]["id"], i["data"]["lon"]) for i in batch["items"]] == [("W1", 2), ("W2", 3)]
    assert event["seq"] == 4  # frames stay in sequence order
    fan.flush()
    assert len(sent(wall)) == 2  # nothing pending: no empty batch


def test_fan003_a_wall_that_falls_behind_is_resynced_not_waited_for() -> None:
    fan = Fanout()
    slow, fast = client(maxlen=3), client(maxlen=100)
    fan.clients.update((slow, fast))
    for seq in range(1, 6):
        fan.route(delta(seq, "event", {"id": f"E{seq}"}))
    assert slow.resync and not slow.queue
    assert len(fast.queue) == 5 and not fast.resync
    fan.route(delta(6, "event", {"id": "E6"}))
    assert not slow.queue  # a wall due for a snapshot is offered nothing more


def test_fan004_a_gap_the_log_covers_is_closed_from_it() -> None:
    fan = Fanout()
    wall = client()
    fan.clients.add(wall)
    fan.receive([delta(1, "event", {"id": "E1"})])
    published = [delta(4, "event", {"id": "E4"})]
    assert fan.gap(published)
    fan.catch_up(4, [entry(delta(2, "event", {"id": "E2"})),
                     entry(delta(3, "event", {"id": "E3"})), entry(published[0])], 100)
    fan.receive(published)  # already routed from the log: not twice
    assert [f["seq"] for f in sent(wall)] == [1, 2, 3, 4] and not wall.resync


def test_fan005_a_gap_the_log_lost_resyncs_everyone() -> None:
    fan = Fanout()
    walls = [client(), client(GRID_A[:9])]
    fan.clients.update(walls)
    fan.receive([delta(1, "event", {"id": "E1"})])
    fan.route(delta(2, "worker", {"id": "W1"}, "move"))
    fan.catch_up(90, [entry(delta(50, "event", {"id": "E50"}))], 100)  # 3..49 trimmed
    assert all(w.resync and not w.queue for w in walls)
    assert fan.last_seq == 90 and not fan.pending
    fan2 = Fanout()
    fan2.last_seq = 500
    fan2.clients.add(w := client())
    fan2.catch_up(3, [], 100)  # Redis was reset
    assert w.resync and fan2.last_seq == 3


def test_fan006_replay_cuts_to_scope_and_batches_moves() -> None:
    fan = Fanout()
    town = client(GRID_A[:9])
    log = [entry(delta(11, "worker", {"id": "W1", "grid_id": GRID_A}, "move")),
           entry(delta(12, "worker", {"id": "W1", "grid_id": GRID_A, "lon": 2}, "move")),
           entry(delta(13, "event", {"id": "EB", "grid_id": GRID_B})),
           entry(delta(14, "event", {"id": "EA", "grid_id": GRID_A}))]
    frames = [json.loads(f) for f in fan.replay(town, 10, 14, log, 100) or []]
    assert [f["type"] for f in frames] == ["batch", "delta"]
    assert frames[0]["items"][0]["data"]["lon"] == 2 and frames[1]["data"]["id"] == "EA"
    assert town.skip_upto == 14
    assert fan.replay(town, 10, 14, log[1:], 100) is None  # 11 was trimmed
    assert fan.replay(town, 20, 14, [], 100) is None  # the wall knows more: Redis reset
    assert fan.replay(town, 10, 14, log, 4) is None  # too long: a snapshot is cheaper
    assert fan.replay(town, 14, 14, [], 100) == []  # nothing missed


def test_fan007_video_frames_are_masked_per_scope() -> None:
    fan = Fanout()
    fan.route(delta(1, "camera", {"id": "CA", "grid_id": GRID_A}))
    fan.route(delta(2, "camera", {"id": "CB", "grid_id": GRID_B}))
    town, city = client(GRID_A[:9]), client()
    fan.clients.update((town, city))
    fan.route(delta(3, "video", {"id": "wall", "tiles": ["CA", "CB", None]}))
    mine = next(f for f in sent(town) if f.get("kind") == "video")
    whole = next(f for f in sent(city) if f.get("kind") == "video")
    assert mine["data"]["tiles"] == ["CA", None, None]
    assert whole["data"]["tiles"] == ["CA", "CB", None]
