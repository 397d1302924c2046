"""One language per page, in what the server sends (README, "Languages"): the exports in
English have English headers and English names for every unit, category, type, source and
status, while the feed's own words (titles, addresses) stay as sent; the figures, the
event's area and the desk's alarms carry each unit's English name; alerts carry their text
in every language with the feed's words apart.

Feature codes: lang003 the CSV and the xlsx export in en, every row of the fixture history;
lang004 the same export in zh keeps Chinese names; lang005 the figures carry `name_en` for
the scope, its parents and its children; lang006 the city's units: every town, community and
grid has an English name, unique within its parent; lang007 an alert's texts in both
languages keep the feed's title apart, and a raised critical alert stores them; lang008 the
printable handover in English: no Chinese but the feed's words, which it marks; lang009
alerts raised before alerts carried every language get their texts where the message reads
back (the watch does it on start), the rest stay as stored and are marked as data; lang010
a stats answer cached before `name_en` is not served after the upgrade.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
import redis

from dashboard.archive.events import Archive
from dashboard.archive.stats import EXPORT_COLUMNS, Figures, export_header
from dashboard.city import load_city
from dashboard.command.alerts import Alerts, alert_text, alert_texts, fill
from dashboard.config import Settings
from dashboard.i18n import t
from dashboard.store import Store

from ..cockpit_util import by_hand, load_history, now_ms
from .test_stats import client_for, stats_app

HAN = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
CITY = load_city()
# the columns that are the feed's words, as sent
FEED_COLUMNS = ("title", "address")


@pytest.fixture
def app(redis_url: str, r: redis.Redis) -> Any:
    load_history(r)
    Archive(Store(r), Settings()).run(now_ms())  # half archived, half live: both exported
    return stats_app(redis_url, now_ms, stats_min_age_s=0.0)


def export_rows(client: Any, fmt: str, lang: str) -> list[list[Any]]:
    res = client.get(f"/api/export?format={fmt}&from=2025-01-01&lang={lang}")
    assert res.status_code == 200, res.get_data(as_text=True)
    if fmt == "csv":
        return list(csv.reader(io.StringIO(res.get_data().decode("utf-8-sig"))))
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(res.get_data()), read_only=True).active
    return [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_lang003_export_in_english_names_everything_in_english(app: Any, r: redis.Redis,
                                                               fmt: str) -> None:
    table = export_rows(client_for(app, r, "leader"), fmt, "en")
    header, rows = table[0], [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in table[1:]]
    assert header == export_header("en") and header[:2] == ["Event ID", "Reported at"]
    assert not [h for h in header if HAN.search(str(h))]
    hands = {h.id: h for h in by_hand()}
    assert sorted(row["id"] for row in rows) == sorted(hands)
    for row in rows:
        h = hands[row["id"]]
        assert row["town_name"] == CITY.unit(h.town).name_en  # type: ignore[union-attr]
        assert row["community_name"] == CITY.unit(h.community).name_en  # type: ignore[union-attr]
        assert row["grid_name"] == CITY.unit(h.grid).name_en  # type: ignore[union-attr]
        assert row["category_name"] == t(f"cat.{h.category}", "en")
        assert row["type_name"] == t(f"type.{h.type}", "en")
        assert row["source_name"] == t(f"src.{h.source}", "en")
        assert row["status_name"] == t(f"evst.{h.status}", "en")
        # the feed's words as sent; every other cell English (or a code, a number, a time)
        assert row["title"] == h.title and row["address"] == h.address
        chinese = [c for c, v in row.items() if c not in FEED_COLUMNS and HAN.search(str(v))]
        assert chinese == [], (row["id"], chinese)
    assert any(HAN.search(row["title"]) for row in rows)  # the fixture's titles are Chinese


def test_lang004_export_in_chinese_keeps_chinese_names(app: Any, r: redis.Redis) -> None:
    table = export_rows(client_for(app, r, "leader"), "csv", "zh-CN")
    assert table[0] == export_header("zh-CN")
    rows = [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in table[1:]]
    hands = {h.id: h for h in by_hand()}
    for row in rows:
        h = hands[row["id"]]
        assert row["town_name"] == CITY.unit(h.town).name  # type: ignore[union-attr]
        assert row["grid_name"] == CITY.unit(h.grid).name  # type: ignore[union-attr]
        assert row["status_name"] == t(f"evst.{h.status}", "zh-CN")


def test_lang005_figures_carry_english_names(r: redis.Redis) -> None:
    load_history(r)
    figs = Figures(Store(r), CITY, Settings())
    town = CITY.towns[8]
    community = CITY.children(town.code)[0]
    for scope, unit in ((None, None), (town.code, town), (community.code, community)):
        fig = figs.figures(scope, now_ms())
        sc = fig["scope"]
        assert sc["name_en"] == (unit.name_en if unit else CITY.name_en) and sc["name_en"]
        for p in sc["parents"]:
            assert p["name_en"] == CITY.unit(p["code"]).name_en  # type: ignore[union-attr]
        assert fig["children"]
        for kid in fig["children"]:
            assert kid["name_en"] == CITY.unit(kid["code"]).name_en  # type: ignore[union-attr]
            assert kid["name_en"] and not HAN.search(kid["name_en"])
    assert town.name_en == "Mingcun Town" and town.label("en") == "Mingcun Town"
    assert town.label("zh-CN") == "明村镇"


def test_lang006_every_unit_has_an_english_name_unique_among_its_siblings() -> None:
    for units in (CITY.towns, CITY.communities, CITY.grids):
        for u in units:
            assert u.name_en and not HAN.search(u.name_en), u
    for parent in [CITY.code, *(u.code for u in CITY.towns), *(u.code for u in CITY.communities)]:
        kids = CITY.children(parent)
        assert len({k.name_en for k in kids}) == len(kids), parent
    assert CITY.unit("370283001001").name_en == "Haikou Road Community"  # type: ignore[union-attr]
    assert CITY.unit("370283001001001").name_en == "Grid 1"  # type: ignore[union-attr]


def test_lang007_alert_texts_keep_the_feed_apart(r: redis.Redis) -> None:
    title = "化工厂{level}爆炸"  # a title that looks like a placeholder stays as sent
    level = {lang: t("sev.level", lang, roman="I") for lang in ("zh-CN", "en")}
    texts = alert_texts("alert.critical_event", {"title": title}, level=level)
    assert texts == {"zh-CN": "I级事件：{title}", "en": "Level I event: {title}"}
    assert fill(texts["en"], {"title": title}) == "Level I event: 化工厂{level}爆炸"
    alerts = Alerts(Store(r))
    raised = alerts.raise_once("critical_event", "E1", "E1", fill(texts["zh-CN"], {"title": title}),
                               1, texts=texts, feed={"title": title})
    assert raised is not None
    stored = alerts.get(raised["id"])
    assert stored is not None and stored["texts"] == texts and stored["feed"] == {"title": title}
    assert stored["message"] == "I级事件：化工厂{level}爆炸"  # cc:alert's, the center's language
    assert alert_text(stored, "en") == "Level I event: 化工厂{level}爆炸"
    # an alert stored before alerts carried every language reads as it was
    old = alerts.raise_once("sos", "W1", None, "李强发出SOS求助", 1)
    assert old is not None and alert_text(old, "en") == "李强发出SOS求助"


def outside_feed(html_text: str) -> str:
    """The page's text without what it marks as the feed's (`<span data-feed>`) or its
    style sheet."""
    text = re.sub(r"<style>.*?</style>", "", html_text, flags=re.S)
    text = re.sub(r"<span data-feed>.*?</span>", "", text, flags=re.S)
    return re.sub(r"<[^>]+>", " ", text)


def test_lang008_printable_handover_in_english(r: redis.Redis, redis_url: str) -> None:
    from ..auth_util import sign_in
    from ..duty.test_roster import api_server
    from ..handover_util import load_history as load_shift
    from ..handover_util import window

    load_shift(r)
    start, _, now = window()
    # an alarm raised as the watch raises them: every language, the feed's title apart
    title = "化工厂爆炸"
    level = {lang: t("sev.level", lang, roman="I") for lang in ("zh-CN", "en")}
    texts = alert_texts("alert.critical_event", {"title": title}, level=level)
    Alerts(Store(r), lambda: start + 60_000).raise_once(
        "critical_event", "E-LANG", "E-LANG", fill(texts["zh-CN"], {"title": title}), 1,
        texts=texts, feed={"title": title})
    server = api_server(r, redis_url, lambda: now)
    officer = server.test_client()
    sign_in(officer, r, "duty_officer", name="zhiban")
    hid = officer.post("/api/handover").get_json()["handover"]["id"]
    officer.put(f"/api/handover/{hid}", json={"remarks": "交班时一切正常"})
    page = officer.get(f"/duty/handover/{hid}/print?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in page and "Shift handover report" in page
    assert f"Level I event: <span data-feed>{title}</span>" in page
    assert "<span data-feed>交班时一切正常</span>" in page
    assert HAN.findall(outside_feed(page)) == [], outside_feed(page)
    # the same report in Chinese
    page = officer.get(f"/duty/handover/{hid}/print").get_data(as_text=True)
    assert f"I级事件：<span data-feed>{title}</span>" in page and "值班交接单" in page


def test_lang009_old_alerts_read_back_in_every_language(r: redis.Redis) -> None:
    from dashboard.command.alert_upgrade import legacy_texts, upgrade_alerts
    from dashboard.command.alerts import alert_segments

    store = Store(r)
    alerts = Alerts(store)
    town = CITY.unit("370283009")
    assert town is not None
    # messages as the watch wrote them before alerts carried every language (zh-CN)
    olds = {
        "typed": alerts.raise_once("critical_event", "E1", "E1", "I级事件：火灾", 1),
        "titled": alerts.raise_once("critical_event", "E2", "E2", "II级事件：化工厂【爆炸】", 2),
        "task": alerts.raise_once("critical_event", "T3", "E3",
                                  "任务T3请求支援：燃气泄漏", 3, cause="x"),
        "sos": alerts.raise_once("sos", "W1", None, "李强发出SOS求助", 1),
        "sos_event": alerts.raise_once("sos", "W2", "E2", "王芳发出SOS求助（处置中：化工厂）", 2),
        "fence": alerts.raise_once("geofence_exit", "W3", None,
                                   f"网格员赵六离开责任网格{town.name}（现位于{town.name}）", 4),
        # a deadline card's durations are not read back, nor a text of another version
        "card": alerts.raise_once("sla_red", "E4", "E4",
                                  "【火灾】红牌督办：派单超时（时限15分钟，已超3分钟）", 3,
                                  cause="dispatch"),
        "other": alerts.raise_once("critical_event", "E5", "E5", "某个旧版本的文字", 1),
    }
    assert all(olds.values())
    ids = {k: a["id"] for k, a in olds.items() if a}
    assert upgrade_alerts(alerts, CITY, "zh-CN") == 6
    assert upgrade_alerts(alerts, CITY, "zh-CN") == 0  # once
    got = {k: alerts.get(i) for k, i in ids.items()}
    en = {k: alert_text(a, "en") for k, a in got.items() if a}
    assert en == {
        "typed": "Level I event: Fire",
        "titled": "Level II event: 化工厂【爆炸】",
        "task": "Task T3 needs support: Gas leak",
        "sos": "李强 sent an SOS",
        "sos_event": "王芳 sent an SOS (while handling: 化工厂)",
        "fence": f"Grid worker 赵六 left their grid {town.name_en} (now in {town.name_en})",
        "card": "【火灾】红牌督办：派单超时（时限15分钟，已超3分钟）",
        "other": "某个旧版本的文字",
    }
    # the Chinese reads exactly as stored; the feed's words are apart
    assert all(alert_text(a, "zh-CN") == a["message"] for a in got.values() if a)
    assert got["titled"] and got["titled"]["feed"] == {"title": "化工厂【爆炸】"}
    assert got["typed"] and got["typed"]["feed"] == {}
    # what stays as stored is marked as data on every page; re-read, it is unchanged
    assert got["card"] and alert_segments(got["card"], "en") == [(got["card"]["message"], True)]
    assert alert_segments(got["sos"] or {}, "en") == [("李强", True), (" sent an SOS", False)]
    assert legacy_texts({"kind": "sos", "message": ""}, CITY, "zh-CN") is None
    # an English center's old messages read back the same way
    found = legacy_texts({"kind": "sos", "message": "Li sent an SOS"}, CITY, "en")
    assert found == ({"zh-CN": "{name}发出SOS求助", "en": "{name} sent an SOS"}, {"name": "Li"})
    # and walls follow: each upgrade is an alert upsert in the change log
    log = r.xrevrange(store.key("log"), count=20)
    assert sum(1 for _, f in log if '"texts"' in str(f)) >= 6


def test_lang010_stats_cached_before_name_en_are_not_served(app: Any, r: redis.Redis,
                                                            redis_url: str) -> None:
    from flask import Flask

    from callbacks.archive.stats import make_cache
    from dashboard.archive.stats import SHAPE

    leader = client_for(app, r, "leader")
    # what the version before `name_en` cached for the city (its key had no shape in it),
    # current and valid for an hour: a key without the shape would serve it
    old = {"version": int(r.get("cc:stats:ver") or 0), "computed": now_ms(),
           "valid_until": now_ms() + 3_600_000,
           "json": b'{"scope": {"code": "370283", "name": "\\u5e73\\u5ea6\\u5e02"}}'}
    make_cache(Flask(__name__), redis_url, Settings()).set("stats:370283", old)
    assert r.exists("cc:cache:stats:370283")
    res = leader.get("/api/stats")
    assert res.status_code == 200 and res.headers["X-Cache"] == "miss"
    assert res.json["scope"]["name_en"] == "Pingdu"
    assert r.exists(f"cc:cache:stats:v{SHAPE}:370283")
    assert leader.get("/api/stats").headers["X-Cache"] == "hit"
