"""The wall page `/` in headless chromium over the real stack (ingest + relay + test Valkey).

Feature codes: wall001 colour, wall002 markup-as-text, wall003 console, wall004 no scrollbars,
wall005 English, wall006 resume after a dropped socket, wall007 screenshots, wall008 a lost
relay and stale data in the header, wall009 bounded memory.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException

from dashboard.models import SEVERITY_COLOURS
from feeds.redis_server import free_port
from layouts import ids

from ..auth_util import browser_sign_in

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).parents[1] / "screenshots"
CITY = json.loads((ROOT / "data" / "pingdu" / "city.json").read_text(encoding="utf-8"))
# A point in Pingdu's old town (凤台街道), inside every boundary.
CENTRE = tuple(CITY["towns"][0]["centroid"])


def now_ms() -> int:
    return int(time.time() * 1000)


def hex_rgb(colour: str) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def make_event(eid: str, severity: int, **extra: Any) -> dict[str, Any]:
    lon, lat = extra.pop("at", CENTRE)
    return {"id": eid, "type": "fire", "severity": severity, "lon": lon, "lat": lat,
            "ts": now_ms(), "title": f"测试事件 {eid}", "source": "hotline",
            "address": "平度市人民路1号", **extra}


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Wall:
    """The page in the browser, with the few probes the tests need."""

    def __init__(self, dash_duo: Any, stack: Any) -> None:
        self.duo = dash_duo
        self.stack = stack
        self.driver = dash_duo.driver

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def open(self, query: str = "", size: tuple[int, int] = (1920, 1080)) -> None:
        # an exact viewport (the window's outer size would include headless chrome's frame)
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        self.driver.get(self.duo.server_url.rstrip("/") + "/" + query)
        wait_for(lambda: self.js("return !!(window.ccwall && window.ccwall.connected)"), 10,
                 "the websocket to connect")

    def wait(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """`wait_for`, with the page's last frames in the message when it times out."""
        try:
            return wait_for(check, timeout, what)
        except AssertionError as exc:
            frames = self.js("return window.ccwall && window.ccwall.recentFrames")
            logs = self.duo.get_logs()
            raise AssertionError(f"{exc}; recent frames {frames}; console {logs}") from None

    def row(self, eid: str) -> dict[str, Any] | None:
        return self.js("""
            const row = document.querySelector(`.cc-event-row[data-id="${arguments[0]}"]`);
            if (!row) return null;
            const chip = row.querySelector('.cc-sev-chip');
            return {severity: row.dataset.severity, chip: chip.style.backgroundColor,
                    title: row.querySelector('.cc-row-title').textContent,
                    type: row.querySelector('.cc-row-type').textContent};
        """, eid)

    def marker(self, eid: str) -> dict[str, Any] | None:
        return self.js("""
            const p = document.querySelector(`path.cc-ev[data-id="${arguments[0]}"]`);
            return p ? {fill: p.getAttribute('fill'), severity: p.dataset.severity} : null;
        """, eid)

    def scroll_sizes(self) -> dict[str, int]:
        return self.js("""
            const d = document.documentElement, b = document.body;
            return {iw: innerWidth, ih: innerHeight, dw: d.scrollWidth, dh: d.scrollHeight,
                    bw: b.scrollWidth, bh: b.scrollHeight};
        """)


@pytest.fixture
def wall(dash_duo: Any, stack: Any) -> Wall:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    browser_sign_in(dash_duo, stack.client, "display", "wall")
    w = Wall(dash_duo, stack)
    w.open()
    return w


def test_wall001_event_appears_in_severity_colour(wall: Wall) -> None:
    # Untimed warm-up: ingest loads the city's grid index on its first located message (~1 s).
    wall.stack.publish("event", make_event("EV-WARM", 4))
    wall.wait(lambda: wall.row("EV-WARM"), 5, "the warm-up event")
    for severity in (1, 3):
        eid = f"EV-COL-{severity}"
        start = time.monotonic()
        wall.stack.publish("event", make_event(eid, severity))
        row = wall.wait(lambda eid=eid: wall.row(eid), 1.0, f"list row {eid}")
        marker = wall.wait(lambda eid=eid: wall.marker(eid), 1.0 - (time.monotonic() - start),
                           f"map marker {eid}")
        colour = SEVERITY_COLOURS[severity]
        assert row["severity"] == str(severity)
        assert row["chip"] == hex_rgb(colour)
        assert marker["fill"].lower() == colour
        assert marker["severity"] == str(severity)
        # the benchmark hook saw it painted
        assert wall.js("return window.ccwall.appliedAt.has(arguments[0])", eid)
    counts = wall.js("return window.ccwall.state")
    assert counts["events"] == 3


