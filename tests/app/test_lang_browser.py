"""One language per page (README, "Languages"): every page in English, walked in headless
Chromium over the real stack with the simulator as the city.

Feature codes: lang001 each role signs in and opens every page it may see with `?lang=en`
at 1920×1080 (the wall with an event's panel, the dispatch proposal and a track, the video
wall, the cockpit of the city, a town and a community, the duty desk, the handover with a
drafted report) and no visible text, SVG text (charts, map labels), tooltip or chart
trace holds a Chinese character, except inside an element marked as feed text (`data-feed`:
an event's title, a person's or camera's own name as sent) or speaking another language on
purpose (`lang`: the language link); lang002 the pages a role may not see (the cockpit's
403 page, the duty desk's and the handover's refusals) and the sign-in page, the same way.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.city import load_city
from feeds.redis_server import free_port
from feeds.sim import engine
from feeds.sim.engine import Simulator
from feeds.sim.video import VideoServer, VideoService
from layouts import ids

from ..auth_util import browser_sign_in, browser_sign_out
from ..conftest import Stack, start_stack
from .test_wall_browser import Wall

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).parents[1] / "screenshots"
CITY = load_city("pingdu")
TOWN = "370283009"  # 明村镇, Mingcun Town
COMMUNITY = "370283009001"

# The pages each role may open (layouts/pages.py; the cockpit is leaders' and commanders',
# the desk and the handover duty officers' and commanders').
PAGES: dict[str, tuple[str, ...]] = {
    "display": ("wall", "video"),
    "leader": ("wall", "video", "cockpit"),
    "duty_officer": ("wall", "video", "duty", "handover"),
    "commander": ("wall", "video", "cockpit", "duty", "handover"),
}

# Every piece of Chinese a page shows that it may: text inside `data-feed` (the feed's own
# words) or inside an element whose `lang` says it is Chinese on purpose. Returns the rest:
# [where, text] for visible text nodes (HTML and SVG alike), tooltips and placeholders, and
# the text Plotly holds for its hover labels, legends and ticks.
COLLECT = r"""
const han = /[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]/;
const allowed = el => {
  const said = el.closest('[lang]');  // Chinese on purpose: an element's own lang says so
  return !!el.closest('[data-feed]') ||
    (!!said && said !== document.documentElement && /^zh/i.test(said.lang));
};
const where = el => {
  const out = [];
  for (let e = el, i = 0; e && i < 3; e = e.parentElement, i++) {
    const cls = typeof e.className === 'string' ? e.className : (e.className.baseVal || '');
    out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
             (cls ? '.' + cls.trim().split(/\s+/).join('.') : ''));
  }
  return out.join(' < ');
};
const bad = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const el = n.parentElement;
  if (!el || !han.test(n.nodeValue) || /^(SCRIPT|STYLE|NOSCRIPT)$/.test(el.tagName)) continue;
  if (!el.checkVisibility({visibilityProperty: true}) || allowed(el)) continue;
  bad.push([where(el), n.nodeValue.trim().slice(0, 80)]);
}
for (const el of document.querySelectorAll('[title], [placeholder], [aria-label], [alt]')) {
  if (el.closest('[data-feed-title]') || allowed(el)) continue;
  for (const a of ['title', 'placeholder', 'aria-label', 'alt']) {
    const v = el.getAttribute(a);
    if (v && han.test(v)) bad.push([where(el) + ' @' + a, v.slice(0, 80)]);
  }
}
const strings = (v, out) => {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach(x => strings(x, out));
  return out;
};
for (const gd of document.querySelectorAll('.js-plotly-plot')) {
  for (const tr of gd.data || []) {
    const texts = strings([tr.name, tr.text, tr.hovertext, tr.hovertemplate, tr.customdata,
                           tr.x, tr.y, tr.labels], []);
    for (const v of texts) {
      if (han.test(v)) bad.push([where(gd) + ' trace ' + tr.name, v.slice(0, 80)]);
    }
  }
}
return bad;
"""


class Page(Wall):
    """A browser on the stack, walking pages in English."""

    @property
    def base(self) -> str:
        return self.duo.server.url.rstrip("/")

    def go(self, path: str) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False})
        self.driver.get(self.base + path)

    def chinese(self) -> list[list[str]]:
        return self.js(COLLECT)

    def probe(self) -> None:
        """The collector sees Chinese outside feed text, and only there: a planted span of
        each kind on the page in hand."""
        self.js("""for (const feed of [false, true]) {
            const s = document.body.appendChild(document.createElement('span'));
            s.className = 'lang-probe'; s.textContent = feed ? '馈送' : '探针';
            if (feed) s.setAttribute('data-feed', ''); }""")
        found = self.chinese()
        self.js("document.querySelectorAll('.lang-probe').forEach(e => e.remove())")
        assert [text for _, text in found] == ["探针"], found

    def check(self, name: str) -> None:
        """No Chinese outside feed text, and a screenshot to look at."""
        self.driver.save_screenshot(str(SHOTS / f"lang-en-{name}-1920x1080.png"))
        found = self.chinese()
        assert found == [], f"{name}: Chinese on the English page: {found[:20]}"


def wait_js(page: Page, script: str, what: str, timeout: float = 20) -> Any:
    return page.wait(lambda: page.js(script), timeout, what)


def walk_wall(page: Page, role: str) -> None:
    page.go("/?lang=en")
    wait_js(page, "return window.ccwall && window.ccwall.connected", "the websocket")
    wait_js(page, "return document.querySelectorAll('.cc-event-row').length >= 3 && "
                  "document.querySelectorAll('.cc-label-town').length >= 17 && "
                  "document.querySelectorAll('.cc-alert').length >= 1", "events and alarms")
    page.check(f"wall-{role}")
    # an event's panel: its details, plans, the units near it and its cameras
    page.driver.find_element("css selector", ".cc-event-row").click()
    wait_js(page, f"return !document.getElementById('{ids.DETAIL}').hidden", "the panel")
    if role in ("commander", "duty_officer"):
        wait_js(page, "return document.querySelectorAll('#cc-cmd-plans li').length > 0",
                "the matched plans")
    page.check(f"wall-event-{role}")
    if role == "commander":  # the dispatch proposal: plans' calls, units, the form
        page.driver.find_element("id", ids.CMD_DISPATCH).click()
        wait_js(page, f"return !document.getElementById('{ids.CMD_PROPOSAL}').hidden && "
                      f"document.querySelectorAll('#{ids.CMD_PROPOSAL} li').length > 0",
                "the proposal")
        page.check("wall-proposal-commander")
        page.driver.find_element("id", ids.CMD_CANCEL).click()
    if role == "display":
        return  # a kiosk replays no tracks
    # a worker's track replay
    worker = page.js("let id = null; window.ccwall.store.each('worker', w => { id = id || w.id; });"
                     " return id;")
    assert worker
    page.js("window.ccwall.tracks.open('worker', arguments[0])", worker)
    wait_js(page, f"const s = document.getElementById('{ids.TRACK_ROOT}')"
                  ".getAttribute('data-state'); return s && !/loading|closed/.test(s)", "the track")
    page.check(f"wall-track-{role}")


def walk_video(page: Page, role: str) -> None:
    page.go("/video?lang=en")
    wait_js(page, "return window.ccwall && window.ccwall.connected && "
                  "window.ccwall.store.size('camera') > 3", "the cameras")
    if role in ("commander", "duty_officer"):  # a read-only wall lists no cameras to pick
        wait_js(page, f"return document.querySelectorAll('#{ids.VW_CAMS} li').length > 3",
                "the camera list")
    page.check(f"video-{role}")


def walk_cockpit(page: Page, role: str) -> None:
    for name, scope in (("city", ""), ("town", TOWN), ("community", COMMUNITY)):
        page.go("/cockpit?lang=en" + (f"&scope={scope}" if scope else ""))
        wait_js(page, """const c = window.ccwall && window.ccwall.cockpit;
            const f = c && c.figures;
            if (!f || (arguments[0] && f.scope.code !== arguments[0])) return false;
            if (!c.chartKey || !c.chartKey.startsWith(c.shownKey + '|')) return false;
            return Object.values(c.chartKeys()).every(k => k === c.chartKey);""".replace(
            "arguments[0]", repr(scope)), f"the cockpit of {name}")
        page.check(f"cockpit-{name}-{role}")


def walk_duty(page: Page, role: str) -> None:
    page.go("/duty?lang=en")
    wait_js(page, "const d = window.ccwall && window.ccwall.duty;"
                  " return d && (d.state().queue || []).length > 0", "the alarm queue")
    page.check(f"duty-{role}")


def walk_handover(page: Page, role: str) -> None:
    page.go("/duty/handover?lang=en")
    wait_js(page, "return document.querySelector('.cc-ho-draft')", "the draft button")
    page.driver.find_element("css selector", ".cc-ho-draft").click()
    wait_js(page, f"return document.getElementById('{ids.HANDOVER_ROOT}')"
                  ".getAttribute('data-report')", "the drafted report")
    wait_js(page, "return document.querySelectorAll('.cc-ho-item').length > 0", "its items")
    page.check(f"handover-{role}")


WALKS = {"wall": walk_wall, "video": walk_video, "cockpit": walk_cockpit, "duty": walk_duty,
         "handover": walk_handover}


@pytest.fixture
def city_stack(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Ingest, relay and the watch service (alarms, cards) with the simulator as the city:
    an hour of history, then live at 20×, its autopilot off (the cards stay red), its
    cameras streaming from the demo video server (the video wall tours them)."""
    monkeypatch.setattr(engine, "MEAN_EVENT_GAP_S", 60.0)
    live, stop, threads = start_stack(redis_url, watch=True)
    settings = dataclasses.replace(live.settings, sim_autopilot_s=0.0, sim_video_fps=2.0)
    with VideoServer(VideoService(settings), "127.0.0.1",
                     [free_port() for _ in range(4)]) as video:
        sim = Simulator(CITY, seed=17, rate=20.0, workers=150, cameras=60, settings=settings,
                        video_base=[f"http://127.0.0.1:{port}/video" for port in video.ports])
        runner = threading.Thread(target=sim.run, args=(redis_url, stop, 600.0, 3600.0),
                                  daemon=True, name="sim")
        runner.start()
        yield live
        stop.set()
        for thread in [*threads, runner]:
            thread.join(5)
    live.client.close()


