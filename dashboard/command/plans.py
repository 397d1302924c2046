"""Response plans (应急预案): load `data/plans/*.json`, validate them, match them to events.

A plan applies to an event when its type or category fits (or it is the generic fallback,
which lists neither), the event's severity is in its range and, when it names areas, the
event lies in one of them. `PlanLibrary.match` ranks what applies: a type match always
beats a category match, which always beats the fallback; within a tier a tighter plan
(fewer types, a narrower severity range, a named area that fits, its level equal to the
event's) scores higher. Every match says why, in both languages.

Loading is forgiving per file: a file that does not parse or breaks the schema becomes a
`PlanError(file, reason)` and the rest still load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dashboard import i18n, models
from dashboard.config import ROOT

PLANS_DIR: Final = ROOT / "data" / "plans"

# Who carries out a step (责任单位/岗位); display names are `plrole.<code>` in i18n.
STEP_ROLES: Final = (
    "commander", "duty_officer", "grid_worker", "community", "town", "volunteer", "patrol",
    "police", "fire", "medical", "health", "emergency", "rescue", "water", "city_mgmt",
    "sanitation", "housing", "natural_resources", "environment", "market", "agriculture",
    "civil_affairs", "petition", "judicial", "utility", "power", "gas", "enterprise", "drone",
)
# A plan may call for grid workers as well as the resource kinds of the feed protocol
# (docs/PROTOCOL.md).
CALL_KINDS: Final = (*models.RESOURCE_KINDS, "worker")
AREA_CODE_LENGTHS: Final = (9, 12, 15)  # town, community, grid (dashboard.city)

# Score tiers: the gaps exceed every bonus, so a tier never overtakes the one above it.
TIER_TYPE: Final = 100.0
TIER_CATEGORY: Final = 50.0
TIER_FALLBACK: Final = 10.0
BONUS_NARROW: Final = 10.0    # / number of types (or categories) the plan lists
BONUS_SEVERITY: Final = 3.0   # per severity level the plan leaves out
BONUS_AREA: Final = 20.0      # the plan names the event's area
BONUS_LEVEL: Final = 2.0      # the plan's response level equals the event's severity
ALL_SEVERITIES: Final = (1, 2, 3, 4)
# Reasons repeat for the same plan, tier, type and level: build them once (bounded).
REASON_CACHE_MAX: Final = 20_000

_LANGS: Final = i18n.LANGS


def _both(key: str, **kw: object) -> dict[str, str]:
    """The text of `key` in every language; a dict value is taken per language."""
    return {lang: i18n.t(key, lang, **{k: v[lang] if isinstance(v, dict) else v
                                       for k, v in kw.items()})
            for lang in _LANGS}


@dataclass(frozen=True)
class ResourceCall:
    """One line of a plan's call for forces: `count` units of `kind` within `max_eta_s`."""

    kind: str  # a resource kind of the feed protocol, or "worker" (the grid worker(s))
    count: int
    max_eta_s: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "max_eta_s": self.max_eta_s}


@dataclass(frozen=True)
class Step:
    """One step of the procedure (处置流程): who does what within how many minutes."""

    order: int
    role: str
    action: dict[str, str]
    limit_min: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"order": self.order, "role": self.role,
                "role_name": _both(f"plrole.{self.role}"), "action": dict(self.action),
                "limit_min": self.limit_min}


@dataclass(frozen=True)
class Plan:
    """A response plan; empty `types` and `categories` make it the generic fallback."""

    id: str
    name: dict[str, str]
    level: int
    types: tuple[str, ...]
    categories: tuple[str, ...]
    severities: tuple[int, ...]
    areas: tuple[str, ...]
    steps: tuple[Step, ...]
    resources: tuple[ResourceCall, ...]

    @property
    def is_fallback(self) -> bool:
        return not self.types and not self.categories

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": dict(self.name), "level": self.level,
            "types": list(self.types), "categories": list(self.categories),
            "severities": list(self.severities), "areas": list(self.areas),
            "steps": [s.to_dict() for s in self.steps],
            "resources": [r.to_dict() for r in self.resources],
        }


@dataclass(frozen=True)
class Match:
    """A plan that applies to an event, its score (higher is better) and why."""

    plan: Plan
    score: float
    reasons: list[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan.to_dict(), "score": round(self.score, 3),
                "reasons": [dict(r) for r in self.reasons]}


@dataclass(frozen=True)
class PlanError:
    """A plan file that could not be loaded, and why."""

    file: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}