def test_wall002_markup_in_a_title_is_shown_as_text(wall: Wall) -> None:
    evil = '<img src=x onerror=alert(1)>'
    wall.stack.publish("event", make_event(
        "EV-XSS", 2, title=evil, description=evil + "<script>alert(2)</script>",
        reporter="<b>bold</b>", address="<i>x</i>"))
    row = wait_for(lambda: wall.row("EV-XSS"), 2, "the row")
    assert row["title"] == evil
    # the detail card too
    wall.driver.find_element("css selector", '.cc-event-row[data-id="EV-XSS"]').click()
    wait_for(lambda: wall.js(f"return !document.getElementById('{ids.DETAIL}').hidden"), 2,
             "the detail card")
    title = wall.driver.find_element("id", ids.detail_field("title")).text
    assert title == evil
    assert wall.driver.find_element("id", ids.detail_field("reporter")).text == "<b>bold</b>"
    injected = f"#{ids.EVENT_LIST} :is(img, script, b, i), #{ids.DETAIL} :is(img, script, b, i)"
    assert wall.js("return document.querySelectorAll(arguments[0]).length", injected) == 0
    assert wall.js("return document.querySelectorAll('img').length") == 0
    with pytest.raises(NoAlertPresentException):
        wall.driver.switch_to.alert.text  # noqa: B018
    assert wall.duo.get_logs() == []


def test_wall003_no_console_errors(wall: Wall) -> None:
    for i, severity in enumerate((1, 2, 3, 4)):
        wall.stack.publish("event", make_event(f"EV-LOG-{i}", severity))
    wall.stack.publish("worker", {"id": "W-LOG", "lon": CENTRE[0], "lat": CENTRE[1],
                                  "ts": now_ms(), "name": "张三", "status": "on_duty"})
    wait_for(lambda: wall.row("EV-LOG-3"), 2, "the rows")
    # select from the list, close the card, toggle the unit layers off and on again
    wall.driver.find_element("css selector", '.cc-event-row[data-id="EV-LOG-0"]').click()
    wait_for(lambda: wall.js(f"return !document.getElementById('{ids.DETAIL}').hidden"), 2,
             "the detail card")
    wall.driver.find_element("id", ids.DETAIL_CLOSE).click()
    wait_for(lambda: wall.js(f"return document.getElementById('{ids.DETAIL}').hidden"), 2,
             "the card to close")
    for box in wall.driver.find_elements("css selector", ".cc-toggle-input"):
        box.click()
        box.click()
    time.sleep(0.5)
    assert wall.duo.get_logs() == []


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160), (5760, 1080)],
                         ids=["1080p", "4k", "3x1-wall"])
