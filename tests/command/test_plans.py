"""Response plans: the shipped files, matching and ranking, and bad files reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dashboard import i18n, models
from dashboard.command.plans import (
    CALL_KINDS,
    PLANS_DIR,
    STEP_ROLES,
    PlanLibrary,
    SchemaError,
    plan_from_dict,
)

DAGU_TOWN = "370283007"      # 蓼兰镇, on the Dagu River
JIAOLAI_TOWN = "370283010"   # 田庄镇, on the Jiaolai River
CITY_TOWN = "370283001"      # 凤台街道, the city centre
HILL_TOWN = "370283013"      # 大泽山镇


def grid_in(town: str) -> str:
    return town + "001001"


@pytest.fixture(scope="module")
def lib() -> PlanLibrary:
    return PlanLibrary.load()


def event(etype: str, severity: int, town: str | None = CITY_TOWN, **extra: object) -> dict:
    ev: dict = {"id": "E1", "type": etype, "severity": severity,
                "category": models.category_of(etype), "lon": 119.9, "lat": 36.8,
                "ts": 1_763_880_000_000, "status": "reported"}
    if town is not None:
        ev["grid_id"] = grid_in(town)
        ev["town_id"] = town
    ev.update(extra)
    return ev


# (event type, severity, town, expected best plan): the table a commander would check.
BEST = [
    ("fire", 1, CITY_TOWN, "P-FIRE-01"),
    ("fire", 2, CITY_TOWN, "P-FIRE-01"),
    ("fire", 4, CITY_TOWN, "P-FIRE-02"),
    ("flood", 1, DAGU_TOWN, "P-FLOOD-01"),
    ("flood", 1, CITY_TOWN, "P-FLOOD-03"),
    ("rainstorm", 3, JIAOLAI_TOWN, "P-FLOOD-02"),
    ("rainstorm", 4, CITY_TOWN, "P-FLOOD-04"),
    ("geological_hazard", 2, HILL_TOWN, "P-GEO-01"),
    ("geological_hazard", 2, CITY_TOWN, "P-NATURAL-00"),
    ("forest_fire", 3, HILL_TOWN, "P-FOREST-01"),
    ("forest_fire", 3, CITY_TOWN, "P-FOREST-02"),
    ("traffic_accident", 3, CITY_TOWN, "P-TRAFFIC-02"),
    ("hazmat_leak", 2, CITY_TOWN, "P-HAZMAT-01"),
    ("power_outage", 4, CITY_TOWN, "P-UTILITY-01"),
    ("epidemic", 1, CITY_TOWN, "P-EPIDEMIC-01"),
    ("food_poisoning", 3, CITY_TOWN, "P-FOOD-01"),
    ("mass_incident", 2, CITY_TOWN, "P-MASS-01"),
    ("fight", 3, CITY_TOWN, "P-FIGHT-01"),
    ("drowning", 2, CITY_TOWN, "P-DROWN-01"),
    ("dispute", 4, CITY_TOWN, "P-DISPUTE-01"),
    ("illegal_parking", 4, CITY_TOWN, "P-PARKING-01"),
    ("street_vending", 3, CITY_TOWN, "P-VENDING-01"),
    ("garbage", 4, CITY_TOWN, "P-GARBAGE-01"),
    ("elderly_alone", 2, CITY_TOWN, "P-ELDERLY-01"),
    ("garbage", 1, CITY_TOWN, "P-GRID-00"),      # no garbage plan covers level I
    ("ufo_sighting", 3, CITY_TOWN, "P-GEN-00"),  # unknown type → category other → fallback
]


@pytest.mark.parametrize(("etype", "severity", "town", "expected"), BEST,
                         ids=[f"{b[0]}-{b[1]}-{b[2]}" for b in BEST])
def test_plan001_best_plan_per_event(lib: PlanLibrary, etype: str, severity: int, town: str,
                                     expected: str) -> None:
    matches = lib.match(event(etype, severity, town))
    assert matches, "the fallback always applies"
    assert matches[0].plan.id == expected, [(m.plan.id, m.score) for m in matches]
    for m in matches:
        assert m.reasons, m.plan.id
        for reason in m.reasons:
            assert set(reason) == set(i18n.LANGS) and all(reason.values())
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)


def test_plan002_reasons_name_the_fit(lib: PlanLibrary) -> None:
    matches = lib.match(event("fire", 1), limit=10)
    by_id = {m.plan.id: m for m in matches}
    assert by_id["P-FIRE-01"].reasons[0] == {"zh-CN": "事件类型相符：火灾",
                                              "en": "Event type matches: Fire"}
    assert by_id["P-ACCIDENT-00"].reasons[0]["zh-CN"] == "事件类别相符：事故灾难"
    assert by_id["P-GEN-00"].reasons[0]["en"] == "Generic fallback plan"
    flood = lib.match(event("flood", 1, DAGU_TOWN))[0]
    assert {"zh-CN": "适用于事发区域", "en": "Covers the event's area"} in flood.reasons


def test_plan003_type_beats_category_beats_fallback(lib: PlanLibrary) -> None:
    """Over every type and level, tiers never interleave, however tight a lower plan is."""
    for etype in models.EVENT_TYPES:
        for severity in (1, 2, 3, 4):
            for town in (CITY_TOWN, DAGU_TOWN, HILL_TOWN):
                matches = lib.match(event(etype, severity, town), limit=100)
                tiers = [0 if etype in m.plan.types else 1 if m.plan.categories else 2
                         for m in matches]
                assert tiers == sorted(tiers), (etype, severity, town)
                assert matches[-1].plan.id == "P-GEN-00"


def test_plan004_severity_outside_the_range_is_not_returned(lib: PlanLibrary) -> None:
    low = {m.plan.id for m in lib.match(event("fire", 4), limit=100)}
    high = {m.plan.id for m in lib.match(event("fire", 1), limit=100)}
    assert "P-FIRE-01" not in low and "P-FIRE-02" in low
    assert "P-FIRE-02" not in high and "P-FIRE-01" in high
    for m in lib.match(event("epidemic", 3), limit=100):
        assert 3 in m.plan.severities


def test_plan005_area_plans_only_inside_their_area(lib: PlanLibrary) -> None:
    inside = [m.plan.id for m in lib.match(event("flood", 1, DAGU_TOWN), limit=100)]
    outside = [m.plan.id for m in lib.match(event("flood", 1, CITY_TOWN), limit=100)]
    nowhere = [m.plan.id for m in lib.match(event("flood", 1, None), limit=100)]
    assert inside[:2] == ["P-FLOOD-01", "P-FLOOD-03"]
    assert "P-FLOOD-01" not in outside and "P-FLOOD-02" not in outside
    assert "P-FLOOD-01" not in nowhere and nowhere[0] == "P-FLOOD-03"
    # only a grid id (no town_id): the town is its prefix
    by_grid = lib.match({"type": "flood", "severity": 1, "grid_id": grid_in(DAGU_TOWN)})
    assert by_grid[0].plan.id == "P-FLOOD-01"


def test_plan006_limit_get_and_dicts(lib: PlanLibrary) -> None:
    assert len(lib.match(event("fire", 1), limit=1)) == 1
    assert lib.match(event("fire", 1), limit=0) == []
    m = lib.match(event("fire", 1))[0]
    doc = json.loads(json.dumps(m.to_dict(), ensure_ascii=False))
    assert set(doc) == {"plan", "score", "reasons"}
    assert doc["plan"]["id"] == "P-FIRE-01" and doc["plan"]["steps"][0]["role_name"]["zh-CN"]
    assert lib.get("P-FIRE-01") is m.plan and lib.get("P-NOPE") is None
    # an event with nothing usable still gets the fallback
    assert [x.plan.id for x in lib.match({})] == ["P-GEN-00"]


def test_plan007_shipped_plans_validate(lib: PlanLibrary) -> None:
    files = sorted(PLANS_DIR.glob("*.json"))
    assert lib.errors == []
    assert len(lib.plans) == len(files) >= 32
    for path in files:
        plan = plan_from_dict(json.loads(path.read_text(encoding="utf-8")))
        assert path.stem == plan.id
        assert {r.kind for r in plan.resources} <= set(CALL_KINDS)
        assert {s.role for s in plan.steps} <= set(STEP_ROLES)
    for role in STEP_ROLES:
        for lang in i18n.LANGS:
            assert i18n.t(f"plrole.{role}", lang) != f"plrole.{role}"


def test_plan008_coverage_of_the_taxonomy(lib: PlanLibrary) -> None:
    typed = {t for p in lib.plans for t in p.types}
    assert typed == set(models.EVENT_TYPES), set(models.EVENT_TYPES) - typed
    for cat in ("natural_disaster", "accident", "public_health", "social_security"):
        levels = {p.level for p in lib.plans if cat in p.categories
                  or any(models.category_of(t) == cat for t in p.types)}
        assert len(levels) >= 2, cat
    assert sum(p.is_fallback for p in lib.plans) == 1


def test_plan009_bad_files_reported_rest_load(tmp_path: Path) -> None:
    for name in ("P-FIRE-01.json", "P-GARBAGE-01.json", "P-GEN-00.json"):
        shutil.copy(PLANS_DIR / name, tmp_path / name)
    (tmp_path / "broken.json").write_text('{"id": "P-X-01", "name": ', encoding="utf-8")
    bad_kind = json.loads((PLANS_DIR / "P-FIRE-02.json").read_text(encoding="utf-8"))
    bad_kind["resources"][0]["kind"] = "tank"
    (tmp_path / "bad_kind.json").write_text(json.dumps(bad_kind), encoding="utf-8")
    dup = json.loads((PLANS_DIR / "P-FIRE-01.json").read_text(encoding="utf-8"))
    (tmp_path / "zz_dup.json").write_text(json.dumps(dup), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a plan", encoding="utf-8")

    lib = PlanLibrary.load(tmp_path)
    assert sorted(p.id for p in lib.plans) == ["P-FIRE-01", "P-GARBAGE-01", "P-GEN-00"]
    errors = {e.file: e.reason for e in lib.errors}
    assert set(errors) == {"broken.json", "bad_kind.json", "zz_dup.json"}
    assert "not valid JSON" in errors["broken.json"]
    assert "resources[0].kind" in errors["bad_kind.json"] and "tank" in errors["bad_kind.json"]
    assert "already used by P-FIRE-01.json" in errors["zz_dup.json"]
    assert lib.match(event("fire", 1))[0].plan.id == "P-FIRE-01"


def _good() -> dict:
    return json.loads((PLANS_DIR / "P-FIRE-01.json").read_text(encoding="utf-8"))


def _set(path: str, value: object) -> dict:
    doc = _good()
    target: object = doc
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]  # type: ignore[index]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is ...:
        del target[last]  # type: ignore[union-attr]
    else:
        target[last] = value  # type: ignore[index]
    return doc


SCHEMA_CASES = [
    ("id", "FIRE-01", "id:"),
    ("name", {"zh-CN": "火灾"}, "name.en"),
    ("level", 5, "level:"),
    ("level", True, "level:"),
    ("applies_to.types", ["volcano"], "unknown code 'volcano'"),
    ("applies_to.categories", ["weather"], "applies_to.categories"),
    ("applies_to.severities", [], "applies_to.severities"),
    ("applies_to.severities", [1, 1], "applies_to.severities"),
    ("applies_to.areas", ["Fengtai"], "not a town, community or grid code"),
    ("steps", [], "steps: must be a non-empty list"),
    ("steps.0.role", "wizard", "steps[0].role"),
    ("steps.0.limit_min", -1, "steps[0].limit_min"),
    ("steps.1.order", 1, "strictly increasing"),
    ("resources.0.count", 0, "resources[0].count"),
    ("resources.0.max_eta_s", "soon", "resources[0].max_eta_s"),
    ("applies_to", ..., "applies_to: must be an object"),
]


@pytest.mark.parametrize(("path", "value", "fragment"), SCHEMA_CASES,
                         ids=[c[0] + "=" + repr(c[1]) for c in SCHEMA_CASES])
def test_plan010_schema_errors_say_what(path: str, value: object, fragment: str) -> None:
    with pytest.raises(SchemaError) as info:
        plan_from_dict(_set(path, value))
    assert fragment in str(info.value)
