"""The executive cockpit /cockpit in headless Chromium over the real stack (ingest, relay,
the Dash app with sign-in) and the fixed history of tests/fixtures/cockpit_history.json.

Feature codes: ck101 renders at 1920×1080 and 3840×2160 with no scrollbars and no console
errors, and every figure on the page is the API's; ck102 drill-down city → town →
community by the bars, the map and the ranking, the address keeps `?scope=`, the breadcrumb
and the back button go up; ck103 a town-scoped leader sees only that town (no other town's
name anywhere on the page) and `?scope=` of another town is refused (a 403 page; the API
403); ck104 other roles get the 403 page, no session goes to /login; ck105 new data shows
without a reload. The charts are Plotly figures (issue 16): ck106 hovering a bar or an area
shows its value; ck107 the range picker changes the figures, the charts, the address and the
export (7 days, this year, a custom from–to), in zh and en; ck108 the charts are redrawn only
when the figures changed, not on every poll, and again in larger type when the page's
scale changes (a 4K wall).

The server's clock is the fixture's moment (`callbacks.archive.stats.time`, the one clock the
figures read), so the figures are the fixture's own and not empty.
"""

from __future__ import annotations

import time as _time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from selenium.webdriver.common.action_chains import ActionChains

import callbacks.archive.stats
from dashboard.city import load_city
from feeds.redis_server import free_port
from layouts import ids

from ..app.test_wall_browser import wait_for
from ..auth_util import browser_sign_in
from ..cockpit_util import load_history, now_ms
from ..conftest import Stack

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).parents[1] / "screenshots"
TOWN_A = "370283001"  # 凤台街道: G1, G2 (two communities)
TOWN_B = "370283002"  # 李园街道: G3