def test_wall004_no_scrollbars(wall: Wall, size: tuple[int, int]) -> None:
    wall.open(size=size)
    for i in range(40):  # more rows than fit, long titles
        wall.stack.publish("event", make_event(f"EV-S{i}", 1 + i % 4, title="很长的标题" * 12))
    wait_for(lambda: wall.row("EV-S39"), 3, "the rows")
    s = wall.scroll_sizes()
    assert (s["iw"], s["ih"]) == size
    assert s["dw"] <= s["iw"] and s["dh"] <= s["ih"], s
    assert s["bw"] <= s["iw"] and s["bh"] <= s["ih"], s
    # the type scaled with the screen: 1rem = 16px at 1920×1080
    rem = wall.js("return parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert rem == pytest.approx(16 * min(size[0] / 1920, size[1] / 1080), rel=0.01)


def test_wall005_english(wall: Wall) -> None:
    wall.open("?lang=en")
    wall.stack.publish("event", make_event("EV-EN", 2, type="gas_leak"))
    row = wait_for(lambda: wall.row("EV-EN"), 2, "the row")
    assert row["type"] == "Gas leak"
    assert wall.driver.find_element("id", ids.CENTER_NAME).text == \
        wall.stack.settings.center_name_en
    assert wall.js("return document.documentElement.lang") == "en"
    body = wall.driver.find_element("tag name", "body").text
    for text in ("Events today", "Live events", "By category", "Grid workers", "Live"):
        assert text in body
    assert "今日事件" not in body
    assert wall.duo.get_logs() == []


def test_wall006_resumes_after_a_dropped_connection(wall: Wall) -> None:
    wall.stack.publish("event", make_event("EV-R1", 4))
    wait_for(lambda: wall.row("EV-R1"), 2, "the first row")
    seq = wall.js("return window.ccwall.lastSeq")
    wall.js("window.ccwall.socket.drop()")
    wall.stack.publish("event", make_event("EV-R2", 3))  # while the socket is down
    wait_for(lambda: wall.row("EV-R2"), 5, "the event missed while disconnected")
    assert wall.js("return window.ccwall.connected")
    assert wall.js("return window.ccwall.lastSeq") > seq
    assert wall.row("EV-R1") is not None
    assert wall.duo.get_logs() == []


def test_wall008_header_shows_a_lost_relay_and_stale_data(dash_duo: Any, stack: Any) -> None:
    from app import create_app

    # the same stack, but the page is told a websocket port nothing listens on
    app = create_app(dataclasses.replace(stack.settings, ws_port=free_port()))
    dash_duo.start_server(app, navigate=False, port=free_port())
    browser_sign_in(dash_duo, stack.client, "display", "wall")
    wall = Wall(dash_duo, stack)
    conn = f"document.getElementById('{ids.CONN}')"
    # the layout may still be rendering: no element yet reads as "not yet"
    wall.wait(lambda: wall.js(f"return {conn} && {conn}.dataset.state") == "reconnecting", 5,
              "the reconnecting state")
    wall.wait(lambda: "2" in wall.driver.find_element("id", ids.CONN_TEXT).text, 5,
              "the second attempt to be counted")
    assert wall.js(f"return getComputedStyle({conn}).color") != \
        wall.js(f"return getComputedStyle(document.getElementById('{ids.DATA_AGE}')).color")
    assert wall.driver.find_element("id", ids.DATA_AGE).get_attribute("data-level") == "none"
    # newest data 200 s old (the stats frame's own clock) → red
    wall.js("const now = Date.now(); window.ccwall.applyFrame("
            "{type: 'stats', server_ts: now, stats: {last_ts: now - 200000}})")
    age = wall.driver.find_element("id", ids.DATA_AGE)
    wall.wait(lambda: age.get_attribute("data-level") == "red", 3, "the stale colour")
    assert "3" in wall.driver.find_element("id", ids.DATA_AGE_TEXT).text  # 3 minutes


def test_wall009_memory_stays_bounded(wall: Wall) -> None:
    """6,000 events (some closed over a day ago) through applyFrame: every store is capped."""
    result = wall.js("""
        const cc = window.ccwall, now = Date.now(), day = 24 * 3600 * 1000;
        let seq = cc.lastSeq;
        for (let i = 0; i < 6000; i++) {
          const closedLongAgo = i < 200;
          cc.applyFrame({type: 'delta', seq: ++seq, kind: 'event', op: 'upsert', data: {
            id: 'B' + i, type: 'noise', severity: 1 + i % 4, lon: 119.9 + (i % 97) / 500,
            lat: 36.7 + (i % 89) / 500, ts: closedLongAgo ? now - day - 3600e3 : now - i,
            status: closedLongAgo || i % 3 === 0 ? 'closed' : 'reported'}});
        }
        const during = cc.state.events;
        cc.store.prune();
        return {during: during, after: cc.state.events, applied: cc.appliedAt.size,
                old: cc.store.get('event', 'B5') ? 1 : 0, lastSeq: cc.lastSeq};
    """)
    assert result["during"] <= 5500
    assert result["after"] <= 5000
    assert result["old"] == 0  # closed more than 24 h ago
    assert result["applied"] <= 2000
    time.sleep(0.6)  # the throttled list redraw
    assert wall.js("return document.querySelectorAll('.cc-event-row').length") <= 30
    assert wall.duo.get_logs() == []


# -- the screenshots: a realistic afternoon in Pingdu -------------------------------------

# (type, severity, source, title, description); {c} community, {t} town, {r} a road.
URGENT = [
    ("fire", 1, "app", "{t}工业园区仓库起火", "仓库冒出浓烟，疑有人员被困，消防已出动"),
    ("gas_leak", 2, "hotline", "{r}燃气管道破损泄漏", "施工挖断燃气管，已疏散周边住户"),
    ("traffic_accident", 2, "police", "G204国道{t}段三车追尾", "一人受伤，车道堵塞约1公里"),
    ("missing_person", 2, "police", "{c}一名7岁儿童走失", "身穿红色外套，最后出现在集市"),
    ("flood", 2, "iot", "{r}下穿立交积水", "水位传感器读数42厘米，建议封闭"),
]
EVERYDAY = [
    ("dispute", 4, "app", "{c}邻里纠纷", "楼上漏水引发争执，请求社区调解"),
    ("illegal_parking", 4, "video_ai", "{r}车辆违停", "视频AI识别占用消防通道"),
    ("garbage", 4, "wechat", "{c}垃圾堆放", "群众反映垃圾清运不及时"),
    ("street_vending", 4, "patrol", "{r}夜市占道经营", "流动摊贩占用人行道"),
    ("elderly_alone", 3, "iot", "{c}独居老人用水异常", "智能水表24小时无读数"),
    ("safety_hazard", 3, "app", "{c}电动车楼道充电", "楼道内私拉电线为电动车充电"),
    ("manhole_cover", 4, "hotline", "{r}井盖缺失", "人行道井盖丢失，已设置围挡"),
    ("road_damage", 4, "patrol", "{r}路面塌陷", "路面出现约1平方米坑洞"),
    ("noise", 4, "wechat", "{r}工地夜间施工噪音", "22点后仍在施工"),
    ("petition", 3, "hotline", "{c}业主反映房产证办理", "约30名业主反映办证问题"),
    ("illegal_construction", 3, "video_ai", "{c}楼顶违建", "无人机巡查发现楼顶新建彩钢房"),
    ("theft", 3, "police", "{c}电动车被盗", "车主报称夜间停放的电动车被盗"),
]
ROADS = ["人民路", "扬州路", "红旗路", "胶州路", "杭州路", "青岛路", "长江路", "北京路",
         "常州路", "郑州路", "苏州路", "福州路"]
STATUSES = ["reported", "reported", "dispatched", "in_progress", "in_progress", "handled",
            "closed"]


def publish_afternoon(stack: Any, rng: random.Random) -> int:
    """~300 workers, resources, cameras and 60 events spread over Pingdu; the messages sent."""
    now = now_ms()
    grids, communities = CITY["grids"], CITY["communities"]
    towns = {t["code"]: t for t in CITY["towns"]}
    sent = 0

    def near(centroid: list[float], spread: float) -> tuple[float, float]:
        return (round(centroid[0] + rng.uniform(-spread, spread), 6),
                round(centroid[1] + rng.uniform(-spread, spread), 6))

    for i in range(320):
        lon, lat = near(rng.choice(grids)["centroid"], 0.004)
        status = rng.choices(["on_duty", "busy", "off_duty", "sos"], [80, 15, 5, 0.3])[0]
        stack.publish("worker", {"id": f"W{i:04d}", "lon": lon, "lat": lat, "ts": now,
                                 "name": f"网格员{i:03d}", "status": status})
        sent += 1
    kinds = ["fire_engine", "ambulance", "police_car", "patrol_car", "law_enforcement",
             "rescue_team", "drone"]
    for i in range(60):
        lon, lat = near(rng.choice(communities)["centroid"], 0.01)
        stack.publish("resource", {"id": f"R{i:03d}", "kind": kinds[i % len(kinds)],
                                   "lon": lon, "lat": lat, "ts": now,
                                   "status": rng.choice(["available", "available", "en_route"])})
        sent += 1
    for i in range(150):
        lon, lat = near(rng.choice(grids)["centroid"], 0.003)
        stack.publish("camera", {"id": f"3702830000132{i:07d}", "lon": lon, "lat": lat,
                                 "online": rng.random() > 0.05})
        sent += 1
    for i in range(60):
        # the urgent few are the newest; everyday cases fill the last hour
        case = URGENT[i - 55] if i >= 55 else rng.choice(EVERYDAY)
        etype, sev, source, title, desc = case
        comm = rng.choice(communities)
        town = towns[comm["parent"]]
        lon, lat = near(comm["centroid"], 0.003)
        names = {"c": comm["name"], "t": town["name"], "r": rng.choice(ROADS)}
        stack.publish("event", {
            "id": f"EV{i:04d}", "type": etype, "severity": sev, "lon": lon, "lat": lat,
            "ts": now - (60 - i) * 55_000, "title": title.format(**names),
            "description": desc, "source": source,
            "status": "reported" if i >= 56 else rng.choice(STATUSES),
            "reporter": f"网格员{rng.randrange(320):03d}",
            "address": f"平度市{town['name']}{comm['name']}",
        })
        sent += 1
    return sent


def test_wall007_screenshots(wall: Wall) -> None:
    sent = publish_afternoon(wall.stack, random.Random(7))
    wait_for(lambda: wall.js("return window.ccwall.state.workers") >= 320, 10, "the workers")
    assert sent > 500
    SHOTS.mkdir(exist_ok=True)
    for size in ((1920, 1080), (3840, 2160)):
        wall.open(size=size)
        wait_for(lambda: wall.js("return window.ccwall.state.events") >= 60, 5, "the events")
        wait_for(lambda: wall.js("return document.querySelectorAll('.cc-label-town').length")
                 >= 17, 5, "the town names")
        time.sleep(1.5)  # stats frame, fit animation, list fade-in
        s = wall.scroll_sizes()
        assert s["dw"] <= s["iw"] and s["dh"] <= s["ih"], s
        wall.driver.save_screenshot(str(SHOTS / f"wall-{size[0]}x{size[1]}.png"))
    assert wall.duo.get_logs() == []
