"""Sign-in (docs/HTTP.md, docs/SECURITY.md) on a real Valkey: hashes, sessions, throttle,
display tokens, the guard on every route, the audit log, `app.py adduser`, the relay."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import flask
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from callbacks.access.auth import JSON_PREFIXES
from dashboard.access.audit import Audit
from dashboard.access.auth import Auth, AuthError, Session, hash_password, verify_password
from dashboard.config import Settings
from feeds.redis_server import free_port

from ..auth_util import (
    XHR,
    browser_sign_in,
    make_app,
    make_user,
    session_key,
    session_token,
    sign_in,
)
from ..conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
TOWN = "370283001"  # 凤台街道


@pytest.fixture
def app(redis_url: str) -> Any:
    return make_app(redis_url)


@pytest.fixture
def http(app: Any) -> Any:
    return app.server.test_client()


def login(client: Any, name: str, password: str, ip: str = "10.0.0.1") -> Any:
    return client.post("/api/login", json={"username": name, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


# -- the core -----------------------------------------------------------------------------


def test_auth001_password_hash_and_verify() -> None:
    stored = hash_password("正确的密码")
    algo, n, r, p, salt, digest = stored.split("$")
    assert (algo, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest)) == 32
    assert verify_password("正确的密码", stored)
    assert not verify_password("正确的密码 ", stored)
    assert not verify_password("", stored)
    assert hash_password("正确的密码") != stored  # a fresh salt each time
    for broken in ("", "scrypt$1$2", "md5$16384$8$1$00$00", "scrypt$x$8$1$00$00", stored[:-2]):
        assert not verify_password("正确的密码", broken)


def test_auth002_users_sessions_and_validation(r: redis.Redis) -> None:
    auth = Auth(r, "cc:", Settings())
    auth.add_user("zhang", "commander", "pw-zhang-2026", TOWN)
    stored = r.hgetall("cc:user:zhang")
    assert stored["role"] == "commander" and stored["scope"] == TOWN
    assert stored["pw"].startswith("scrypt$") and "pw-zhang" not in stored["pw"]
    assert auth.login("zhang", "wrong", "1.2.3.4") is None
    session = auth.login("zhang", "pw-zhang-2026", "1.2.3.4")
    assert session is not None and (session.user, session.role, session.scope) == (
        "zhang", "commander", TOWN)
    assert r.hget(session_key(session.token), "ip") == "1.2.3.4"
    assert auth.session(session.token) == session
    assert auth.session("not-a-token-at-all") is None
    # changing a user signs it out everywhere
    auth.add_user("zhang", "leader", "new-pw-2026")
    assert auth.session(session.token) is None
    assert auth.login("zhang", "pw-zhang-2026", "1.2.3.4") is None
    assert auth.login("zhang", "new-pw-2026", "1.2.3.4").role == "leader"  # type: ignore[union-attr]
    for name, role, scope in [("bad name", "leader", None), ("", "leader", None),
                              ("x" * 65, "leader", None), ("li", "admin", None),
                              ("li", "leader", "999999"), ("li", "leader", "370283")]:
        with pytest.raises(AuthError):
            auth.add_user(name, role, "valid-pw-2026", scope)
    with pytest.raises(AuthError):
        auth.add_user("li", "leader", "")
    assert not r.exists("cc:user:li")


def test_auth003_commander_may_do_what_a_duty_officer_does() -> None:
    commander = Session("t", "a", "commander", None)
    assert commander.may("duty_officer") and commander.may("commander") and commander.may()
    assert not Session("t", "b", "duty_officer", None).may("commander")
    assert not Session("t", "c", "leader", None).may("duty_officer", "commander")
    assert Session("t", "d", "display", None).may()


# -- HTTP ---------------------------------------------------------------------------------


def test_auth004_wrong_password_401_right_one_sets_the_cookie(http: Any, r: redis.Redis) -> None:
    name, password = make_user(r, "duty_officer", "wang")
    res = login(http, name, "nope")
    assert res.status_code == 401 and res.get_json()["error"]
    assert login(http, "nobody", "nope").status_code == 401
    res = login(http, name, password)
    assert res.status_code == 200
    assert res.get_json() == {"user": "wang", "role": "duty_officer", "scope": None}
    cookie = res.headers["Set-Cookie"]
    assert cookie.startswith("cc_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert http.get("/api/me").get_json() == {"user": "wang", "role": "duty_officer",
                                              "scope": None}


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"username": "a"}',
                                  '{"username": 1, "password": "x"}',
                                  '{"username": "", "password": "x"}'])
def test_auth005_malformed_login_is_a_json_400(http: Any, body: str) -> None:
    res = http.post("/api/login", data=body, content_type="application/json")
    assert res.status_code == 400
    assert res.is_json and res.get_json()["error"]


def test_auth006_throttle_after_max_failures(redis_url: str, r: redis.Redis) -> None:
    http = make_app(redis_url, login_max_failures=3).server.test_client()
    name, password = make_user(r, "leader", "zhao")
    assert [login(http, name, "bad").status_code for _ in range(3)] == [401, 401, 401]
    res = login(http, name, password)
    assert res.status_code == 429 and res.is_json  # even the right password now
    assert login(http, name, password, ip="10.0.0.2").status_code == 200  # another desk
    # the pair's, the address's and the name's counters (the success took its count back)
    fail_keys = list(r.scan_iter("cc:login:fail:*"))
    assert len(fail_keys) == 3 and all(0 < r.ttl(k) <= 15 * 60 for k in fail_keys)


def test_auth007_session_slides_and_expires(redis_url: str, r: redis.Redis) -> None:
    http = make_app(redis_url, session_ttl_s=1).server.test_client()
    token = sign_in(http, r, "leader")
    assert http.get("/api/me").status_code == 200
    time.sleep(1.3)
    assert not r.exists(session_key(token))
    assert http.get("/api/me").status_code == 401
    # sliding: each request resets the TTL to session_ttl_s
    http = make_app(redis_url, session_ttl_s=600).server.test_client()
    token = sign_in(http, r, "leader")
    r.expire(session_key(token), 5)
    assert http.get("/api/me").status_code == 200
    assert r.ttl(session_key(token)) > 500


def test_auth008_logout_ends_the_session(http: Any, r: redis.Redis) -> None:
    token = sign_in(http, r, "commander")
    res = http.post("/api/logout", headers=XHR)  # as the header's sign-out button posts it
    assert res.status_code == 200
    assert "cc_session=;" in res.headers["Set-Cookie"]
    assert not r.exists(session_key(token))
    http.set_cookie("cc_session", token)  # the old cookie replayed
    assert http.get("/api/me").status_code == 401
    assert http.post("/api/logout", headers=XHR).status_code == 401
    # /logout: signs out and goes to the sign-in page (a plain form post is refused: sec103)
    sign_in(http, r, "commander")
    res = http.post("/logout?lang=en", headers=XHR)
    assert res.status_code == 302 and res.headers["Location"].endswith("/login?lang=en")
    assert http.get("/api/me").status_code == 401


def _get_paths(app: Any) -> list[str]:
    paths = []
    for rule in app.server.url_map.iter_rules():
        if "GET" not in (rule.methods or ()):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<path:{arg}>", "x").replace(f"<{arg}>", "x")
        paths.append(path.replace("<", "").replace(">", ""))
    return paths


def test_auth009_every_route_needs_a_session_but_health_and_login(app: Any, r: redis.Redis
                                                                   ) -> None:
    http = app.server.test_client()
    paths = _get_paths(app)
    assert "/api/events" in paths and "/api/audit" in paths and "/geo/x.geojson" in paths
    extra = ["/", "/?lang=en", "/some/page", "/_dash-layout", "/_dash-dependencies",
             "/assets/css/wall.css", "/geo/town.geojson", "/api/events/E1", "/api/nothing"]
    # /metrics has its own rule (a token, else this host only): tests/app/test_metrics.py
    open_paths = {"/api/health", "/login", "/_favicon.ico", "/metrics"}
    for path in sorted(set(paths + extra) - open_paths):
        res = http.get(path)
        if path.startswith(JSON_PREFIXES):
            assert res.status_code == 401, path
            assert res.is_json and res.get_json()["error"], path
        else:
            assert res.status_code == 302, path
            assert urlsplit(res.headers["Location"]).path == "/login", path
    assert http.get("/login").status_code == 200
    health = http.get("/api/health")  # open, though no ingest runs here: "starting"
    assert health.status_code == 503 and health.get_json()["status"] == "starting"
    far = http.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"})  # no session either
    assert far.status_code == 403 and far.is_json
    res = http.get("/?lang=en")
    assert parse_qs(urlsplit(res.headers["Location"]).query) == {"next": ["/?lang=en"],
                                                                 "lang": ["en"]}
    sign_in(http, r, "leader")
    for path in ("/", "/api/events", "/_dash-layout", "/geo/town.geojson", "/api/me"):
        assert http.get(path).status_code == 200, path


@pytest.mark.parametrize(("raw", "expected"), [
    ("/", "/"), ("/?lang=en", "/?lang=en"), ("/cockpit", "/cockpit"), (None, "/"),
    ("https://evil.example/", "/"), ("//evil.example/x", "/"), ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"), ("evil", "/"),
])
def test_auth010_next_is_a_local_path_only(raw: str | None, expected: str) -> None:
    from callbacks.access.auth import safe_next

    assert safe_next(raw) == expected


def test_auth011_display_token_reads_but_cannot_change(http: Any, r: redis.Redis) -> None:
    auth = Auth(r, "cc:", Settings())
    token = auth.add_display("wall")
    assert r.get(f"cc:display:{token}") is None  # only the hash is stored
    res = http.get(f"/?lang=en&display={token}")
    assert res.status_code == 302 and res.headers["Location"] == "/?lang=en"
    assert "HttpOnly" in res.headers["Set-Cookie"]
    assert http.get("/api/me").get_json() == {"user": "wall", "role": "display", "scope": None}
    assert http.get("/api/events").status_code == 200
    assert http.get("/").status_code == 200
    for path in ("/api/events", "/api/events/E1/dispatch", "/api/alerts/A1/ack"):
        res = http.post(path, json={})
        assert res.status_code == 403, path
        assert res.is_json and "read-only" in res.get_json()["error"]
    assert http.get("/api/audit").status_code == 403
    # a new token replaces the old one; an unknown token signs nothing in
    fresh = auth.add_display("wall")
    assert auth.display_user(token) is None and auth.display_user(fresh) == "wall"
    anon = http.application.test_client()
    res = anon.get(f"/?display={token}")
    assert res.status_code == 302 and urlsplit(res.headers["Location"]).path == "/login"
    assert "display" not in res.headers["Location"]


def test_auth012_audit_one_entry_per_login_newest_first(http: Any, r: redis.Redis) -> None:
    name, password = make_user(r, "commander", "chief")
    assert login(http, name, "wrong-1").status_code == 401
    assert login(http, "ghost", "x").status_code == 401
    assert login(http, name, password).status_code == 200
    entries = http.get("/api/audit?limit=10").get_json()["entries"]
    logins = [e for e in entries if e["action"] == "login"]
    assert [(e["target"], e["outcome"]) for e in logins] == [
        ("chief", "success"), ("ghost", "failure"), ("chief", "failure")]
    assert logins[0]["user"] == "chief" and logins[0]["role"] == "commander"
    assert logins[0]["ip"] == "10.0.0.1"
    assert [e["ts"] for e in entries] == sorted((e["ts"] for e in entries), reverse=True)
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries),
                                                key=lambda i: tuple(map(int, i.split("-"))),
                                                reverse=True)
    assert len(http.get("/api/audit?limit=2").get_json()["entries"]) == 2
    for bad in ("0", "x", "5000"):
        assert http.get(f"/api/audit?limit={bad}").status_code == 400
    duty = http.application.test_client()
    sign_in(duty, r, "duty_officer")
    res = duty.get("/api/audit")
    assert res.status_code == 403 and res.is_json


def test_auth013_audit_keeps_by_time_not_by_count(r: redis.Redis) -> None:
    audit = Audit(r, "cc:")
    for i in range(1000):
        audit.write(user="u", role="commander", action="test", target=str(i), ip="-",
                    outcome="ok", detail={"i": i})
    assert r.xlen("cc:audit") == 1000  # a flood pushes nothing out (tests/access/test_accounts.py)
    newest = audit.entries(3)
    assert [e["target"] for e in newest] == ["999", "998", "997"]
    assert newest[0]["detail"] == {"i": 999}


def test_auth014_require_checks_roles(r: redis.Redis) -> None:
    from callbacks.access.auth import audited, install_auth, require

    server = flask.Flask(__name__)
    settings = Settings()
    install_auth(server, Auth(r, "cc:", settings), Audit(r, "cc:"), settings)

    @server.post("/api/verify")
    @require("duty_officer")
    def verify() -> Any:
        audited("verify", "E1", "ok", {"passed": True})
        return {"by": flask.g.session.user}

    for role, status in [("commander", 200), ("duty_officer", 200), ("leader", 403)]:
        client = server.test_client()
        sign_in(client, r, role)
        res = client.post("/api/verify")
        assert res.status_code == status, role
        assert res.is_json
    assert server.test_client().post("/api/verify").status_code == 401
    verified = [e for e in Audit(r, "cc:").entries() if e["action"] == "verify"]
    assert [e["user"] for e in verified] == ["t-duty_officer", "t-commander"]


def test_auth015_login_page_in_both_languages_without_external_resources(http: Any) -> None:
    zh = http.get("/login?next=/%3Flang%3Den").get_data(as_text=True)
    assert "用户登录" in zh and 'lang="zh-CN"' in zh and '"next": "/?lang=en"' in zh
    en = http.get("/login?lang=en&next=https://evil.example").get_data(as_text=True)
    assert "Sign in" in en and 'lang="en"' in en and '"next": "/"' in en
    for page in (zh, en):
        assert "src=" not in page and "<link" not in page and "@import" not in page


# -- app.py adduser -----------------------------------------------------------------------


def run_adduser(redis_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run([sys.executable, "app.py", "adduser", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


@pytest.mark.slow  # seconds of real work: not in make test-fast
def test_auth016_adduser_reads_the_password_from_stdin(redis_url: str, r: redis.Redis) -> None:
    done = run_adduser(redis_url, "liu", "--role", "duty_officer", "--scope", TOWN,
                       stdin="s3cret 密码 2026\n")
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    auth = Auth(r, "cc:", Settings())
    session = auth.login("liu", "s3cret 密码 2026", "127.0.0.1")
    assert session is not None and (session.role, session.scope) == ("duty_officer", TOWN)
    # the same command again updates the user
    assert run_adduser(redis_url, "liu", "--role", "leader",
                       stdin="other-Pass-1\n").returncode == 0
    assert auth.session(session.token) is None
    assert auth.login("liu", "other-Pass-1", "127.0.0.1").role == "leader"  # type: ignore[union-attr]
    for args, stdin in [(("liu", "--role", "boss"), "x-Pass-2026\n"),
                        (("liu", "--role", "leader", "--scope", "nowhere"), "x-Pass-2026\n"),
                        (("bad name", "--role", "leader"), "x-Pass-2026\n"),
                        (("liu", "--role", "leader"), ""), (("liu", "--role", "leader"), "x\n")]:
        bad = run_adduser(redis_url, *args, stdin=stdin)
        assert bad.returncode == 2, args
        assert "Traceback" not in bad.stderr and bad.stderr.strip()
    assert auth.login("liu", "other-Pass-1", "127.0.0.1") is not None  # unchanged by them
    kiosk = run_adduser(redis_url, "wall", "--role", "display")
    assert kiosk.returncode == 0, kiosk.stderr
    token = kiosk.stdout.split("?display=")[1].split()[0]
    assert auth.display_user(token) == "wall"
    assert any(e["action"] == "adduser" for e in Audit(r, "cc:").entries())


# -- the relay ----------------------------------------------------------------------------


def close_code(url: str, headers: dict[str, str] | None = None) -> int | None:
    with connect(url, additional_headers=headers) as ws:
        try:
            ws.recv(timeout=5)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
    return None


def test_auth017_relay_needs_a_session(stack: Stack, r: redis.Redis) -> None:
    assert close_code(stack.ws_url) == 4401
    assert close_code(stack.ws_url, {"Cookie": "cc_session=made-up-token-000000"}) == 4401
    assert close_code(stack.ws_url, {"Cookie": "garbage;;=\"x"}) == 4401
    with stack.connect() as ws:
        assert '"type":"snapshot"' in ws.recv(timeout=5)
    token = session_token(r, "display", "wall")
    Auth(r, "cc:", Settings()).logout(token)
    assert close_code(stack.ws_url, {"Cookie": f"cc_session={token}"}) == 4401


def test_auth018_relay_closes_sockets_whose_session_ended(redis_url: str, r: redis.Redis,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    import feeds.relay

    from ..conftest import start_stack

    monkeypatch.setattr(feeds.relay, "SESSION_CHECK_S", 0.2)
    live, stop, threads = start_stack(redis_url)
    try:
        token = session_token(r, "leader")
        with connect(live.ws_url, additional_headers={"Cookie": f"cc_session={token}"}) as ws:
            assert '"type":"snapshot"' in ws.recv(timeout=5)
            r.expire(session_key(token), 5)
            ws.recv(timeout=5)  # a stats frame at least
            assert r.ttl(session_key(token)) > 5  # an open wall keeps its session alive
            Auth(r, "cc:", Settings()).logout(token)
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(50):
                    ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        live.client.close()


# -- the browser --------------------------------------------------------------------------


@pytest.mark.browser
def test_auth019_kiosk_url_signs_in_and_a_lost_session_goes_to_login(dash_duo: Any,
                                                                      stack: Stack,
                                                                      r: redis.Redis) -> None:
    token = Auth(r, "cc:", Settings()).add_display("wall")
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    base = dash_duo.server.url.rstrip("/")
    driver = dash_duo.driver
    driver.get(f"{base}/?display={token}&lang=en")
    dash_duo.wait_for_element("#react-entry-point", timeout=10)
    assert "display=" not in driver.current_url
    wait = time.monotonic() + 10
    while not driver.execute_script("return !!(window.ccwall && ccwall.connected)"):
        assert time.monotonic() < wait, "the kiosk's websocket did not connect"
        time.sleep(0.05)
    assert dash_duo.find_element("#cc-user-name").text == "wall"
    # the session ends (signed out elsewhere): the next reconnect lands on /login
    for key in r.scan_iter("cc:session:*"):
        r.delete(key)
    driver.execute_script("ccwall.socket.drop()")
    wait = time.monotonic() + 15
    while urlsplit(driver.current_url).path != "/login":
        assert time.monotonic() < wait, f"still on {driver.current_url}"
        time.sleep(0.05)
    query = parse_qs(urlsplit(driver.current_url).query)
    assert query["next"] == ["/?lang=en"] and query["lang"] == ["en"]
    assert "Sign in" in driver.find_element("tag name", "h2").text


@pytest.mark.browser
def test_auth020_sign_in_page_and_sign_out_button(dash_duo: Any, stack: Stack,
                                                  r: redis.Redis) -> None:
    dash_duo.start_server(stack.app, navigate=False, port=free_port())
    base = dash_duo.server.url.rstrip("/")
    make_user(r, "leader", "lingdao")
    driver = dash_duo.driver
    driver.get(f"{base}/")
    assert urlsplit(driver.current_url).path == "/login"
    driver.find_element("id", "cc-login-user").send_keys("lingdao")
    driver.find_element("id", "cc-login-password").send_keys("wrong")
    driver.find_element("id", "cc-login-submit").click()
    dash_duo.wait_for_text_to_equal("#cc-login-error", "用户名或密码错误", timeout=5)
    browser_sign_in(dash_duo, r, "leader", "lingdao")
    assert dash_duo.find_element("#cc-user-name").text == "lingdao"
    dash_duo.find_element("#cc-sign-out").click()
    wait = time.monotonic() + 10
    while urlsplit(driver.current_url).path != "/login":
        assert time.monotonic() < wait, f"still on {driver.current_url}"
        time.sleep(0.05)
    driver.get(f"{base}/api/me")
    assert "sign in first" in driver.page_source
