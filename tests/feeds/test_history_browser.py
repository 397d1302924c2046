"""The demo's past on the duty page (issue 17, item 1): on a folder the history wrote, the
handover page of a fresh start lists the past shifts' reports, signed and accepted, and one
opens with its lists, in Chinese and in English, at 1920×1080 and 3840×2160.

Feature code: hst101.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard.city import load_city
from dashboard.config import Settings
from feeds.redis_server import free_port
from feeds.sim.history import Seeded, seed_history

from ..auth_util import browser_sign_in
from ..conftest import Stack
from ..duty.test_handover_browser import Page

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).parents[1] / "screenshots"


@pytest.fixture
def past(redis_url: str) -> Seeded:
    """Three days of history, written before the stack starts (as app.py does); the same
    data folder as the stack's, so its handover key verifies the signatures."""
    done = seed_history(Settings(), redis_url, load_city(), 3, now_ms=int(time.time() * 1000))
    assert sum(done.handovers.values()) >= 4
    return done


def test_hst101_the_duty_page_lists_past_handovers(past: Seeded, dash_duo: Any,
                                                   stack: Stack, r: redis.Redis) -> None:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    page = Page(dash_duo, stack)
    browser_sign_in(dash_duo, stack.client, "duty_officer", name="zhiban")
    count = sum(past.handovers.values())
    for lang, size in (("zh", (1920, 1080)), ("en", (1920, 1080)), ("en", (3840, 2160))):
        page.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        page.driver.get(dash_duo.server.url.rstrip("/") + "/duty/handover"
                        + ("?lang=en" if lang == "en" else ""))
        page.wait(lambda: len(page.driver.find_elements("css selector", ".cc-ho-hist"))
                  == count, 15, "the past shifts' reports")
        states = page.js("return Array.from(document.querySelectorAll('.cc-ho-hist'))"
                         ".map(e => e.getAttribute('data-state'))")
        assert states[1:] == ["accepted"] * (count - 1)  # all but the newest are done with
        page.click(".cc-ho-hist:last-child .cc-ho-hist-pick")  # the oldest
        oldest = page.js("return document.querySelector('.cc-ho-hist:last-child')"
                         ".getAttribute('data-id')")
        page.wait(lambda want=oldest: page.attr("data-report") == want, 10,
                  "the oldest report")
        assert page.attr("data-state") == "accepted"
        assert page.section_ids("opened")  # its shift's events, as the store held them
        assert page.no_scrollbars()
        page.driver.save_screenshot(str(SHOTS / f"history-handovers-{lang}-{size[0]}x{size[1]}"
                                              ".png"))
    assert dash_duo.get_logs() == []