@pytest.fixture
def history(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    doc = load_history(stack.client, stack.settings)
    # the fixture's moment, running on from now (the cache's minimum age needs time to pass)
    offset = now_ms() / 1000 - _time.time()
    monkeypatch.setattr(callbacks.archive.stats, "time",
                        SimpleNamespace(time=lambda: _time.time() + offset))
    return doc


class Cockpit:
    def __init__(self, dash_duo: Any, stack: Stack) -> None:
        self.duo = dash_duo
        self.stack = stack
        self.driver = dash_duo.driver
        self.base = ""

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def start(self, role: str = "leader", name: str | None = None,
              scope: str | None = None) -> None:
        self.duo.start_server(self.stack.app, navigate=False, port=free_port())
        self.base = self.duo.server.url.rstrip("/")
        browser_sign_in(self.duo, self.stack.client, role, name,
                        prefix=self.stack.settings.prefix, scope=scope)

    def size(self, size: tuple[int, int]) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})

    def open(self, query: str = "", size: tuple[int, int] = (1920, 1080)) -> None:
        self.size(size)
        self.driver.get(self.base + "/cockpit" + query)
        self.painted()

    def painted(self, scope: str | None = None) -> dict[str, Any]:
        """Until the figures (of `scope`) are on the page and the map has drawn them."""
        def done() -> Any:
            return self.js("""
                const c = window.ccwall && window.ccwall.cockpit;
                const f = c && c.figures;
                if (!f || (arguments[0] && f.scope.code !== arguments[0])) return null;
                const root = document.getElementById(arguments[1]);
                if (root.dataset.scope !== f.scope.code) return null;
                // painted and charted: the figures fetched last, not the ones before them
                if (!c.chartKey || !c.chartKey.startsWith(c.shownKey + '|')) return null;
                const keys = Object.values(c.chartKeys());
                if (keys.some(k => k !== c.chartKey)) return null;
                return f;""", scope, ids.CK_ROOT)
        return wait_for(done, 15, f"the cockpit of {scope or 'the default scope'}")

    def api(self, scope: str | None = None, query: str = "") -> dict[str, Any]:
        """The API's figures, fetched from the page (its session); `query` adds the range."""
        q = "&".join(x for x in ((f"scope={scope}" if scope else ""), query) if x)
        return self.js("""return fetch('/api/stats' + (arguments[0] ? '?' + arguments[0]
            : ''), {credentials: 'same-origin'}).then(r => r.json());""", q)

    def chart(self, box: str) -> dict[str, Any]:
        """A chart's figure as Plotly drew it: its traces' data and its layout's meta."""
        return self.js("""const gd = document.querySelector(`#${arguments[0]} .js-plotly-plot`);
            return {data: gd.data.map(d => ({type: d.type, name: d.name, x: d.x, y: d.y,
                      z: d.z, locations: d.locations, customdata: d.customdata})),
                    meta: gd.layout.meta};""", box)

    def ck(self, key: str) -> str:
        return self.js("return document.querySelector(`[data-ck=\"${arguments[0]}\"]`)"
                       ".textContent", key)

    def fits(self) -> dict[str, Any]:
        return self.js("""const d = document.documentElement, b = document.body;
            return {sh: d.scrollHeight, sw: d.scrollWidth, h: innerHeight, w: innerWidth,
                    bh: b.scrollHeight, bw: b.scrollWidth,
                    clipped: Array.from(document.querySelectorAll('.cc-panel-body'))
                      .filter(p => p.scrollHeight > p.clientHeight + 2)
                      .map(p => p.parentElement.className)};""")

    def text(self) -> str:
        return self.js("return document.body.innerText")

    def click(self, css: str) -> None:
        self.driver.find_element("css selector", css).click()

    def click_bar(self, box: str, code: str) -> None:
        """A real click on the bar of unit or code `code` in a horizontal bar chart."""
        bar = self.js("""const gd = document.querySelector(`#${arguments[0]} .js-plotly-plot`);
            const i = gd.data[0].customdata.findIndex(
                c => (Array.isArray(c) ? c[0] : c) === arguments[1]);
            return gd.querySelectorAll('.bars .point')[i];""", box, code)
        ActionChains(self.driver).move_to_element(bar).click().perform()

    def area_spot(self, code: str) -> tuple[float, float]:
        """Where (viewport px) the map draws unit `code`'s centre: its label's anchor, which
        the city puts inside the unit."""
        return tuple(self.js("""
            const gd = document.querySelector(`#${arguments[0]} .js-plotly-plot`);
            const labels = gd.data.findIndex(d => d.name === 'labels');
            const i = gd.data[0].locations.indexOf(arguments[1]);
            const geo = gd._fullLayout.geo._subplot;
            const k = gd.data[labels].text.findIndex(
                t => t.startsWith(gd.data[0].customdata[i][0]));
            const xy = geo.projection([gd.data[labels].lon[k], gd.data[labels].lat[k]]);
            const dom = gd._fullLayout.geo.domain, size = gd._fullLayout._size;
            const r = gd.getBoundingClientRect();
            return [r.left + size.l + dom.x[0] * size.w + xy[0],
                    r.top + size.t + (1 - dom.y[1]) * size.h + xy[1]];""", ids.CK_MAP, code))

    def click_area(self, code: str) -> None:
        """A real click on the map inside unit `code`."""
        x, y = self.area_spot(code)
        ActionChains(self.driver).move_to_location(int(x), int(y)).click().perform()

    def shot(self, name: str) -> None:
        SHOTS.mkdir(exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / name))


@pytest.fixture
def page(dash_duo: Any, stack: Stack, history: dict[str, Any]) -> Cockpit:
    return Cockpit(dash_duo, stack)


def pct(x: float | None) -> str:
    return "–" if x is None else f"{round(x * 1000) / 10:.1f}%"


