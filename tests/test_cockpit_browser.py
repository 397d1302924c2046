"""The executive cockpit /cockpit in headless Chromium over the real stack, on the fixed
history of tests/fixtures/cockpit_history.json.

Feature codes: ck101 the page shows what `GET /api/stats` says, with no console errors and
no scrollbars at 1920×1080 and 3840×2160, drills down to a town and back up; ck102 a
town-scoped leader sees only their town, and asking for another is refused; ck103 a duty
officer gets the page's refusal, not the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard.city import load_city
from feeds.redis_server import free_port
from layouts import ids

from .auth_util import browser_sign_in, sign_in
from .cockpit_util import load_history
from .conftest import Stack
from .test_stats import TOWN_A, TOWN_B
from .test_wall_browser import Wall

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).parent / "screenshots"


class Cockpit(Wall):
    def open_cockpit(self, query: str = "", size: tuple[int, int] = (1920, 1080)) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        self.driver.get(self.duo.server.url.rstrip("/") + "/cockpit" + query)

    def scope(self) -> str | None:
        return self.js(f"var e = document.getElementById('{ids.CK_ROOT}');"
                       " return e && e.getAttribute('data-scope')")

    def fig(self, name: str) -> str:
        return self.js(f"""var e = document.querySelector('[data-fig="{name}"] .cc-ck-fig-value');
                           return e && e.textContent""")

    def no_scrollbars(self) -> bool:
        return self.js("""var d = document.documentElement;
            return d.scrollHeight <= innerHeight && d.scrollWidth <= innerWidth""")


@pytest.fixture
def page(dash_duo: Any, stack: Stack, r: redis.Redis) -> Cockpit:
    load_history(r)
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    return Cockpit(dash_duo, stack)


def api_figures(stack: Stack, scope: str | None = None) -> dict[str, Any]:
    client = stack.app.server.test_client()
    sign_in(client, stack.client, "leader", name="ck-api")
    res = client.get("/api/stats" + (f"?scope={scope}" if scope else ""))
    assert res.status_code == 200
    return res.get_json()


def test_ck101_figures_as_the_api_says_drill_down_and_back(page: Cockpit, stack: Stack) -> None:
    browser_sign_in(page.duo, stack.client, "leader")
    city = load_city()
    for size in ((1920, 1080), (3840, 2160)):
        page.open_cockpit(size=size)
        page.wait(lambda: page.scope() is not None, 10, "the figures")
        api = api_figures(stack)
        assert page.scope() == api["scope"]["code"]
        assert page.fig("now-open") == str(api["now"]["open"])
        assert page.fig("now-overdue") == str(api["now"]["overdue"])
        assert page.fig("period-today") == str(api["periods"]["today"]["count"])
        assert page.fig("window-red") == str(api["window"]["red"])
        assert page.no_scrollbars()
        page.driver.save_screenshot(str(SHOTS / f"cockpit-{size[0]}x{size[1]}.png"))
    # drill down: the town's row in the table of areas below
    page.driver.find_element("css selector", f'.cc-ck-area[data-code="{TOWN_A}"]').click()
    page.wait(lambda: page.scope() == TOWN_A, 10, "the town's cockpit")
    assert "scope=" + TOWN_A in page.driver.current_url
    town = api_figures(stack, TOWN_A)
    assert page.fig("now-open") == str(town["now"]["open"])
    names = {u.name for u in city.children(TOWN_A)}
    rows = page.js("return Array.from(document.querySelectorAll('.cc-ck-area-name'))"
                   ".map(e => e.textContent)")
    assert rows and set(rows) <= names  # the town's communities, nothing else
    # and back up through the breadcrumb
    page.driver.find_element("css selector", f'a.cc-ck-crumb[data-code="{city.code}"]').click()
    page.wait(lambda: page.scope() == city.code, 10, "the city again")
    assert page.duo.get_logs() == []


def test_ck102_a_town_officer_sees_only_the_town(page: Cockpit, stack: Stack) -> None:
    browser_sign_in(page.duo, stack.client, "leader", name="ck-town", scope=TOWN_A)
    city = load_city()
    page.open_cockpit()
    page.wait(lambda: page.scope() == TOWN_A, 10, "the town's cockpit")
    text = page.js("return document.body.innerText")
    other = city.unit(TOWN_B)
    assert other is not None and other.name not in text
    # the breadcrumb does not lead above the user's own scope
    assert not page.driver.find_elements("css selector", f'a.cc-ck-crumb[data-code="{city.code}"]')
    # another town by URL: refused, and the page keeps showing nothing of it
    page.open_cockpit(f"?scope={TOWN_B}")
    page.wait(lambda: page.js(f"var e = document.getElementById('{ids.CK_MSG}');"
                              " return e && e.getAttribute('data-level')") == "warn", 10,
              "the refusal")
    assert page.scope() is None
    assert other.name not in page.js("return document.body.innerText")
    logs = page.duo.get_logs()
    assert all("/api/stats" in entry["message"] and "403" in entry["message"] for entry in logs)


def test_ck103_a_duty_officer_is_refused(page: Cockpit, stack: Stack) -> None:
    browser_sign_in(page.duo, stack.client, "duty_officer")
    page.open_cockpit()
    page.wait(lambda: page.driver.find_elements("css selector", ".cc-ck-forbidden"), 10,
              "the refusal")
    assert page.scope() is None
    assert not page.driver.find_elements("css selector", "[data-fig]")
    assert page.duo.get_logs() == []
