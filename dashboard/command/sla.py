"""Time limits (处置时限) per event type and the yellow/red cards (黄牌预警、红牌督办).

Three stages are timed, each from its own start:

- dispatch: from the event's first report (`first_ts`, else `ts`) until the task's `ts`;
- arrive:   from the dispatch until the first `arrived` in the task's history;
- handle:   from the dispatch (or the last `rework`) until `handled`.

Limits come from `data/sla.json`, stage by stage: the event type's entry, then its
category's, then the default; then times the severity multiplier (under 1 for levels I–II).
`Deadlines.cards` is pure: the same event, task and clock give the same cards.
"""

from __future__ import annotations

import json
import math
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dashboard import i18n, models
from dashboard.config import ROOT

SLA_PATH: Final = ROOT / "data" / "sla.json"

STAGES: Final = ("dispatch", "arrive", "handle")
_FIELDS: Final = {"dispatch": "dispatch_s", "arrive": "arrive_s", "handle": "handle_s"}
# Once the event is here nothing is pending any more.
_DONE_STATUSES: Final = frozenset({"handled", "verified", "closed", "cancelled"})
_ARRIVED: Final = frozenset({"arrived", "handled"})
_TASK_HANDLED: Final = frozenset({"handled", "closed"})
MAX_LIMIT_S: Final = 366 * 86400


@dataclass(frozen=True)
class Limits:
    """The time allowed for each stage, in seconds."""

    dispatch_s: int
    arrive_s: int
    handle_s: int

    def of(self, stage: str) -> int:
        return int(getattr(self, _FIELDS[stage]))


@dataclass(frozen=True)
class Card:
    """A yellow (most of the limit used) or red (limit passed) card for one stage."""

    color: str  # "yellow" | "red"
    stage: str  # "dispatch" | "arrive" | "handle"
    deadline_ms: int
    message: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"color": self.color, "stage": self.stage, "deadline_ms": self.deadline_ms,
                "message": dict(self.message)}


class SlaError(ValueError):
    """`data/sla.json` is missing a field or holds a bad value."""


def _stage_limits(raw: object, where: str, *, complete: bool) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise SlaError(f"{where}: must be an object")
    out: dict[str, int] = {}
    for field in _FIELDS.values():
        value = raw.get(field)
        if value is None:
            if complete:
                raise SlaError(f"{where}.{field}: required")
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LIMIT_S:
            raise SlaError(f"{where}.{field}: must be an integer 1–{MAX_LIMIT_S} (seconds)")
        out[field] = value
    unknown = set(raw) - set(_FIELDS.values())
    if unknown:
        raise SlaError(f"{where}: unknown fields {sorted(unknown)}")
    return out


