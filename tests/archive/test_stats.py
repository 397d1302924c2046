"""The cockpit's figures (issue 5) on a small fixed history in a real Valkey: every figure
against the same history computed by hand (tests/cockpit_util.py), scopes, the archive, the
cache and the export."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from dashboard.archive.events import Archive
from dashboard.archive.stats import EXPORT_COLUMNS, SHAPE, Figures, export_header
from dashboard.city import load_city
from dashboard.config import Settings
from dashboard.i18n import t
from dashboard.store import Store

from ..auth_util import make_user
from ..cockpit_util import Hand, by_hand, load_history, ms, now_ms
from ..units_util import put

TZ = ZoneInfo("Asia/Shanghai")
TOWN_A, TOWN_B = "370283001", "370283002"
COMM_A1 = "370283001001"


@pytest.fixture
def history(r: redis.Redis) -> dict[str, Any]:
    return load_history(r)


def figures_of(r: redis.Redis, **overrides: Any) -> Figures:
    return Figures(Store(r), load_city(), dataclasses.replace(Settings(), **overrides))


def day_start(d: Any) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=TZ).timestamp())


def in_scope(h: Hand, scope: str | None) -> bool:
    return not scope or any(code == scope for code in (h.town, h.community, h.grid))


def expected(scope: str | None) -> dict[str, Any]:
    """The figures of `scope`, by hand from the fixture (docs/COCKPIT.md definitions)."""
    hands = [h for h in by_hand() if in_scope(h, scope)]
    now = now_ms() // 1000
    today = datetime.fromtimestamp(now, TZ).date()
    window_from = day_start(today - timedelta(days=29))
    win = [h for h in hands if window_from <= h.report <= now]
    closed = [h for h in win if h.status == "closed"]
    cancelled = [h for h in win if h.status == "cancelled"]
    dispatched = [h for h in win if h.dispatch]
    arrived = [h for h in win if h.arrive and h.dispatch]
    open_ = [h for h in hands if h.status not in ("closed", "cancelled")]

    def mean(values: list[int]) -> float | None:
        return round(sum(values) / len(values), 1) if values else None

    days = [today - timedelta(days=k) for k in range(29, -1, -1)]
    return {
        "now": {"open": len(open_), "overdue": sum(h.overdue for h in open_),
                "in_progress": sum(h.status in ("dispatched", "in_progress") for h in hands),
                "closed_today": sum(h.status == "closed" and h.close >= day_start(today)
                                    for h in hands)},
        "window": {
            "from": window_from * 1000, "to": now * 1000, "total": len(win),
            "closed": len(closed), "cancelled": len(cancelled),
            "closure_rate": (round(len(closed) / (len(win) - len(cancelled)), 4)
                             if len(win) > len(cancelled) else None),
            "avg_dispatch_s": mean([h.dispatch - h.report for h in dispatched]),
            "avg_arrive_s": mean([h.arrive - h.dispatch for h in arrived]),
            "avg_close_s": mean([h.close - h.report for h in closed]),
            "yellow": sum("sla_yellow" in h.cards for h in win),
            "red": sum("sla_red" in h.cards for h in win),
            "overdue": sum(h.overdue for h in win)},
        "by_category": dict(Counter(h.category for h in win)),
        "by_source": dict(Counter(h.source for h in win)),
        "by_severity": {str(k): v for k, v in Counter(h.severity for h in win).items()},
        "trend": {
            "days": [d.isoformat() for d in days],
            "total": [sum(day_start(d) <= h.report < day_start(d + timedelta(days=1))
                          for h in hands) for d in days],
            "closed": [sum(h.status == "closed" and day_start(d) <= h.close
                           < day_start(d + timedelta(days=1)) for h in hands) for d in days]},
    }


def period_counts(scope: str | None) -> dict[str, tuple[int, int]]:
    """(count, previous) per period: the boundaries written out for the fixture's moment,
    Wednesday 2026-11-25 15:00 +08:00."""
    hands = [h for h in by_hand() if in_scope(h, scope)]
    spans = {"today": ("2026-11-25", "2026-11-24", "2026-11-24T15:00:00"),
             "week": ("2026-11-23", "2026-11-16", "2026-11-18T15:00:00"),
             "month": ("2026-11-01", "2026-10-01", "2026-10-25T15:00:00"),
             "year": ("2026-01-01", "2025-01-01", "2025-11-25T15:00:00")}
    now = now_ms() // 1000
    out = {}
    for name, (start, prev, prev_end) in spans.items():
        s, p, e = (ms(x + ("T00:00:00" if len(x) == 10 else "")) // 1000
                   for x in (start, prev, prev_end))
        out[name] = (sum(s <= h.report <= now for h in hands),
                     sum(p <= h.report < e for h in hands))
    return out


def check(fig: dict[str, Any], scope: str | None) -> None:
    want = expected(scope)
    assert fig["now"] == want["now"]
    assert fig["window"] == want["window"]
    for key in ("by_category", "by_source", "by_severity"):
        assert fig[key] == want[key], key
    assert fig["trend"]["days"] == want["trend"]["days"]
    assert fig["trend"]["total"] == want["trend"]["total"]
    assert fig["trend"]["closed"] == want["trend"]["closed"]
    for name, (count, prev) in period_counts(scope).items():
        assert (fig["periods"][name]["count"], fig["periods"][name]["prev"]) == (count, prev), \
            name


def test_stat001_city_figures_equal_the_hand_count(r: redis.Redis,
                                                   history: dict[str, Any]) -> None:
    fig = figures_of(r).figures(None, now_ms())
    check(fig, None)
    # a few written out, so the hand count itself is checked by eye against the fixture
    assert fig["periods"]["today"]["count"] == 4  # E01 E02 E03 E13
    assert fig["periods"]["today"]["prev"] == 1  # E05 (08:00); E04 came at 16:00
    assert fig["periods"]["week"]["count"] == 7 and fig["periods"]["week"]["prev"] == 1
    assert fig["periods"]["month"]["count"] == 10 and fig["periods"]["month"]["prev"] == 1
    assert fig["periods"]["year"]["count"] == 12 and fig["periods"]["year"]["prev"] == 1
    assert fig["periods"]["today"]["change"] == 3.0
    assert fig["window"]["total"] == 11 and fig["window"]["closed"] == 6
    assert fig["window"]["cancelled"] == 2 and fig["window"]["closure_rate"] == round(6 / 9, 4)
    assert fig["now"] == {"open": 3, "overdue": 2, "in_progress": 1, "closed_today": 1}
    assert fig["workers"] == {"total": 4, "online": 3, "online_rate": 0.75, "sos": 0}
    city = load_city()
    assert fig["patrol"]["visited"] == 3 and fig["patrol"]["grids"] == len(city.grids)
    assert fig["scope"]["level"] == "city" and fig["scope"]["child_level"] == "town"
    towns = {row["code"]: row for row in fig["children"]}
    assert set(towns) == {t.code for t in city.towns}
    hands = by_hand()
    window_from = fig["window"]["from"] // 1000
    for code in (TOWN_A, TOWN_B):
        mine = [h for h in hands if h.town == code]
        win = [h for h in mine if h.report >= window_from]
        assert towns[code]["total"] == len(win)
        assert towns[code]["open"] == sum(h.status not in ("closed", "cancelled") for h in mine)
        assert towns[code]["closed"] == sum(h.status == "closed" for h in win)
        unit = city.unit(code)
        assert unit is not None
        assert towns[code]["density_km2"] == round(len(win) / unit.area_km2, 4)
    assert sum(row["total"] for row in fig["children"]) == fig["window"]["total"]
    days = [datetime.fromisoformat(d).date() for d in fig["trend"]["days"]]
    for cat, series in fig["trend"]["by_category"].items():
        assert series == [sum(h.category == cat and day_start(d) <= h.report
                              < day_start(d + timedelta(days=1)) for h in hands) for d in days]
    comms = {row["code"]: row for row in fig["rankings"]["community"]["closure_rate"]}
    for code, row in comms.items():
        win = [h for h in hands if h.community == code and h.report >= window_from]
        closed = sum(h.status == "closed" for h in win)
        assert row["closure_rate"] == round(
            closed / (len(win) - sum(h.status == "cancelled" for h in win)), 4)
    assert set(comms) == {h.community for h in hands if h.report >= window_from
                          and any(x.status != "cancelled" for x in hands
                                  if x.community == h.community and x.report >= window_from)}
    per_grid = Counter(h.grid for h in hands if h.report >= window_from)
    assert {g: d["total"] for g, d in fig["grid_density"].items()} == dict(per_grid)
    g1 = city.unit("370283001001001")
    assert g1 is not None
    assert fig["grid_density"][g1.code]["per_km2"] == round(per_grid[g1.code] / g1.area_km2, 4)
    ranked = fig["rankings"]["town"]["closure_rate"]
    assert [row["code"] for row in ranked] == sorted(
        (c for c in (TOWN_A, TOWN_B)), key=lambda c: -towns[c]["closure_rate"])
    assert [row["code"] for row in fig["rankings"]["town"]["overdue"]] == sorted(
        (c for c in towns if towns[c]["overdue"]), key=lambda c: -towns[c]["overdue"])


@pytest.mark.parametrize("scope", [TOWN_A, TOWN_B, COMM_A1])
def test_stat002_scoped_figures_equal_the_hand_count(r: redis.Redis, history: dict[str, Any],
                                                     scope: str) -> None:
    fig = figures_of(r).figures(scope, now_ms())
    check(fig, scope)
    city = load_city()
    assert [row["code"] for row in fig["children"]] == [u.code for u in city.children(scope)]
    grids = [g.code for g in city.grids if g.code.startswith(scope)]
    visited = {history["grids"][w["at"]] for w in history["workers"]
               if w["status"] != "off_duty"}
    assert fig["patrol"]["grids"] == len(grids)
    assert fig["patrol"]["visited"] == len(visited & set(grids))
    mine = [w for w in history["workers"] if history["grids"][w["grid"]].startswith(scope)]
    assert fig["workers"]["total"] == len(mine)
    assert fig["workers"]["online"] == sum(w["status"] != "off_duty" for w in mine)


def test_arch001_archiving_moves_exactly_the_old_closed_events(
        r: redis.Redis, history: dict[str, Any]) -> None:
    figures = figures_of(r)
    before = {scope: figures.figures(scope, now_ms()) for scope in (None, TOWN_A, COMM_A1)}
    cutoff = now_ms() // 1000 - 24 * 3600
    old = {h.id for h in by_hand() if h.close and h.close < cutoff}
    assert old == {"E05", "E06", "E07", "E08", "E09", "E10", "E11", "E12"}
    counts = {k: int(v) for k, v in r.hgetall("cc:count:event").items()}
    archive = Archive(Store(r), Settings())
    assert archive.run(now_ms(), limit=3) == 3  # bounded batches
    assert archive.run(now_ms()) == len(old) - 3
    assert archive.run(now_ms()) == 0
    live = set(r.hkeys("cc:state:event"))
    assert live == {"E01", "E02", "E03", "E04", "E13"}
    assert set(r.hkeys("cc:meta:event")) == live
    assert set(r.zrange("cc:events:ts", 0, -1)) == live
    assert not any(r.exists(f"cc:timeline:{e}") for e in old)
    assert {json.loads(t)["event_id"] for t in r.hvals("cc:state:task")} == {"E01", "E04"}
    after_counts = {k: int(v) for k, v in r.hgetall("cc:count:event").items()}
    assert after_counts["closed"] == counts["closed"] - 7
    assert after_counts["cancelled"] == counts["cancelled"] - 1
    frame = archive.frame(with_ids=True)
    assert sorted(frame["id"]) == sorted(old)
    assert sorted(archive.months()) == ["2025-11", "2026-10", "2026-11"]
    # the full record is kept, and found again by the row's chunk
    e07 = frame[frame["id"] == "E07"].iloc[0]
    rec = archive.records("2026-11", [int(e07["chunk"])])["E07"]
    assert rec["event"]["title"] == "路面积水" and rec["task"]["stage"] == "closed"
    assert [t["status"] for t in rec["timeline"]][-1] == "closed"
    for scope, fig in before.items():
        again = figures.figures(scope, now_ms())
        assert again["version"] > fig["version"]
        assert {k: v for k, v in again.items() if k not in ("version",)} == \
            {k: v for k, v in fig.items() if k not in ("version",)}, scope


def test_arch002_a_changed_event_is_not_archived_and_codes_are_stable(
        r: redis.Redis, history: dict[str, Any]) -> None:
    archive = Archive(Store(r), Settings())
    found = dict(p for page in archive.closed_pages(now_ms()) for p in page)
    assert set(found) == {"E05", "E06", "E07", "E08", "E09", "E10", "E11", "E12"}
    # E05 is reopened by the field between the read and the script: it stays live
    stored = json.loads(r.hget("cc:state:event", "E05"))
    put(Store(r), "event", "E05", stored["lon"], stored["lat"], ts=now_ms() - 1000,
        **{k: v for k, v in stored.items() if k not in ("id", "lon", "lat", "ts", "status",
                                                         "received")})
    real = archive.closed_pages
    archive.closed_pages = lambda now: iter([list(found.items())])  # type: ignore[method-assign]
    assert archive.run(now_ms()) == 7
    archive.closed_pages = real  # type: ignore[method-assign]
    assert r.hexists("cc:state:event", "E05")
    tables = archive.codes.tables()
    assert tables["cat"][:2] == ["", "other"]
    again = Archive(Store(r), Settings()).codes
    assert again.code("cat", "natural_disaster") == tables["cat"].index("natural_disaster")


def test_arch004_an_old_report_closed_lately_waits_and_blocks_nothing(
        r: redis.Redis, history: dict[str, Any]) -> None:
    city = load_city()
    grid = city.unit("370283001001001")
    assert grid is not None
    fields = {"type": "garbage", "severity": 4, "grid_id": grid.code, "community_id": COMM_A1,
              "town_id": TOWN_A, "first_ts": ms("2024-12-01T09:00:00")}
    put(Store(r), "event", "EX", *grid.centroid, ts=ms("2024-12-01T09:00:00"), **fields)
    put(Store(r), "event", "EX", *grid.centroid, ts=now_ms() - 3600_000, status="closed",
        **fields)
    archive = Archive(Store(r), Settings())
    first_page = next(archive.closed_pages(now_ms()))
    assert first_page[0][0] == "EX"  # the oldest report comes first, and is not due
    moved = 0
    while archive.run(now_ms(), limit=1):
        moved += 1
    assert moved == 8
    assert r.hexists("cc:state:event", "EX")
    assert "EX" not in set(archive.frame(with_ids=True)["id"])


def test_arch003_the_watch_archives_in_its_tick(r: redis.Redis,
                                                 history: dict[str, Any]) -> None:
    from feeds.watch import Watch

    from ..cockpit_util import Clock

    settings = dataclasses.replace(Settings(), archive_every_s=0.0, archive_batch=5)
    watch = Watch(settings, "", clock=Clock(now_ms()))
    watch.attach(r)
    watch.tick()
    assert len(Archive(Store(r), settings).frame()) == 5
    watch.tick()  # a full batch left a backlog: the next tick goes on
    assert len(Archive(Store(r), settings).frame()) == 8
    assert set(r.hkeys("cc:state:event")) == {"E01", "E02", "E03", "E04", "E13"}


def test_stat003_patrol_counts_a_grid_once_per_worker_move(r: redis.Redis) -> None:
    from feeds.watch import Watch

    from ..cockpit_util import Clock

    city = load_city()
    g1, g2 = city.grids[0], city.grids[1]
    store = Store(r)
    ts = now_ms() - 60_000
    for n, grid in enumerate((g1, g1, g2, g2)):
        put(store, "worker", "W9", *grid.centroid, ts=ts + n, grid_id=g1.code,
            loc_grid_id=grid.code, status="on_duty")
    put(store, "worker", "W8", *g2.centroid, ts=ts, grid_id=g2.code, loc_grid_id=g2.code,
        status="off_duty")
    ver = int(r.get("cc:stats:ver") or 0)
    watch = Watch(Settings(), "", clock=Clock(now_ms()))
    watch.attach(r)
    while watch.process():
        pass
    assert r.smembers("cc:patrol:2026-11-25") == {g1.code, g2.code}
    assert 0 < r.ttl("cc:patrol:2026-11-25") <= 8 * 86400
    assert int(r.get("cc:stats:ver")) == ver + 1  # one bump for the block that added grids


# -- the HTTP API -----------------------------------------------------------------------


def stats_app(redis_url: str, clock: Any, **overrides: Any) -> Any:
    """The auth guard and the stats routes on a Flask app with its own clock (create_app's
    wiring is checked in stat006)."""
    from flask import Flask

    from callbacks.access.auth import install_auth
    from callbacks.api import install_error_handlers
    from callbacks.archive.stats import create_stats_api, make_cache
    from dashboard.access.audit import Audit
    from dashboard.access.auth import Auth

    settings = dataclasses.replace(Settings(), redis_url=redis_url, **overrides)
    server = Flask(__name__)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    install_auth(server, Auth(client, settings.prefix, settings), Audit(client, settings.prefix),
                 settings)
    server.register_blueprint(create_stats_api(Store(client), load_city(), settings,
                                               make_cache(server, redis_url, settings),
                                               clock=clock))
    install_error_handlers(server)
    return server


@pytest.fixture
def app(redis_url: str, history: dict[str, Any]) -> Any:
    return stats_app(redis_url, now_ms, stats_min_age_s=0.0)


def client_for(app: Any, r: redis.Redis, role: str | None, scope: str | None = None,
               name: str | None = None) -> Any:
    client = (app.server if hasattr(app, "server") else app).test_client()
    if role:
        user, password = make_user(r, role, name or f"t-{role}-{scope}", scope=scope)
        res = client.post("/api/login", json={"username": user, "password": password})
        assert res.status_code == 200
    return client


def test_stat004_api_roles_and_scopes(app: Any, r: redis.Redis) -> None:
    assert client_for(app, r, None).get("/api/stats").status_code == 401
    for role in ("duty_officer", "display"):
        res = client_for(app, r, role).get("/api/stats")
        assert res.status_code == 403 and res.is_json
    for role in ("leader", "commander"):
        res = client_for(app, r, role).get("/api/stats")
        assert res.status_code == 200 and res.json["scope"]["level"] == "city"
    officer = client_for(app, r, "leader", scope=TOWN_A)
    own = officer.get("/api/stats").json
    assert own["scope"]["code"] == TOWN_A
    res = officer.get(f"/api/stats?scope={TOWN_B}")
    assert res.status_code == 403 and res.json["code"] == "out_of_scope"
    res = officer.get("/api/stats?scope=370283")
    assert res.status_code == 403 and res.json["code"] == "out_of_scope"
    assert officer.get(f"/api/stats?scope={COMM_A1}").json["scope"]["code"] == COMM_A1
    res = officer.get("/api/stats?scope=<b>x</b>")
    assert res.status_code == 400 and res.json["code"] == "unknown_scope"
    # nothing of town B in what town A's officer sees
    town_b = {h.id for h in by_hand() if h.town == TOWN_B}
    assert town_b
    assert own["window"]["total"] == sum(h.town == TOWN_A and h.report * 1000 >=
                                         own["window"]["from"] for h in by_hand())
    assert all(row["code"].startswith(TOWN_A) for row in own["children"])
    assert all(row["code"].startswith(TOWN_A)
               for rows in own["rankings"].values() for lst in rows.values() for row in lst)
    res = officer.get(f"/api/export?scope={TOWN_B}")
    assert res.status_code == 403 and res.json["code"] == "out_of_scope"
    text = officer.get("/api/export?from=2025-01-01").get_data(as_text=True)
    ids = {row[0] for row in list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:]}
    assert ids and not ids & town_b


def test_stat005_cached_figures_follow_new_data_and_keep_to_the_prefix(
        app: Any, r: redis.Redis) -> None:
    app_keys = {k for k in r.keys("*")}
    leader = client_for(app, r, "leader")
    first = leader.get("/api/stats")
    assert first.headers["X-Cache"] == "miss"
    second = leader.get("/api/stats")
    assert second.headers["X-Cache"] == "hit" and second.json == first.json
    new_keys = set(r.keys("*")) - app_keys
    assert new_keys and all(k.startswith(("cc:cache:", "cc:session:", "cc:user:", "cc:audit"))
                            for k in new_keys)
    assert any(k.startswith("cc:cache:") for k in new_keys)
    assert app_keys <= set(r.keys("*"))  # the app's data is all still there
    total = first.json["periods"]["year"]["count"]
    city = load_city()
    grid = city.unit("370283001001001")
    assert grid is not None
    put(Store(r), "event", "E99", *grid.centroid, ts=first.json["generated"] - 1000,
        type="fire", severity=2, source="app", category="accident", grid_id=grid.code,
        community_id=COMM_A1, town_id=TOWN_A)
    third = leader.get("/api/stats")
    assert third.headers["X-Cache"] == "miss"
    assert third.json["periods"]["year"]["count"] == total + 1
    assert third.json["version"] > first.json["version"]


def test_stat006_min_age_holds_figures_while_data_keeps_changing(redis_url: str,
                                                                 r: redis.Redis) -> None:
    from app import create_app

    settings = dataclasses.replace(Settings(), redis_url=redis_url, stats_min_age_s=3600.0)
    load_history(r)
    leader = client_for(create_app(settings), r, "leader")
    first = leader.get("/api/stats")
    city = load_city()
    grid = city.unit("370283001001001")
    assert grid is not None
    put(Store(r), "event", "E98", *grid.centroid, ts=first.json["generated"] - 1000,
        type="fire", severity=2, grid_id=grid.code, community_id=COMM_A1, town_id=TOWN_A)
    again = leader.get("/api/stats")
    assert again.headers["X-Cache"] == "hit" and again.json == first.json


def test_stat007_export_csv_and_xlsx_of_a_filter(app: Any, r: redis.Redis) -> None:
    from openpyxl import load_workbook

    Archive(Store(r), Settings()).run(now_ms())  # half archived, half live: both exported
    leader = client_for(app, r, "leader")
    hands = by_hand()
    want = sorted((h for h in hands if h.town == TOWN_A and h.status == "closed"
                   and ms("2026-11-01T00:00:00") // 1000 <= h.report
                   < ms("2026-11-26T00:00:00") // 1000), key=lambda h: (h.report, h.id))
    assert {h.id for h in want} == {"E01", "E06", "E07", "E09"}
    query = f"scope={TOWN_A}&from=2026-11-01&to=2026-11-25&status=closed"
    res = leader.get(f"/api/export?format=csv&{query}")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    raw = res.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == export_header("zh-CN") and table[0][0] == "事件编号"
    rows = [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in table[1:]]
    assert [row["id"] for row in rows] == [h.id for h in want]
    for row, h in zip(rows, want, strict=True):
        assert row["title"] == h.title and row["category"] == h.category
        assert row["category_name"] == t(f"cat.{h.category}", "zh-CN")
        assert row["town_name"] == "凤台街道" and row["status_name"] == "已办结"
        assert row["town"] == TOWN_A and row["status"] == "closed"
        assert row["reported_at"] == datetime.fromtimestamp(h.report, TZ).isoformat()
        assert row["closed_at"] == datetime.fromtimestamp(h.close, TZ).isoformat()
        assert row["red_card"] == str(int("sla_red" in h.cards))
        assert row["overdue"] == str(int(h.overdue))
    res = leader.get(f"/api/export?format=xlsx&{query}&category=accident&lang=en")
    assert res.status_code == 200
    sheet = load_workbook(io.BytesIO(res.get_data()), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == export_header("en") and values[0][0] == "Event ID"
    assert [v[0] for v in values[1:]] == [h.id for h in want if h.category == "accident"]
    for bad, code in (("format=pdf", "bad_format"), ("status=gone", "bad_status"),
                      ("category=x", "bad_category"), ("from=2026-13-01", "bad_time"),
                      ("from=2026-11-02&to=2026-11-01", "bad_range")):
        res = leader.get(f"/api/export?{bad}")
        assert res.status_code == 400 and res.json["code"] == code, bad
    entries = [json.loads(e["detail"]) for _, e in r.xrange("cc:audit")
               if e.get("action") == "export"]
    assert entries and entries[0]["rows"] == len(want)


def test_stat008_figures_that_time_alone_changes_are_recomputed_then(
        redis_url: str, r: redis.Redis, history: dict[str, Any]) -> None:
    from ..cockpit_util import Clock

    clock = Clock(now_ms())
    leader = client_for(stats_app(redis_url, clock, stats_min_age_s=0.0), r, "leader")
    first = leader.get("/api/stats")
    assert first.headers["X-Cache"] == "miss" and first.json["now"]["overdue"] == 2
    clock.now += 60_000  # nothing is due yet: the entry holds
    assert leader.get("/api/stats").headers["X-Cache"] == "hit"
    # E03 (a dispute, level IV) reported 14:50 has 30 minutes to be dispatched
    clock.now = ms("2026-11-25T15:20:02")
    later = leader.get("/api/stats")
    assert later.headers["X-Cache"] == "miss" and later.json["now"]["overdue"] == 3
    assert later.json["version"] == first.json["version"]  # no new data: time alone


def test_stat009_an_export_past_its_row_bound_is_a_clear_json_error(
        app: Any, r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    import callbacks.archive.stats

    monkeypatch.setattr(callbacks.archive.stats, "XLSX_MAX_ROWS", 2)  # the real bound is 200,000
    leader = client_for(app, r, "leader")
    res = leader.get(f"/api/export?format=xlsx&scope={TOWN_A}&from=2025-01-01")
    want = sum(h.town == TOWN_A for h in by_hand())
    assert res.status_code == 413 and res.is_json
    assert (res.json["code"], res.json["rows"], res.json["max"]) == ("too_many_rows", want, 2)
    res = leader.get(f"/api/export?format=csv&scope={TOWN_A}&from=2025-01-01")
    assert res.status_code == 200 and int(res.headers["X-Rows"]) == want


def test_arch005_an_archived_event_is_found_again_by_id_within_scope(
        app: Any, r: redis.Redis) -> None:
    Archive(Store(r), Settings()).run(now_ms())
    assert Archive(Store(r), Settings()).find("E01") is None  # still live
    found = Archive(Store(r), Settings()).find("E10")
    assert found is not None and found["month"] == "2026-10"
    assert found["event"]["title"] == "路面坑洼" and found["task"]["stage"] == "closed"
    leader = client_for(app, r, "leader")
    res = leader.get("/api/archive/events/E12")
    assert res.status_code == 200 and res.json["archived"] is True
    assert res.json["event"]["first_ts"] == ms("2025-11-20T09:00:00")
    assert leader.get("/api/archive/events/E01").status_code == 404
    officer = client_for(app, r, "leader", scope=TOWN_B)
    assert officer.get("/api/archive/events/E11").status_code == 200  # G3, town B
    res = officer.get("/api/archive/events/E12")  # G1, town A: as if unknown
    assert res.status_code == 404 and res.json["code"] == "not_archived"
    assert client_for(app, r, "duty_officer").get("/api/archive/events/E12").status_code == 403


def test_stat010_while_one_request_recomputes_the_others_get_the_previous_figures(
        app: Any, r: redis.Redis) -> None:
    leader = client_for(app, r, "leader")
    first = leader.get("/api/stats")
    grid = load_city().unit("370283001001001")
    assert grid is not None
    put(Store(r), "event", "E97", *grid.centroid, ts=first.json["generated"] - 1000,
        type="fire", severity=2, grid_id=grid.code, community_id=COMM_A1, town_id=TOWN_A)
    r.set(f"cc:cache:stats:v{SHAPE}:370283:lock", "held elsewhere", ex=30)  # another app process
    stale = leader.get("/api/stats")
    assert stale.headers["X-Cache"] == "stale" and stale.json == first.json
    assert r.get(f"cc:cache:stats:v{SHAPE}:370283:lock") == "held elsewhere"  # not ours to release
    r.delete(f"cc:cache:stats:v{SHAPE}:370283:lock")
    fresh = leader.get("/api/stats")
    assert fresh.headers["X-Cache"] == "miss"
    assert fresh.json["periods"]["today"]["count"] == first.json["periods"]["today"]["count"] + 1


def test_arch006_months_past_the_keep_are_dropped_and_the_rest_stay(
        r: redis.Redis, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    archive = Archive(Store(r), settings)
    assert archive.run(now_ms()) > 0
    kept = archive.months()
    assert kept and archive.expire(now_ms(), 0) == []  # 0 keeps for ever
    # two fake old months beside the real ones, written the way the archive writes them
    for month in ("2023-01", "2024-10"):
        r.sadd("cc:archive:months", month)
        r.set(f"cc:archive:{month}:report", b"\0" * 4)
        r.set(f"cc:archive:{month}:id", "E0\n")
        r.hset(f"cc:archive:{month}:meta", "rows", 1)
    ver = int(r.get("cc:stats:ver") or 0)
    # 2026-11 with 25 months kept: from 2024-11 on
    assert archive.expire(now_ms(), 25) == ["2023-01", "2024-10"]
    assert archive.months() == kept
    assert not r.keys("cc:archive:2023-01:*") and not r.keys("cc:archive:2024-10:*")
    assert int(r.get("cc:stats:ver")) > ver
    monkeypatch.setenv("CC_ARCHIVE_KEEP_MONTHS", "12")
    with pytest.raises(ValueError, match="CC_ARCHIVE_KEEP_MONTHS"):
        Settings.from_env()