class SchemaError(ValueError):
    """A plan document that breaks the schema (data/plans/README.md)."""


# --------------------------------------------------------------------------- validation

def _need(cond: bool, reason: str) -> None:
    if not cond:
        raise SchemaError(reason)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object, where: str) -> dict[str, str]:
    _need(isinstance(value, dict), f"{where}: must be an object {{\"zh-CN\": …, \"en\": …}}")
    assert isinstance(value, dict)
    for lang in _LANGS:
        text = value.get(lang)
        _need(isinstance(text, str) and bool(text.strip()),
              f"{where}.{lang}: must be a non-empty string")
    return {lang: str(value[lang]) for lang in _LANGS}


def _codes(value: object, where: str, known: tuple[str, ...] | None = None) -> tuple[str, ...]:
    _need(isinstance(value, list), f"{where}: must be a list")
    assert isinstance(value, list)
    for code in value:
        _need(isinstance(code, str) and bool(code), f"{where}: items must be non-empty strings")
        if known is not None:
            _need(code in known, f"{where}: unknown code {code!r}")
    _need(len(set(value)) == len(value), f"{where}: duplicate entries")
    return tuple(value)


def _opt_int(value: object, where: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    _need(_is_int(value) and low <= int(value) <= high,  # type: ignore[call-overload]
          f"{where}: must be an integer {low}–{high} or null")
    return int(value)  # type: ignore[call-overload]


def plan_from_dict(doc: object) -> Plan:
    """Validate one plan document and build the Plan; raises SchemaError with the reason."""
    _need(isinstance(doc, dict), "the file must hold one JSON object")
    assert isinstance(doc, dict)
    pid = doc.get("id")
    _need(isinstance(pid, str) and 3 <= len(pid) <= 64 and pid.startswith("P-")
          and all(c.isascii() and (c.isalnum() or c in "-_") for c in pid),
          "id: must be 'P-' followed by letters, digits, '-' or '_' (3–64 chars)")
    name = _text(doc.get("name"), "name")
    level = doc.get("level")
    _need(_is_int(level) and level in ALL_SEVERITIES, "level: must be an integer 1–4 (I–IV)")

    applies = doc.get("applies_to")
    _need(isinstance(applies, dict), "applies_to: must be an object")
    assert isinstance(applies, dict)
    types = _codes(applies.get("types", []), "applies_to.types", tuple(models.EVENT_TYPES))
    cats = _codes(applies.get("categories", []), "applies_to.categories", models.CATEGORIES)
    sev_raw = applies.get("severities")
    _need(isinstance(sev_raw, list) and bool(sev_raw)
          and all(_is_int(s) and s in ALL_SEVERITIES for s in sev_raw)
          and len(set(sev_raw)) == len(sev_raw),
          "applies_to.severities: must be a non-empty list of distinct integers 1–4")
    assert isinstance(sev_raw, list)
    areas = _codes(applies.get("areas", []), "applies_to.areas")
    for code in areas:
        _need(code.isdigit() and len(code) in AREA_CODE_LENGTHS,
              f"applies_to.areas: {code!r} is not a town, community or grid code")

    steps_raw = doc.get("steps")
    _need(isinstance(steps_raw, list) and bool(steps_raw), "steps: must be a non-empty list")
    assert isinstance(steps_raw, list)
    steps: list[Step] = []
    for i, raw in enumerate(steps_raw):
        where = f"steps[{i}]"
        _need(isinstance(raw, dict), f"{where}: must be an object")
        order = raw.get("order")
        _need(_is_int(order) and order >= 1, f"{where}.order: must be an integer ≥ 1")
        role = raw.get("role")
        _need(role in STEP_ROLES, f"{where}.role: unknown role {role!r}")
        steps.append(Step(order, role, _text(raw.get("action"), f"{where}.action"),
                          _opt_int(raw.get("limit_min"), f"{where}.limit_min", 1, 525_600)))
    orders = [s.order for s in steps]
    _need(orders == sorted(set(orders)), "steps: order must be strictly increasing")

    res_raw = doc.get("resources", [])
    _need(isinstance(res_raw, list), "resources: must be a list")
    assert isinstance(res_raw, list)
    calls: list[ResourceCall] = []
    for i, raw in enumerate(res_raw):
        where = f"resources[{i}]"
        _need(isinstance(raw, dict), f"{where}: must be an object")
        kind = raw.get("kind")
        _need(kind in CALL_KINDS, f"{where}.kind: unknown kind {kind!r}")
        count = raw.get("count")
        _need(_is_int(count) and 1 <= count <= 500, f"{where}.count: must be an integer 1–500")
        calls.append(ResourceCall(kind, count,
                                  _opt_int(raw.get("max_eta_s"), f"{where}.max_eta_s", 1, 86_400)))
    _need(len({c.kind for c in calls}) == len(calls), "resources: a kind appears twice")

    return Plan(id=pid, name=name, level=int(level), types=types, categories=cats,
                severities=tuple(sorted(sev_raw)), areas=areas, steps=tuple(steps),
                resources=tuple(calls))


# --------------------------------------------------------------------------- matching

def _event_places(event: dict[str, Any]) -> set[str]:
    """The area codes an event lies in: its town, community and grid, as far as known."""
    places: set[str] = set()
    for key in ("town_id", "community_id", "grid_id"):
        code = event.get(key)
        if isinstance(code, str) and code:
            places.add(code)
    grid = event.get("grid_id")
    if isinstance(grid, str):
        for n in AREA_CODE_LENGTHS:
            if len(grid) >= n:
                places.add(grid[:n])
    return places


@dataclass(frozen=True, slots=True)
class _Entry:
    """A plan with what matching needs precomputed."""

    plan: Plan
    base: float            # tier + narrowness + severity bonus, without area/level
    tier: str              # "type" | "category" | "fallback"
    severities: frozenset[int]
    areas: frozenset[str]


class PlanLibrary:
    """All loaded plans, indexed by event type and category for fast matching."""

    def __init__(self, plans: list[Plan], errors: list[PlanError] | None = None) -> None:
        self.plans: list[Plan] = []
        self.errors: list[PlanError] = list(errors or [])
        self._by_id: dict[str, Plan] = {}
        self._reason_cache: dict[tuple[str, str, str, int | None, bool],
                                 tuple[dict[str, str], ...]] = {}
        for plan in plans:
            if plan.id in self._by_id:
                self.errors.append(PlanError(plan.id, f"duplicate plan id {plan.id!r}"))
                continue
            self._by_id[plan.id] = plan
            self.plans.append(plan)
        self._build_index()

    @classmethod
    def load(cls, folder: Path = PLANS_DIR) -> PlanLibrary:
        """Every `*.json` in `folder` (sorted by name); bad files go to `errors`."""
        plans: list[Plan] = []
        errors: list[PlanError] = []
        seen: dict[str, str] = {}
        for path in sorted(Path(folder).glob("*.json")):
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                errors.append(PlanError(path.name, f"not valid JSON: {exc}"))
                continue
            try:
                plan = plan_from_dict(doc)
            except SchemaError as exc:
                errors.append(PlanError(path.name, str(exc)))
                continue
            if plan.id in seen:
                errors.append(PlanError(path.name, f"id {plan.id!r} already used by "
                                                   f"{seen[plan.id]}"))
                continue
            seen[plan.id] = path.name
            plans.append(plan)
        return cls(plans, errors)

    def get(self, plan_id: str) -> Plan | None:
        return self._by_id.get(plan_id)

    def _build_index(self) -> None:
        # (type or "" when no plan names it, category, level) → ranked candidates, built on
        # first use; bounded by the indexed types × categories × levels.
        self._ranked: dict[tuple[str, str, int | None], list[tuple[float, _Entry]]] = {}
        self._type_index: dict[str, list[_Entry]] = {}
        self._cat_index: dict[str, list[_Entry]] = {}
        self._fallback: list[_Entry] = []
        for plan in self.plans:
            sev_bonus = BONUS_SEVERITY * (len(ALL_SEVERITIES) - len(plan.severities))
            sev, areas = frozenset(plan.severities), frozenset(plan.areas)
            if plan.is_fallback:
                self._fallback.append(_Entry(plan, TIER_FALLBACK + sev_bonus, "fallback",
                                             sev, areas))
                continue
            if plan.types:
                entry = _Entry(plan, TIER_TYPE + BONUS_NARROW / len(plan.types) + sev_bonus,
                               "type", sev, areas)
                for code in plan.types:
                    self._type_index.setdefault(code, []).append(entry)
            if plan.categories:
                entry = _Entry(plan, TIER_CATEGORY + BONUS_NARROW / len(plan.categories)
                               + sev_bonus, "category", sev, areas)
                for code in plan.categories:
                    self._cat_index.setdefault(code, []).append(entry)

    def match(self, event: dict[str, Any], limit: int = 5) -> list[Match]:
        """The plans that apply to `event`, best first (at most `limit`)."""
        etype = event.get("type")
        etype = etype if isinstance(etype, str) else ""
        category = event.get("category")
        if not isinstance(category, str) or category not in models.CATEGORIES:
            category = models.category_of(etype)
        severity = event.get("severity")
        if not _is_int(severity) or severity not in ALL_SEVERITIES:
            severity = None  # unknown: no plan is excluded for it, none gets the level bonus
        if limit <= 0:
            return []
        key = (etype if etype in self._type_index else "", category, severity)
        ranked = self._ranked.get(key)
        if ranked is None:
            ranked = self._ranked[key] = self._rank(*key)
        # The list is in final order, each score assuming the plan's area fits; an area plan
        # either fits (and earns that score) or drops out, so the first `limit` that fit win.
        places: set[str] | None = None
        out: list[Match] = []
        for score, entry in ranked:
            in_area = False
            if entry.areas:
                if places is None:
                    places = _event_places(event)
                if entry.areas.isdisjoint(places):
                    continue
                in_area = True
            out.append(Match(entry.plan, score,
                             self._reasons(entry, etype, category, severity, in_area)))
            if len(out) >= limit:
                break
        return out

    def _rank(self, etype: str, category: str,
              severity: int | None) -> list[tuple[float, _Entry]]:
        """Every plan that may apply to events of this type, category and level, scored as if
        its area fits, best first. A plan listed by type and by category counts by its type."""
        seen: set[str] = set()
        ranked: list[tuple[float, _Entry]] = []
        for entries in (self._type_index.get(etype, ()), self._cat_index.get(category, ()),
                        self._fallback):
            for entry in entries:
                pid = entry.plan.id
                if pid in seen or (severity is not None and severity not in entry.severities):
                    continue
                seen.add(pid)
                score = entry.base + (BONUS_AREA if entry.areas else 0.0)
                if severity is not None and entry.plan.level == severity:
                    score += BONUS_LEVEL
                ranked.append((score, entry))
        ranked.sort(key=lambda s: (-s[0], s[1].plan.id))
        return ranked

    def _reasons(self, entry: _Entry, etype: str, category: str, severity: int | None,
                in_area: bool) -> list[dict[str, str]]:
        """Why `entry` applies, in both languages (fresh dicts; the texts are cached)."""
        key = (entry.plan.id, entry.tier, etype if entry.tier == "type" else category,
               severity, in_area)
        cached = self._reason_cache.get(key)
        if cached is None:
            if len(self._reason_cache) >= REASON_CACHE_MAX:
                self._reason_cache.clear()
            cached = self._reason_cache[key] = tuple(
                self._build_reasons(entry, etype, category, severity, in_area))
        return [dict(r) for r in cached]

    @staticmethod
    def _build_reasons(entry: _Entry, etype: str, category: str, severity: int | None,
                       in_area: bool) -> list[dict[str, str]]:
        plan = entry.plan
        reasons: list[dict[str, str]] = []
        if entry.tier == "type":
            reasons.append(_both("plan.reason.type", name=_type_name(etype)))
        elif entry.tier == "category":
            reasons.append(_both("plan.reason.category", name=_cat_name(category)))
        else:
            reasons.append(_both("plan.reason.fallback"))
        if severity is not None:
            if plan.severities == ALL_SEVERITIES:
                reasons.append(_both("plan.reason.any_severity"))
            else:
                reasons.append(_both("plan.reason.severity",
                                     levels={lang: _romans(plan.severities, lang)
                                             for lang in _LANGS},
                                     level=models.SEVERITIES[severity].roman))
        if in_area:
            reasons.append(_both("plan.reason.area"))
        elif not plan.areas:
            reasons.append(_both("plan.reason.citywide"))
        if severity is not None and plan.level == severity:
            reasons.append(_both("plan.reason.level", level=models.SEVERITIES[severity].roman))
        return reasons


def _type_name(code: str) -> dict[str, str]:
    key = f"type.{code}" if code in models.EVENT_TYPES else "type.other"
    return {lang: i18n.t(key, lang) for lang in _LANGS}


def _cat_name(code: str) -> dict[str, str]:
    return {lang: i18n.t(f"cat.{code}", lang) for lang in _LANGS}


def _romans(levels: tuple[int, ...], lang: str) -> str:
    sep = "、" if lang == "zh-CN" else ", "
    return sep.join(models.SEVERITIES[s].roman for s in levels)