def check_figures(page: Cockpit, fig: dict[str, Any]) -> None:
    """Every number on the page is the API's."""
    for p in ("today", "week", "month"):
        assert page.ck(f"{p}.count") == f"{fig['periods'][p]['count']:,}"
    for k in ("open", "overdue", "in_progress", "closed_today"):
        assert page.ck(f"now.{k}") == f"{fig['now'][k]:,}", k
    for k in ("total", "closed", "overdue", "yellow", "red"):
        assert page.ck(f"window.{k}") == f"{fig['window'][k]:,}", k
    assert page.ck("window.closure_rate") == pct(fig["window"]["closure_rate"])
    assert page.ck("workers.rate") == pct(fig["workers"]["online_rate"])
    assert page.ck("patrol.rate") == pct(fig["patrol"]["coverage"])
    check_charts(page, fig)


def check_charts(page: Cockpit, fig: dict[str, Any]) -> None:
    """Every chart shows the API's figures (the same facts the hand-drawn bars showed)."""
    for box, counts in ((ids.CK_CATS, fig["by_category"]), (ids.CK_SRCS, fig["by_source"])):
        bar = page.chart(box)["data"][0]
        shown = dict(zip(bar["customdata"], bar["x"], strict=True))
        assert shown == {c: counts.get(c, 0) for c in shown}, box
        assert sum(shown.values()) == fig["window"]["total"], box
    bar = page.chart(ids.CK_SEV)["data"][0]
    assert dict(zip(bar["customdata"], bar["x"], strict=True)) == {
        s: fig["by_severity"].get(s, 0) for s in ("1", "2", "3", "4")}
    bar = page.chart(ids.CK_CHILDREN)["data"][0]
    kids = [(cd[0], name, x) for cd, name, x in zip(bar["customdata"], bar["y"], bar["x"],
                                                    strict=True)]
    # the units' names in the page's language (README, "Languages")
    name = "name_en" if page.js("return window.ccwall.cfg.lang") == "en" else "name"
    assert sorted(kids) == sorted((c["code"], c[name], c["total"]) for c in fig["children"])
    assert [k[2] for k in kids] == sorted((k[2] for k in kids), reverse=True)  # most first
    trend = page.chart(ids.CK_TREND)["data"]
    assert [t["name"] for t in trend] == ["受理", "办结"] or [t["name"] for t in trend] == [
        "Reported", "Closed"]
    assert trend[0]["customdata"] == fig["trend"]["days"]
    assert trend[0]["y"] == fig["trend"]["total"] and trend[1]["y"] == fig["trend"]["closed"]
    the_map = page.chart(ids.CK_MAP)["data"]
    if fig["scope"]["child_level"]:
        dens = {c["code"]: c["density_km2"] or 0 for c in fig["children"]}
        assert the_map[0]["name"] == "density"
        assert dict(zip(the_map[0]["locations"], the_map[0]["z"], strict=True)) == dens
    outline = next(t for t in the_map if t["name"] == "outline")
    assert outline["locations"] == [fig["scope"]["code"]]


def test_ck101_renders_on_both_walls_with_the_apis_figures(page: Cockpit) -> None:
    page.start("leader")
    for size, name, query in (((1920, 1080), "cockpit-1080p.png", ""),
                              ((3840, 2160), "cockpit-4k.png", ""),
                              ((1920, 1080), "cockpit-1080p-en.png", "?lang=en"),
                              ((3840, 2160), "cockpit-4k-en.png", "?lang=en")):
        page.open(query, size=size)
        fig = page.api()
        assert fig["scope"]["level"] == "city"
        assert fig["window"]["total"] > 0  # the fixture's history, not an empty city
        check_figures(page, fig)
        _time.sleep(0.8)  # the bars' transitions, for the screenshot
        fits = page.fits()
        assert fits["sh"] <= fits["h"] and fits["sw"] <= fits["w"], fits
        assert fits["bh"] <= fits["h"] and fits["bw"] <= fits["w"], fits
        assert fits["clipped"] == [], fits
        page.shot(name)
    assert page.duo.get_logs() == []


