"""The translation table is complete: both languages for every key, a label for every code."""

from __future__ import annotations

import re

import pytest

from dashboard import i18n, models

# Prefix in the table for each tuple of codes in models.py.
CODE_SETS: list[tuple[str, tuple[str, ...]]] = [
    ("kind", models.KINDS),
    ("src", models.SOURCES),
    ("evst", models.EVENT_STATUSES),
    ("wkst", models.WORKER_STATUSES),
    ("rsk", models.RESOURCE_KINDS),
    ("rsst", models.RESOURCE_STATUSES),
    ("stream", models.STREAM_TYPES),
    ("fbst", models.FEEDBACK_STAGES),
    ("crs", models.CRS_CODES),
    ("cat", models.CATEGORIES),
    ("type", tuple(models.EVENT_TYPES)),
    ("sev", tuple(str(level) for level in models.SEVERITIES)),
]


def test_every_key_has_both_languages() -> None:
    zh, en = i18n.table_for("zh-CN"), i18n.table_for("en")
    assert set(zh) == set(en) == set(i18n.known_keys())
    for key in i18n.known_keys():
        assert zh[key].strip(), f"{key}: empty zh-CN"
        assert en[key].strip(), f"{key}: empty en"


def test_placeholders_match_between_languages() -> None:
    zh, en = i18n.table_for("zh-CN"), i18n.table_for("en")
    field = r"\{(\w+)(?:\|[^{}|]*\|[^{}|]*)?\}"  # {name} or a plural {name|one|other}
    for key in i18n.known_keys():
        assert set(re.findall(field, zh[key])) == set(re.findall(field, en[key])), key


def test_vw010_counts_take_the_singular_at_one() -> None:
    """'1 tiles' was wrong: English picks the form by the count, Chinese reads naturally."""
    assert i18n.t("vw.grid_n", "en", n=1) == "1 tile"
    assert i18n.t("vw.grid_n", "en", n=4) == "4 tiles"
    assert i18n.t("vw.grid_n", "zh-CN", n=1) == "单画面"
    assert i18n.t("vw.grid_n", "zh-CN", n=16) == "16画面"
    assert i18n.t("video.count", "en", n="1") == "1 camera"
    assert i18n.t("video.count", "en", n="1,204") == "1,204 cameras"
    assert i18n.t("video.count", "zh-CN", n=1) == "共1路"
    assert i18n.t("ck.patrol_of", "en", visited=0, grids=1) == "0 of 1 grid"
    # a name the caller does not give stays visible, as in the browser
    assert i18n.fill("{n|# tile|# tiles} · {by}", {"n": 9}) == "9 tiles · {by}"


def test_vw011_no_english_count_meets_a_bare_plural_noun() -> None:
    """Every "{n} <noun>s" in English has its singular form (the plural syntax)."""
    en = i18n.table_for("en")
    bare = {key: text for key, text in en.items()
            if re.search(r"\{\w+\} (?:[a-z]+ )?(?:tiles|cameras|notes|alarms|points|grids|"
                         r"events|units|workers|vehicles)\b", text)}
    assert bare == {}


@pytest.mark.parametrize(("prefix", "codes"), CODE_SETS, ids=[p for p, _ in CODE_SETS])
def test_every_model_code_has_a_label(prefix: str, codes: tuple[str, ...]) -> None:
    missing = [c for c in codes if f"{prefix}.{c}" not in i18n.known_keys()]
    assert missing == [], f"no label for {prefix}: {missing}"


def test_every_category_of_every_type_is_labelled() -> None:
    for category in set(models.EVENT_TYPES.values()):
        assert f"cat.{category}" in i18n.known_keys()


def test_severity_names_are_the_national_levels() -> None:
    assert [i18n.t(f"sev.{n}") for n in (1, 2, 3, 4)] == ["特别重大", "重大", "较大", "一般"]
    assert i18n.t("sev.level", "zh-CN", roman="II") == "II级"
    assert i18n.t("sev.level", "en", roman="II") == "Level II"


def test_chinese_is_the_default_and_english_is_chosen_loosely() -> None:
    assert i18n.t("kpi.open") == "未办结"
    assert i18n.t("kpi.open", "en") == "Open"
    assert i18n.t("kpi.open", "en-US") == "Open"
    assert i18n.t("kpi.open", "fr") == "未办结"
    assert i18n.normalise_lang(None) == "zh-CN"
    assert i18n.normalise_lang("EN") == "en"


def test_unknown_key_shows_itself() -> None:
    assert i18n.t("no.such.key", "en") == "no.such.key"


def test_placeholders_are_filled() -> None:
    assert i18n.t("conn.reconnecting", "zh-CN", n=3) == "重连中（第3次）"
    assert i18n.t("conn.reconnecting", "en", n=3) == "Reconnecting (attempt 3)"