@pytest.fixture
def page(dash_duo: Any, city_stack: Stack) -> Page:
    dash_duo.start_server(city_stack.app, navigate=False, port=free_port())
    return Page(dash_duo, city_stack)


@pytest.mark.parametrize("role", list(PAGES))
def test_lang001_every_page_in_english(page: Page, role: str) -> None:
    browser_sign_in(page.duo, page.stack.client, role, f"lang-{role}")
    for name in PAGES[role]:
        WALKS[name](page, role)
        page.probe()
    browser_sign_out(page.duo)
    assert page.duo.get_logs() == []


def test_lang002_refusals_and_sign_in_in_english(page: Page) -> None:
    page.go("/login?lang=en")
    wait_js(page, "return document.getElementById('cc-login-user')", "the sign-in page")
    page.check("login")
    browser_sign_in(page.duo, page.stack.client, "duty_officer", "lang-officer")
    page.go("/cockpit?lang=en")
    wait_js(page, "return document.title.indexOf('403') === 0", "the 403 page")
    page.check("cockpit-403")
    # the page's own status is the console's only complaint
    refused = page.duo.get_logs()
    assert [e["message"] for e in refused if "/cockpit?lang=en" not in e["message"]] == []
    assert refused and all(" 403 " in e["message"] for e in refused)
    browser_sign_out(page.duo)
    browser_sign_in(page.duo, page.stack.client, "leader", "lang-leader")
    for path, name in (("/duty?lang=en", "duty"), ("/duty/handover?lang=en", "handover")):
        page.go(path)
        wait_js(page, "return document.querySelector('.cc-forbidden, .cc-refusal, "
                      "[data-forbidden]') || /is for duty officers/.test(document.body.innerText)",
                f"the {name} refusal")
        page.check(f"{name}-refused")
    browser_sign_out(page.duo)
    assert page.duo.get_logs() == []