def test_ck102_drill_down_to_a_town_and_a_community_and_back(page: Cockpit) -> None:
    page.start("commander")
    page.open()
    city = load_city()
    # the town's bar
    page.click_bar(ids.CK_CHILDREN, TOWN_A)
    fig = page.painted(TOWN_A)
    assert page.js("return location.search") == f"?scope={TOWN_A}"
    assert fig["scope"]["child_level"] == "community"
    check_figures(page, fig)
    assert page.api(TOWN_A)["window"] == fig["window"]
    crumbs = page.js(f"""return Array.from(document.querySelectorAll(
        '#{ids.CK_CRUMBS} .cc-ck-crumb')).map(a => a.textContent)""")
    assert crumbs == ["平度市", city.unit(TOWN_A).name]  # type: ignore[union-attr]
    page.shot("cockpit-town.png")
    # a community on the map
    community = "370283001001"
    page.click_area(community)
    fig = page.painted(community)
    assert fig["scope"]["child_level"] == "grid"
    check_figures(page, fig)
    # the browser's back button, then the breadcrumb's city
    page.driver.back()
    page.painted(TOWN_A)
    page.click(f'#{ids.CK_CRUMBS} a.cc-ck-crumb[data-code="370283"]')
    page.painted("370283")
    assert page.js("return location.search") == ""
    # the first of the towns ranked by overdue count, then up one level
    first = page.api()["rankings"]["town"]["overdue"][0]["code"]
    page.click(f'#{ids.CK_RANK_OVERDUE} .cc-ck-rank-row[data-code="{first}"]')
    page.painted(first)
    page.click(f"#{ids.CK_CRUMBS} a.cc-ck-up")
    page.painted("370283")
    assert page.duo.get_logs() == []


def test_ck103_a_town_leader_sees_only_the_town(page: Cockpit) -> None:
    city = load_city()
    page.start("leader", "ck-town-a", scope=TOWN_A)
    page.open()
    fig = page.painted(TOWN_A)
    assert fig["scope"]["code"] == TOWN_A
    text = page.text()
    others = [u.name for u in city.children(city.code) if u.code != TOWN_A]
    assert others and not [n for n in others if n in text]
    assert "平度市" not in page.js(f"return document.getElementById('{ids.CK_CRUMBS}')"
                                   ".textContent")
    assert page.js(f"return document.querySelector('#{ids.CK_CRUMBS} a.cc-ck-up')") is None
    page.shot("cockpit-town-leader.png")
    # the other town: the page is a 403, the API too
    assert page.api(TOWN_B)["code"] == "out_of_scope"
    page.driver.get(page.base + f"/cockpit?scope={TOWN_B}")
    wait_for(lambda: page.js("return !!document.getElementById('cc-ck-denied')"), 5,
             "the 403 page")
    assert page.js("return document.getElementById('cc-ck-denied').dataset.reason") == "scope"
    assert not [n for n in others if n in page.text()]
    # the console has the 403 of that page load and nothing else
    logs = [e for e in page.duo.get_logs() if "403" not in e.get("message", "")]
    assert logs == []


def test_ck104_other_roles_get_a_403_page_and_no_session_goes_to_login(
        dash_duo: Any, stack: Stack, history: dict[str, Any]) -> None:
    page = Cockpit(dash_duo, stack)
    page.duo.start_server(stack.app, navigate=False, port=free_port())
    page.base = page.duo.server.url.rstrip("/")
    page.driver.get(page.base + "/cockpit?scope=370283001")
    wait_for(lambda: "/login" in page.driver.current_url, 5, "the sign-in page")
    assert "next=%2Fcockpit" in page.driver.current_url
    browser_sign_in(page.duo, stack.client, "duty_officer", prefix=stack.settings.prefix)
    page.driver.get(page.base + "/cockpit")
    wait_for(lambda: page.js("return !!document.getElementById('cc-ck-denied')"), 5,
             "the 403 page")
    assert page.js("return document.getElementById('cc-ck-denied').dataset.reason") == "role"
    client = stack.app.server.test_client()
    assert client.get("/cockpit").status_code == 302  # no session: to /login


