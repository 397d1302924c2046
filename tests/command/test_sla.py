"""Time limits and yellow/red cards at exact moments, with a controlled clock."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dashboard import i18n, models
from dashboard.command.sla import SLA_PATH, Deadlines, Limits, SlaError

T0 = 1_763_880_000_000  # the event's first report
RATIO = 0.8


@pytest.fixture(scope="module")
def sla() -> Deadlines:
    return Deadlines.load()


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(SLA_PATH.read_text(encoding="utf-8"))


def event(etype: str = "fire", severity: int = 3, status: str = "reported") -> dict:
    return {"id": "E1", "type": etype, "severity": severity,
            "category": models.category_of(etype), "ts": T0 + 5000, "first_ts": T0,
            "status": status}


def task(dispatched: int, *stages: tuple[str, int], stage: str | None = None) -> dict:
    history = [{"ts": dispatched, "stage": "dispatched", "by": "zhang", "note": ""}]
    history += [{"ts": ts, "stage": s, "by": "W0001", "note": ""} for s, ts in stages]
    return {"id": "T1", "event_id": "E1", "ts": dispatched, "by": "zhang",
            "stage": stage or history[-1]["stage"],
            "assignees": [{"id": "W0001", "kind": "worker", "stage": history[-1]["stage"]}],
            "history": history}


def colours(cards: list) -> dict[str, str]:
    return {c.stage: c.color for c in cards}


def test_sla001_limits_type_then_category_then_default(sla: Deadlines, raw: dict) -> None:
    fire = raw["types"]["fire"]
    assert sla.limits(event("fire", 3)) == Limits(fire["dispatch_s"], fire["arrive_s"],
                                                   fire["handle_s"])
    # garbage lists arrive and handle only: dispatch comes from its category
    garbage = sla.limits(event("garbage", 4))
    assert garbage.dispatch_s == raw["categories"]["grid_governance"]["dispatch_s"]
    assert garbage.handle_s == raw["types"]["garbage"]["handle_s"]
    # an unknown type: category "other"
    other = raw["categories"]["other"]
    assert sla.limits(event("ufo", 4)).arrive_s == other["arrive_s"]
    # no category entry at all: the default
    bare = Deadlines.from_dict({"default": raw["default"]})
    assert bare.limits(event("fire", 4)).handle_s == raw["default"]["handle_s"]


def test_sla002_tighter_for_levels_one_and_two(sla: Deadlines, raw: dict) -> None:
    base = sla.limits(event("fight", 3))
    for level in (1, 2):
        factor = raw["severity_multipliers"][str(level)]
        assert factor < 1
        tight = sla.limits(event("fight", level))
        assert tight.arrive_s == round(base.arrive_s * factor) < base.arrive_s
        assert tight.handle_s == round(base.handle_s * factor)


def moments(limit_s: int) -> list[tuple[str, int, str | None]]:
    """(label, ms after the start, expected colour) around the yellow point and the limit."""
    yellow_at = math.ceil(limit_s * 1000 * RATIO)
    return [("start", 0, None), ("just before yellow", yellow_at - 1, None),
            ("at yellow", yellow_at, "yellow"), ("just before limit", limit_s * 1000 - 1,
                                                 "yellow"),
            ("at limit", limit_s * 1000, "red"), ("long after", limit_s * 1000 * 5, "red")]


@pytest.mark.parametrize("severity", [1, 3])
def test_sla003_dispatch_card_at_exact_moments(sla: Deadlines, severity: int) -> None:
    ev = event("fire", severity)
    limit_s = sla.limits(ev).dispatch_s
    for label, after, expected in moments(limit_s):
        cards = sla.cards(ev, None, T0 + after, RATIO)
        assert colours(cards).get("dispatch") == expected, label
        for card in cards:
            assert card.deadline_ms == T0 + limit_s * 1000
            assert set(card.message) == set(i18n.LANGS) and all(card.message.values())
    # once dispatched (even late) there is no dispatch card
    late = task(T0 + limit_s * 2000)
    assert "dispatch" not in colours(sla.cards(ev, late, T0 + limit_s * 2000 + 1, RATIO))


def test_sla004_arrive_and_handle_count_from_dispatch(sla: Deadlines) -> None:
    ev = event("dispute", 4, status="dispatched")
    lim = sla.limits(ev)
    sent = T0 + 60_000
    t = task(sent)
    for label, after, expected in moments(lim.arrive_s):
        assert colours(sla.cards(ev, t, sent + after, RATIO)).get("arrive") == expected, label
    for label, after, expected in moments(lim.handle_s):
        got = colours(sla.cards(ev, t, sent + after, RATIO)).get("handle")
        assert got == expected, label


def test_sla005_no_card_once_the_stage_is_reached(sla: Deadlines) -> None:
    ev = event("fight", 3, status="in_progress")
    lim = sla.limits(ev)
    sent = T0 + 30_000
    arrived = task(sent, ("accepted", sent + 10_000), ("arrived", sent + 20_000))
    late = sent + lim.arrive_s * 1000 * 3
    assert "arrive" not in colours(sla.cards(ev, arrived, late, RATIO))
    # the handle clock still runs
    assert colours(sla.cards(ev, arrived, sent + lim.handle_s * 1000, RATIO)) == {"handle": "red"}
    # an assignee's own stage counts as well as the history
    by_assignee = task(sent)
    by_assignee["assignees"][0]["stage"] = "arrived"
    assert "arrive" not in colours(sla.cards(ev, by_assignee, late, RATIO))
    handled = task(sent, ("arrived", sent + 1), ("handled", sent + 2))
    assert sla.cards(ev, handled, sent + lim.handle_s * 5000, RATIO) == []


@pytest.mark.parametrize("status", ["handled", "verified", "closed", "cancelled"])
def test_sla006_done_events_get_no_cards(sla: Deadlines, status: str) -> None:
    ev = event("fire", 1, status=status)
    assert sla.cards(ev, None, T0 + 10**9, RATIO) == []
    assert sla.cards(ev, task(T0 + 1000), T0 + 10**9, RATIO) == []


def test_sla007_rework_restarts_the_handle_clock(sla: Deadlines) -> None:
    ev = event("garbage", 4, status="in_progress")
    lim = sla.limits(ev)
    sent = T0 + 1000
    reopened = sent + lim.handle_s * 1000 * 2
    t = task(sent, ("arrived", sent + 5), ("handled", sent + 10), ("rework", reopened),
             stage="rework")
    for label, after, expected in moments(lim.handle_s):
        assert colours(sla.cards(ev, t, reopened + after, RATIO)).get("handle") == expected, label


def test_sla008_deadlines_and_messages(sla: Deadlines) -> None:
    ev = event("fire", 2)
    lim = sla.limits(ev)
    sent = T0 + 20_000
    assert sla.deadlines(ev, sent) == {"dispatch": T0 + lim.dispatch_s * 1000,
                                       "arrive": sent + lim.arrive_s * 1000,
                                       "handle": sent + lim.handle_s * 1000}
    assert sla.deadlines(ev, None)["arrive"] == T0 + lim.arrive_s * 1000
    red = sla.cards(ev, None, T0 + lim.dispatch_s * 1000 + 61_000, RATIO)[0]
    assert red.message["zh-CN"].startswith("红牌督办：派单超时")
    assert red.message["en"].startswith("Red card: dispatch overdue")
    assert red.to_dict()["color"] == "red"
    # at the very moment a limit passes, a red card is over by a second, never by nothing
    now = sla.cards(ev, None, T0 + lim.dispatch_s * 1000, RATIO)[0]
    assert now.color == "red" and now.message["zh-CN"].endswith("已超1秒）")
    assert now.message["en"].endswith(", 1 s over)")


BAD_FILES = [
    ("not json", "{", "cannot read"),
    ("no default", {"types": {}}, "default: must be an object"),
    ("missing field", {"default": {"dispatch_s": 1, "arrive_s": 1}}, "default.handle_s"),
    ("zero", {"default": {"dispatch_s": 0, "arrive_s": 1, "handle_s": 1}}, "dispatch_s"),
    ("bad type", {"default": {"dispatch_s": 1, "arrive_s": 1, "handle_s": 1},
                  "types": {"volcano": {}}}, "unknown event type 'volcano'"),
    ("bad multiplier", {"default": {"dispatch_s": 1, "arrive_s": 1, "handle_s": 1},
                        "severity_multipliers": {"1": -1}}, "severity_multipliers.1"),
]


@pytest.mark.parametrize(("label", "content", "fragment"), BAD_FILES,
                         ids=[b[0] for b in BAD_FILES])
def test_sla009_bad_file_says_why(tmp_path: Path, label: str, content: object,
                                  fragment: str) -> None:
    path = tmp_path / "sla.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content),
                    encoding="utf-8")
    with pytest.raises(SlaError) as info:
        Deadlines.load(path)
    assert fragment in str(info.value), label


def test_sla020_cards_already_raised_are_left_out(sla: Deadlines) -> None:
    """The watch passes the (stage, colour) pairs it raised: those cards are not built again
    (their texts in both languages were most of a tick for long-overdue events); the others
    are as without `known`."""
    ev = event("fire", 3)
    sent = T0 + 60_000
    t = task(sent)
    lim = sla.limits(ev)
    late = sent + max(lim.arrive_s, lim.handle_s) * 2000  # both stages red
    everything = sla.cards(ev, t, late, RATIO)
    assert colours(everything) == {"arrive": "red", "handle": "red"}
    left = sla.cards(ev, t, late, RATIO, known={("arrive", "red")})
    assert colours(left) == {"handle": "red"}
    assert left[0] == next(c for c in everything if c.stage == "handle")
    # a yellow raised does not hide the red that follows
    yellow_then = sla.cards(ev, None, T0 + lim.dispatch_s * 1000, RATIO,
                            known={("dispatch", "yellow")})
    assert colours(yellow_then) == {"dispatch": "red"}
    assert sla.cards(ev, None, T0 + lim.dispatch_s * 1000 - 1, RATIO,
                     known={("dispatch", "yellow")}) == []