def _int_ms(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return int(value)


class Deadlines:
    """The time limits of `data/sla.json` and the cards they give."""

    def __init__(self, default: dict[str, int], categories: dict[str, dict[str, int]],
                 types: dict[str, dict[str, int]], multipliers: dict[int, float]) -> None:
        self.default = default
        self.categories = categories
        self.types = types
        self.multipliers = multipliers
        self._cache: dict[tuple[str, str, int | None], Limits] = {}

    @classmethod
    def load(cls, path: Path = SLA_PATH) -> Deadlines:
        """Read and check the file; raises SlaError (a ValueError) with the reason."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SlaError(f"{Path(path).name}: cannot read: {exc}") from exc
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: object) -> Deadlines:
        if not isinstance(doc, dict):
            raise SlaError("the file must hold one JSON object")
        default = _stage_limits(doc.get("default"), "default", complete=True)
        cats_raw = doc.get("categories", {})
        types_raw = doc.get("types", {})
        if not isinstance(cats_raw, dict) or not isinstance(types_raw, dict):
            raise SlaError("categories and types must be objects")
        categories = {}
        for code, raw in cats_raw.items():
            if code not in models.CATEGORIES:
                raise SlaError(f"categories: unknown category {code!r}")
            categories[code] = _stage_limits(raw, f"categories.{code}", complete=False)
        types = {}
        for code, raw in types_raw.items():
            if code not in models.EVENT_TYPES:
                raise SlaError(f"types: unknown event type {code!r}")
            types[code] = _stage_limits(raw, f"types.{code}", complete=False)
        mult_raw = doc.get("severity_multipliers", {})
        if not isinstance(mult_raw, dict):
            raise SlaError("severity_multipliers: must be an object")
        multipliers: dict[int, float] = {}
        for level, value in mult_raw.items():
            if level not in {str(s) for s in models.SEVERITIES}:
                raise SlaError(f"severity_multipliers: unknown level {level!r}")
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not 0 < value <= 10):
                raise SlaError(f"severity_multipliers.{level}: must be a number in (0, 10]")
            multipliers[int(level)] = float(value)
        return cls(default, categories, types, multipliers)

    def limits(self, event: dict[str, Any]) -> Limits:
        """By type, then category, then default (per stage); tighter for severity 1–2."""
        etype = event.get("type") if isinstance(event.get("type"), str) else ""
        category = event.get("category")
        if not isinstance(category, str) or category not in models.CATEGORIES:
            category = models.category_of(str(etype))
        severity = event.get("severity")
        sev = severity if isinstance(severity, int) and severity in self.multipliers else None
        key = (str(etype), category, sev)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        by_type = self.types.get(str(etype), {})
        by_cat = self.categories.get(category, {})
        factor = self.multipliers.get(sev, 1.0) if sev is not None else 1.0
        values = {}
        for field in _FIELDS.values():
            base = by_type.get(field, by_cat.get(field, self.default[field]))
            values[field] = max(1, round(base * factor))
        limits = Limits(**values)
        if len(self._cache) < 4096:  # types × categories × levels; bounded anyway
            self._cache[key] = limits
        return limits

    def deadlines(self, event: dict[str, Any], dispatched_ms: int | None) -> dict[str, int]:
        """{"dispatch", "arrive", "handle"} deadlines in epoch ms.

        Arrive and handle count from `dispatched_ms`; before a dispatch they count from the
        report, which is the earliest they could be.
        """
        lim = self.limits(event)
        start = _event_start(event) or 0
        from_ms = dispatched_ms if dispatched_ms is not None else start
        return {"dispatch": start + lim.dispatch_s * 1000,
                "arrive": from_ms + lim.arrive_s * 1000,
                "handle": from_ms + lim.handle_s * 1000}

    def cards(self, event: dict[str, Any], task: dict[str, Any] | None, now_ms: int,
              yellow_ratio: float, known: Container[tuple[str, str]] = ()) -> list[Card]:
        """Cards for the stages still pending: yellow from `yellow_ratio` of the limit, red
        from the whole limit. None once a stage is reached or the event is done. A card
        whose (stage, colour) is in `known` (raised already) is left out: its texts in both
        languages were most of a watch tick's time for an event long overdue."""
        if event.get("status") in _DONE_STATUSES:
            return []
        if task is not None and task.get("stage") in _TASK_HANDLED:
            return []
        lim = self.limits(event)
        pending: list[tuple[str, int]] = []  # (stage, start ms)
        dispatched = _int_ms(task.get("ts")) if task is not None else None
        if dispatched is None:
            start = _event_start(event)
            if start is not None:
                pending.append(("dispatch", start))
        else:
            history = task.get("history") if isinstance(task, dict) else None
            history = history if isinstance(history, list) else []
            if not _arrived(task, history):
                pending.append(("arrive", dispatched))
            handle_from = _handle_start(history, dispatched)
            if handle_from is not None:
                pending.append(("handle", handle_from))
        out: list[Card] = []
        for stage, start in pending:
            card = _card(stage, start, lim.of(stage), now_ms, yellow_ratio, known)
            if card is not None:
                out.append(card)
        return out


def _event_start(event: dict[str, Any]) -> int | None:
    first = _int_ms(event.get("first_ts"))
    return first if first is not None else _int_ms(event.get("ts"))


def _arrived(task: dict[str, Any], history: list[Any]) -> bool:
    """Arrival is reached when the history or any assignee says arrived (or handled)."""
    if any(isinstance(h, dict) and h.get("stage") in _ARRIVED for h in history):
        return True
    assignees = task.get("assignees")
    return isinstance(assignees, list) and any(
        isinstance(a, dict) and a.get("stage") in _ARRIVED for a in assignees)


def _handle_start(history: list[Any], dispatched: int) -> int | None:
    """When the handle clock started (None once handled): the dispatch, or the last rework.

    A failed verification reopens the task at `rework`; the handle limit then runs again.
    """
    start: int | None = dispatched
    for entry in history:
        if not isinstance(entry, dict):
            continue
        stage = entry.get("stage")
        if stage == "handled":
            start = None
        elif stage == "rework":
            start = _int_ms(entry.get("ts")) or dispatched
    return start


def _card(stage: str, start_ms: int, limit_s: int, now_ms: int,
          yellow_ratio: float, known: Container[tuple[str, str]] = ()) -> Card | None:
    limit_ms = limit_s * 1000
    deadline = start_ms + limit_ms
    elapsed = now_ms - start_ms
    if now_ms >= deadline:
        if (stage, "red") in known:
            return None
        over = _duration(max(1000, now_ms - deadline))  # past the limit: never "0 s over"
        message = {lang: i18n.t("sla.red", lang, stage=i18n.t(f"sla.stage.{stage}", lang),
                                limit=_duration(limit_ms)[lang], over=over[lang])
                   for lang in i18n.LANGS}
        return Card("red", stage, deadline, message)
    if elapsed < math.ceil(limit_ms * yellow_ratio) or (stage, "yellow") in known:
        return None
    pct = int(elapsed * 100 // limit_ms)
    left = _duration(deadline - now_ms)
    message = {lang: i18n.t("sla.yellow", lang, stage=i18n.t(f"sla.stage.{stage}", lang),
                            limit=_duration(limit_ms)[lang], pct=pct, left=left[lang])
               for lang in i18n.LANGS}
    return Card("yellow", stage, deadline, message)


def _duration(ms: int) -> dict[str, str]:
    """A span as the wall writes it (dur.* in i18n), in both languages."""
    s = max(0, ms) // 1000
    if s < 60:
        key, kw = "dur.seconds", {"n": s}
    elif s < 3600:
        key, kw = "dur.minutes", {"n": s // 60}
    elif s < 86400:
        key, kw = "dur.hours", {"h": s // 3600, "m": s % 3600 // 60}
    else:
        key, kw = "dur.days", {"d": s // 86400, "h": s % 86400 // 3600}
    return {lang: i18n.t(key, lang, **kw) for lang in i18n.LANGS}