def test_ck105_new_data_shows_without_a_reload(page: Cockpit, stack: Stack,
                                               r: redis.Redis) -> None:
    page.start("leader")
    page.open()
    before = page.painted()
    marker = page.js("document.body.dataset.ckMark = 'same-page'; return 1")
    assert marker == 1
    # one more open event in town A, reported at the fixture's moment
    from dashboard.store import Store

    from ..units_util import put

    city = load_city()
    grid = city.unit("370283001001001")
    assert grid is not None
    put(Store(stack.client, stack.settings.prefix), "event", "E-NEW", *grid.centroid,
        ts=now_ms() - 1000, type="fire", severity=2, source="hotline", category="accident",
        grid_id=grid.code, community_id="370283001001", town_id=TOWN_A, first_ts=now_ms() - 1000)
    # (the apply script bumps Pstats:ver, as an ingest batch does)
    wait_for(lambda: page.ck("now.open") == f"{before['now']['open'] + 1:,}", 20,
             "the new open event on the page")
    assert page.js("return document.body.dataset.ckMark") == "same-page"
    assert page.duo.get_logs() == []


def hover_text(page: Cockpit, box: str) -> str:
    return page.js("""const h = document.querySelector(`#${arguments[0]} .hoverlayer`);
        return h ? h.textContent : '';""", box)


def test_ck106_hover_shows_a_value(page: Cockpit) -> None:
    page.start("leader")
    page.open()
    fig = page.painted()
    # today's reported bar: the day and its count
    today = len(fig["trend"]["days"]) - 1
    bar = page.js(f"""return document.querySelectorAll(
        '#{ids.CK_TREND} .trace.bars')[0].querySelectorAll('.point')[{today}]""")
    ActionChains(page.driver).move_to_element(bar).perform()
    text = wait_for(lambda: hover_text(page, ids.CK_TREND), 5, "the trend's hover label")
    assert fig["trend"]["days"][today] in text and str(fig["trend"]["total"][today]) in text
    # a town on the map: its name, density and count
    town = max(fig["children"], key=lambda c: c["total"])
    x, y = page.area_spot(town["code"])
    ActionChains(page.driver).move_to_location(int(x), int(y)).perform()
    text = wait_for(lambda: hover_text(page, ids.CK_MAP), 5, "the map's hover label")
    assert town["name"] in text and f"{town['density_km2']:.2f}" in text, text
    assert str(town["total"]) in text
    page.shot("cockpit-hover.png")
    # a category bar
    page.driver.execute_script("window.scrollTo(0, 0)")
    bar = page.js(f"""const gd = document.querySelector('#{ids.CK_CATS} .js-plotly-plot');
        return gd.querySelectorAll('.bars .point')[gd.data[0].customdata.indexOf('accident')]""")
    ActionChains(page.driver).move_to_element(bar).perform()
    text = wait_for(lambda: hover_text(page, ids.CK_CATS), 5, "the categories' hover label")
    assert f"事故灾难 {fig['by_category']['accident']}" in text, text
    assert page.duo.get_logs() == []


def export_of(page: Cockpit, fmt: str = "csv") -> dict[str, Any]:
    """The export link's address and what it answers (rows, the file's name)."""
    return page.js("""const a = document.querySelector(
            `#${arguments[0]} a[data-format="${arguments[1]}"]`);
        return fetch(a.href, {credentials: 'same-origin'}).then(r => ({href: a.href,
            status: r.status, rows: r.headers.get('X-Rows'),
            name: r.headers.get('Content-Disposition')}));""", ids.CK_EXPORT, fmt)


