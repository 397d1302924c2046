"""The wall's websocket when the page is left and come back to (assets/js/cc-40-socket.js):
Chromium keeps a left page in its back/forward cache, socket and all, for minutes, so a
duty officer clicking through pages piled up relay sockets towards the per-session limit.
A page left closes its socket; one shown again from the cache resumes with ?since=."""

from __future__ import annotations

import time
from typing import Any

import pytest

from feeds.redis_server import free_port

from .. import units_util as units
from ..auth_util import browser_sign_in
from ..video.test_camlayer_browser import Page, wait_for

pytestmark = pytest.mark.browser


def test_sock101_a_page_left_closes_its_socket_and_resumes_when_back(dash_duo: Any,
                                                                      stack: Any) -> None:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    browser_sign_in(dash_duo, stack.client, "commander", "sock-commander")
    page = Page(dash_duo, stack)
    page.open()

    def sockets() -> int:
        return len(stack.relay.fan.clients)

    wait_for(lambda: sockets() == 1, 10, "the wall's socket")
    page.js("window.__ccMark = 'the same page'")  # a page restored from the cache keeps it
    page.driver.get(dash_duo.server_url.rstrip("/") + "/api/me")  # a page with no socket
    wait_for(lambda: sockets() == 0, 10, "the left wall's socket closed")

    stack.publish("event", {"id": "SOCK1", "type": "fire", "severity": 3, "lon": units.LON0,
                            "lat": units.LAT0, "ts": int(time.time() * 1000), "title": "离开期间"})
    page.driver.back()
    wait_for(lambda: page.js("return !!(window.ccwall && ccwall.connected)"), 10, "back")
    wait_for(lambda: sockets() == 1, 10, "one socket again")
    # what arrived while the page was away is there (resumed, or a fresh page's snapshot)
    wait_for(lambda: page.js("return !!ccwall.store.get('event', 'SOCK1')"), 10, "SOCK1")
    # from the back/forward cache (the same page, not a reload): it resumed where it was
    assert page.js("return window.__ccMark") == "the same page"
    assert page.js("return ccwall.store.lastSeq()") > 0
    assert dash_duo.get_logs() == []