def test_ck107_the_range_picker_drives_figures_charts_and_export(page: Cockpit) -> None:
    page.start("commander")
    for lang, query in (("zh", ""), ("en", "?lang=en")):
        page.open(query)
        fig = page.painted()
        assert fig["range"] == "30d" and len(fig["trend"]["days"]) == 30
        first = export_of(page)
        assert first["status"] == 200 and int(first["rows"]) == fig["window"]["total"]
        # 7 days
        page.click(f'#{ids.CK_RANGE} [data-range="7d"]')
        wait_for(lambda: (page.painted() or {}).get("range") == "7d", 10, "the 7-day figures")
        fig = page.painted()
        assert "range=7d" in page.js("return location.search")
        assert len(fig["trend"]["days"]) == 7 and fig["window_days"] == 7
        assert fig == {**page.api(query="range=7d"), "generated": fig["generated"],
                       "valid_until": fig["valid_until"]}
        check_figures(page, fig)
        assert page.chart(ids.CK_TREND)["data"][0]["customdata"] == fig["trend"]["days"]
        seven = export_of(page)
        assert "range=7d" in seven["href"] and int(seven["rows"]) == fig["window"]["total"]
        assert page.js(f"""return document.querySelector(
            '#{ids.CK_RANGE} [data-range="7d"]').getAttribute('aria-pressed')""") == "true"
        title = "近7日" if lang == "zh" else "7 days"
        assert page.js(f"""return document.getElementById('{ids.CK_WINDOW}')
            .closest('.cc-panel').querySelector('.cc-panel-title').textContent""") == title
        # a custom span: the fixture's November, both days included
        page.click(f'#{ids.CK_RANGE} [data-range="custom"]')
        page.js(f"""const box = document.getElementById('{ids.CK_CUSTOM}');
            box.querySelector('[data-date="from"] input').value = '2026-11-01';
            box.querySelector('[data-date="to"] input').value = '2026-11-20';""")
        page.click(f"#{ids.CK_APPLY}")
        wait_for(lambda: (page.painted() or {}).get("range") == "custom", 10,
                 "the custom figures")
        fig = page.painted()
        assert "from=2026-11-01&to=2026-11-20" in page.js("return location.search")
        assert fig["trend"]["days"][0] == "2026-11-01" and fig["trend"]["days"][-1] == "2026-11-20"
        check_figures(page, fig)
        custom = export_of(page, "xlsx")
        assert "from=2026-11-01" in custom["href"] and "to=2026-11-20" in custom["href"]
        assert int(custom["rows"]) == fig["window"]["total"]
        assert "20261101-20261120" in custom["name"]
        page.shot(f"cockpit-range-custom-{lang}.png")
        # back to 30 days: the plain address again
        page.click(f'#{ids.CK_RANGE} [data-range="30d"]')
        wait_for(lambda: (page.painted() or {}).get("range") == "30d", 10, "30 days again")
        assert page.js("return location.search") == query
    assert page.duo.get_logs() == []


def test_ck108_charts_redraw_only_when_the_figures_change(page: Cockpit, stack: Stack) -> None:
    page.start("leader")
    page.open()
    page.painted()
    # (Plotly.react is how dcc.Graph redraws a new figure; a resize is not a redraw)
    page.js("""window.__draws = 0;
        document.querySelectorAll('.cc-ck-graph .js-plotly-plot').forEach(
            gd => gd.on('plotly_react', () => { window.__draws += 1; }));""")
    keys = page.js("return window.ccwall.cockpit.chartKeys()")
    # two polls with nothing new: the same figures, no redraw
    _time.sleep(11)
    assert page.js("return window.ccwall.cockpit.chartKeys()") == keys
    assert page.js("return window.__draws") == 0
    # a drill-down is new figures: every chart is redrawn once with them
    page.click_bar(ids.CK_CHILDREN, TOWN_A)
    page.painted(TOWN_A)
    assert page.js("return window.__draws") >= 6
    # the window moves to a 4K wall: the same figures, redrawn in type twice the size
    font = f"""return document.querySelector('#{ids.CK_TREND} .js-plotly-plot')
        ._fullLayout.font.size"""
    small = page.js(font)
    page.size((3840, 2160))
    wait_for(lambda: page.js(font) == 2 * small, 10, "the charts' type at 4K")
    assert page.painted(TOWN_A)["scope"]["code"] == TOWN_A
    assert page.duo.get_logs() == []
