"""Accounts, sessions and the audit trail as MLPS 2.0 level 3 expects (issue 13, item 6), on
a real Valkey.

Feature codes: acct101-104 the password rule (every place that makes a user); acct110-113
demo users exist only while the demo runs, and never touch a real user of the same name;
acct120-122 session tokens stored only as hashes (login, sliding, logout, revoke, the
relay's `slide`); acct130-136 the log-in throttle (counted before the password is checked,
no race past a limit, per address, per name, a success takes its count back, the same work
for known and unknown names); acct140-143 keyed handover signatures; acct150-152 the
embedded Valkey's password (files, the process list, `app.py` and what it prints);
acct160-165 the audit trail (kept by time, floods before sign-in summarised, filters).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

import dashboard.access.auth
from dashboard.access.audit import DAY_MS, Audit
from dashboard.access.auth import Auth, AuthError, password_problem
from dashboard.access.keyfile import HANDOVER_KEY, REDIS_PASSWORD, secret, secret_path
from dashboard.config import Settings
from dashboard.duty.handover import Handovers, content_hash, handover_key, key_id, pack, unpack
from dashboard.duty.roster import RosterStore
from dashboard.errors import Refused
from dashboard.store import Store
from feeds.redis_server import EmbeddedRedis, free_port, redact

from ..auth_util import make_user, session_key

ROOT = Path(__file__).resolve().parents[2]
TZ = "Asia/Shanghai"


def settings_with(**overrides: Any) -> Settings:
    return dataclasses.replace(Settings(), **overrides)


def make_app(redis_url: str, **overrides: Any) -> Any:
    from app import create_app

    return create_app(settings_with(redis_url=redis_url, **overrides))


def login(client: Any, name: str, password: str, ip: str = "10.0.0.1") -> Any:
    return client.post("/api/login", json={"username": name, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- passwords -----------------------------------------------------------------------------


@pytest.mark.parametrize("password", [
    "", "Ab1!", "Short1!", "abcdefghi", "abcdefghijklmnop", "ABCDEFGHIJKL", "12345678901",
    "密码密码密码密码密码密码", "!!!!!!!!!!!!", "x" * 1025, None,
])
def test_acct101_short_or_single_class_password_refused(r: redis.Redis, password: Any) -> None:
    auth = Auth(r, "cc:", Settings())
    with pytest.raises(AuthError) as refused:
        auth.add_user("li", "leader", password)
    assert "10-1024 characters" in str(refused.value) and "at least 2 of" in str(refused.value)
    assert not r.exists("cc:user:li")


@pytest.mark.parametrize("password", [
    "abcdefghi1", "ABCDEFGHI!", "correct horse", "Zhang-2026", "密码密码密码密码密码a",
    "x" * 1023 + "1",
])
def test_acct102_ten_characters_of_two_classes_accepted(r: redis.Redis, password: str) -> None:
    assert password_problem(password) is None
    auth = Auth(r, "cc:", Settings())
    auth.add_user("li", "leader", password)
    assert auth.login("li", password, "10.0.0.9") is not None


def test_acct103_adduser_refuses_a_weak_password_clearly(redis_url: str,
                                                         r: redis.Redis) -> None:
    env = {**os.environ, "REDIS_URL": redis_url}
    done = subprocess.run([sys.executable, "app.py", "adduser", "liu", "--role", "leader"],
                          input="password\n", capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "10-1024 characters with at least 2 of" in done.stderr
    assert not r.exists("cc:user:liu")


def test_acct104_every_user_the_project_makes_meets_the_rule(r: redis.Redis,
                                                             tmp_path: Path) -> None:
    from dashboard.access.demo import DEMO_USERS, demo_password

    from ..auth_util import PASSWORD_SUFFIX

    assert password_problem(demo_password(settings_with(data_dir=tmp_path))) is None
    for name, _ in DEMO_USERS:
        assert password_problem(name + PASSWORD_SUFFIX) is None
    assert password_problem("a" + PASSWORD_SUFFIX) is None  # the shortest test name
    from bench.dispatch_click import PASSWORD

    assert password_problem(PASSWORD) is None


# -- demo users ----------------------------------------------------------------------------


def demo_settings(tmp_path: Path, redis_url: str) -> Settings:
    return settings_with(data_dir=tmp_path, redis_url=redis_url)


def test_acct110_demo_users_are_marked_and_get_the_folders_password(
        r: redis.Redis, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dashboard.access.demo import DEMO_USERS, demo_password, demo_sign_ins

    settings = demo_settings(tmp_path, redis_url)
    demo_sign_ins(settings, r)
    password = demo_password(settings)
    assert mode(secret_path(tmp_path, "demo-password")) == 0o600
    out = capsys.readouterr().out
    assert password in out and "never use them in production" in out
    auth = Auth(r, "cc:", settings)
    for name, role in DEMO_USERS:
        assert r.hget(f"cc:user:{name}", "demo") == "1"
        found = auth.login(name, password, "10.0.0.1")
        assert found is not None and found.role == role
        assert auth.login(name, name, "10.0.0.2") is None  # no longer password = name
    assert r.smembers("cc:users:demo") == {n for n, _ in DEMO_USERS} | {"wall"}
    token = (tmp_path / "demo-kiosk-token").read_text().strip()
    assert auth.display_user(token) == "wall"
    assert mode(tmp_path / "demo-kiosk-token") == 0o600
    # a second start keeps the same password and kiosk URL
    demo_sign_ins(settings, r)
    assert demo_password(settings) == password
    assert (tmp_path / "demo-kiosk-token").read_text().strip() == token


def test_acct111_without_the_demo_its_users_are_disabled(r: redis.Redis, redis_url: str,
                                                        tmp_path: Path) -> None:
    from dashboard.access.demo import DEMO_USERS, demo_password, demo_sign_ins, retire_demo_users

    settings = demo_settings(tmp_path, redis_url)
    demo_sign_ins(settings, r)
    password = demo_password(settings)
    auth = Auth(r, "cc:", settings)
    session = auth.login("zhihui", password, "10.0.0.1")
    assert session is not None
    kiosk = (tmp_path / "demo-kiosk-token").read_text().strip()
    kiosk_session = auth.display_login(kiosk, "10.0.0.3")
    assert kiosk_session is not None
    gone = retire_demo_users(settings, r)
    assert sorted(gone) == sorted([n for n, _ in DEMO_USERS] + ["wall"])
    assert auth.session(session.token) is None and auth.session(kiosk_session.token) is None
    for name, _ in DEMO_USERS:
        tried = auth.attempt(name, password, "10.0.0.4")
        assert tried.session is None and tried.reason == "disabled"
    assert auth.display_login(kiosk, "10.0.0.3") is None
    assert retire_demo_users(settings, r) == []  # once
    entries = Audit(r, "cc:").entries(5, action="demo.disable")
    assert len(entries) == 1 and entries[0]["detail"]["users"] == gone
    # the demo runs again: its users and kiosk URL work again
    demo_sign_ins(settings, r)
    assert auth.login("zhihui", password, "10.0.0.1") is not None
    assert auth.display_login(kiosk, "10.0.0.3") is not None


def test_acct112_a_real_user_with_a_demo_name_is_never_touched(
        r: redis.Redis, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dashboard.access.demo import demo_password, demo_sign_ins, retire_demo_users

    settings = demo_settings(tmp_path, redis_url)
    auth = Auth(r, "cc:", settings)
    auth.add_user("zhiban", "duty_officer", "Real-officer-1")  # adduser before the demo
    demo_sign_ins(settings, r)
    assert "not made (a real user has the name): zhiban" in capsys.readouterr().out
    assert not r.hget("cc:user:zhiban", "demo")
    assert auth.login("zhiban", demo_password(settings), "10.0.0.1") is None
    real = auth.login("zhiban", "Real-officer-1", "10.0.0.1")
    assert real is not None
    # adduser over a demo user makes it a real one
    auth.add_user("zhihui", "commander", "Real-commander-1")
    assert sorted(retire_demo_users(settings, r)) == ["lingdao", "wall", "zhiban2"]
    assert auth.session(real.token) is not None
    assert auth.login("zhiban", "Real-officer-1", "10.0.0.2") is not None
    assert auth.login("zhihui", "Real-commander-1", "10.0.0.2") is not None
    assert r.smembers("cc:users:demo") == {"lingdao", "wall", "zhiban2"}


def test_acct113_app_no_demo_disables_them_and_prints_no_password(tmp_path: Path) -> None:
    """`app.py --no-demo` on a data folder where the demo ran: its users are disabled; the
    embedded Valkey wants its password, which no line of the output shows."""
    from dashboard.access.demo import demo_password, demo_sign_ins
    from feeds.admin import embedded_server

    settings = settings_with(data_dir=tmp_path)
    with embedded_server(settings) as server:  # the demo ran here before
        client = redis.Redis.from_url(server.url, decode_responses=True)
        demo_sign_ins(settings, client)
        client.close()
    password = demo_password(settings)
    redis_password = secret(tmp_path, REDIS_PASSWORD)
    port, ws_port = free_port(), free_port()
    env = {**os.environ, "CC_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, "app.py", "--no-demo", "--port", str(port),
                             "--ws-port", str(ws_port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "the wall is on http://" in line or not line:
                break
        assert "the wall is on http://" in lines[-1], "".join(lines)
        url_file = tmp_path / "redis" / "url"
        assert mode(url_file) == 0o600
        url = url_file.read_text().strip()
        assert redis_password in url
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=int(url.rsplit(":", 1)[1].split("/")[0])).ping()
        client = redis.Redis.from_url(url, decode_responses=True)
        auth = Auth(client, "cc:", settings)
        assert auth.login("zhihui", password, "10.0.0.1") is None
        assert client.hget("cc:user:zhihui", "disabled")
        # every child reached Redis with the password: ingest and relay are up (ready above)
        # and the watch service too
        wait = time.monotonic() + 15
        while not client.exists("cc:watch:hb"):
            assert time.monotonic() < wait, "watch did not start"
            time.sleep(0.1)
        client.close()
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    output = "".join(lines)
    assert redis_password not in output and "password required" in output
    assert redis_password not in (tmp_path / "redis" / "server.log").read_text(errors="replace")


# -- sessions ------------------------------------------------------------------------------


def test_acct120_session_tokens_are_stored_only_as_hashes(r: redis.Redis) -> None:
    auth = Auth(r, "cc:", Settings())
    name, password = make_user(r, "commander", "zhang")
    session = auth.login(name, password, "10.0.0.1")
    assert session is not None
    digest = hashlib.sha256(session.token.encode()).hexdigest()
    assert r.exists(f"cc:session:{digest}")
    assert auth.key("session", session.token) == auth.session_key(session.token) == \
        f"cc:session:{digest}"
    for key in r.scan_iter("*"):  # nowhere in Redis: no key, no value
        assert session.token not in key
        kind = r.type(key)
        values = (r.hvals(key) if kind == "hash" else [r.get(key)] if kind == "string" else [])
        assert all(session.token not in str(v) for v in values), key
    assert auth.session(session.token) == session
    assert auth.session(digest) is None  # the stored hash is not a token
    auth.logout(session.token)
    assert not r.exists(f"cc:session:{digest}") and auth.session(session.token) is None


def test_acct121_slide_and_revoke_by_token_hash(r: redis.Redis) -> None:
    auth = Auth(r, "cc:", settings_with(session_ttl_s=600))
    name, password = make_user(r, "leader", "li")
    one, two = (auth.login(name, password, "10.0.0.1") for _ in range(2))
    assert one is not None and two is not None
    r.expire(session_key(one.token), 5)
    assert auth.slide([one.token, "made-up-token-000000000", two.token]) == [True, False, True]
    assert r.ttl(session_key(one.token)) > 500
    assert auth.revoke_sessions(name) == 2
    assert auth.slide([one.token, two.token]) == [False, False]


def test_acct122_sessions_from_before_hashing_are_dropped(r: redis.Redis) -> None:
    auth = Auth(r, "cc:", Settings())
    plain = "x" * 43
    r.hset(f"cc:session:{plain}", mapping={"user": "old", "role": "commander"})
    name, password = make_user(r, "leader", "li")
    session = auth.login(name, password, "10.0.0.1")
    assert session is not None
    assert auth.session(plain) is None  # a plain key is never looked up
    assert auth.drop_plain_sessions() == 1
    assert not r.exists(f"cc:session:{plain}") and auth.session(session.token) == session


# -- the log-in throttle -------------------------------------------------------------------


class Checks:
    """Counts password checks (the scrypt work) made while patched in."""

    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()
        self.real = dashboard.access.auth.verify_password

    def __call__(self, password: str, stored: str) -> bool:
        with self.lock:
            self.n += 1
        return self.real(password, stored)


def test_acct130_parallel_wrong_passwords_never_pass_the_limit(
        r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = Checks()
    monkeypatch.setattr(dashboard.access.auth, "verify_password", checks)
    auth = Auth(r, "cc:", settings_with(login_max_failures=5))
    name, password = make_user(r, "commander", "zhang")
    start = threading.Barrier(40)
    outcomes: list[str] = []

    def guess(i: int) -> None:
        start.wait()
        outcomes.append(auth.attempt(name, f"guess-{i}", "10.0.0.1").outcome)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes).count("failure") == 5 and outcomes.count("throttled") == 35
    assert checks.n == 5  # exceeded by zero: no password was checked past the limit
    assert auth.attempt(name, password, "10.0.0.1").outcome == "throttled"
    assert checks.n == 5


def test_acct131_parallel_guesses_over_http_get_429(redis_url: str, r: redis.Redis,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    checks = Checks()
    monkeypatch.setattr(dashboard.access.auth, "verify_password", checks)
    server = make_app(redis_url, login_max_failures=4).server
    name, _ = make_user(r, "commander", "zhang")
    start = threading.Barrier(24)
    codes: list[int] = []

    def guess(i: int) -> None:
        client = server.test_client()
        start.wait()
        codes.append(login(client, name, f"guess-{i}").status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(codes) == [401] * 4 + [429] * 20
    assert checks.n == 4


def test_acct132_per_address_limit_across_names(redis_url: str, r: redis.Redis) -> None:
    http = make_app(redis_url, login_max_failures_ip=4).server.test_client()
    name, password = make_user(r, "leader", "zhao")
    assert [login(http, f"nobody{i}", "bad").status_code for i in range(4)] == [401] * 4
    res = login(http, name, password)  # a fifth name from the same address
    assert res.status_code == 429 and res.is_json and res.get_json()["error"]
    assert login(http, name, password, ip="10.0.0.2").status_code == 200  # another desk


def test_acct133_per_name_limit_across_addresses(redis_url: str, r: redis.Redis) -> None:
    http = make_app(redis_url, login_max_failures_user=3).server.test_client()
    name, password = make_user(r, "leader", "zhao")
    other, other_pw = make_user(r, "leader", "qian")
    assert [login(http, name, "bad", ip=f"10.0.1.{i}").status_code
            for i in range(3)] == [401] * 3
    assert login(http, name, password, ip="10.0.2.1").status_code == 429  # a new address
    assert login(http, other, other_pw, ip="10.0.1.0").status_code == 200
    throttled = Audit(r, "cc:").entries(10, action="login", user="-")
    assert throttled[0]["outcome"] == "throttled" and throttled[0]["detail"] == {"limit": "user"}


def test_acct134_success_clears_the_pair_and_takes_its_count_back(r: redis.Redis) -> None:
    auth = Auth(r, "cc:", settings_with(login_max_failures=3, login_max_failures_ip=5,
                                        login_max_failures_user=6))
    name, password = make_user(r, "leader", "zhao")
    pair, address, user = auth._fail_keys(name, "10.0.0.1")
    for _ in range(2):
        assert auth.attempt(name, "bad", "10.0.0.1").outcome == "failure"
    assert auth.attempt(name, password, "10.0.0.1").outcome == "success"
    assert not r.exists(pair)
    assert r.get(address) == "2" and r.get(user) == "2"  # the failures, not the success
    for _ in range(3):  # the pair may fail three times again
        assert auth.attempt(name, "bad", "10.0.0.1").outcome == "failure"
    assert auth.attempt(name, password, "10.0.0.1").outcome == "throttled"
    assert auth.throttled(name, "10.0.0.1")
    # a busy desk: many sign-ins from one address never count against it
    for _ in range(10):
        assert auth.attempt(name, password, "10.0.0.7").outcome == "success"
    assert not r.exists(auth._fail_keys(name, "10.0.0.7")[1])


def test_acct135_known_and_unknown_names_cost_the_same(
        r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = Checks()
    monkeypatch.setattr(dashboard.access.auth, "verify_password", checks)
    auth = Auth(r, "cc:", Settings())
    name, _ = make_user(r, "leader", "zhao")
    auth.add_display("kiosk")  # a user with no password at all
    for who in (name, "ghost", "kiosk", "bad name!"):
        before = checks.n
        tried = auth.attempt(who, "wrong-pass-1", "10.0.0.1")
        assert tried.outcome == "failure" and checks.n == before + 1, who  # one scrypt each
    # and throttled ones cost none, known or not
    auth = Auth(r, "cc:", settings_with(login_max_failures=1))
    for who in (name, "ghost"):
        auth.attempt(who, "wrong-pass-1", "10.0.0.2")
        before = checks.n
        assert auth.attempt(who, "wrong-pass-1", "10.0.0.2").outcome == "throttled"
        assert checks.n == before


def test_acct136_throttle_counters_expire_with_the_window(r: redis.Redis) -> None:
    auth = Auth(r, "cc:", Settings())
    auth.attempt("zhao", "bad-pass-1", "10.0.0.1")
    keys = auth._fail_keys("zhao", "10.0.0.1")
    assert all(0 < r.ttl(k) <= 15 * 60 for k in keys)
    assert all("zhao" not in k and "10.0.0.1" not in k for k in keys)  # hashed


# -- keyed handover signatures -------------------------------------------------------------


BASE = 1_795_564_800_000
KEY = bytes(range(32))


def books(r: redis.Redis, key: bytes = KEY) -> Handovers:
    store = Store(r)
    rosters = RosterStore(store, TZ)
    return Handovers(store, Settings(), rosters.get, clock=lambda: BASE + 7200_000, key=key)


def signed_report(r: redis.Redis) -> str:
    book = books(r)
    report = book.create(by="zhiban", from_ms=BASE, to_ms=BASE + 3600_000)
    book.sign(report["id"], by="zhiban")
    return str(report["id"])


def test_acct140_the_key_is_made_once_owner_only(tmp_path: Path) -> None:
    key = handover_key(tmp_path)
    path = secret_path(tmp_path, HANDOVER_KEY)
    assert len(key) == 32 and mode(path) == 0o600 and mode(path.parent) == 0o700
    assert handover_key(tmp_path) == key
    path.chmod(0o644)  # someone widened it: narrowed again, same key
    assert handover_key(tmp_path) == key and mode(path) == 0o600
    tracked = subprocess.run(["git", "ls-files", "*secrets*", "var"], capture_output=True,
                             text=True, cwd=ROOT).stdout
    assert tracked == ""  # never in the repository
    assert handover_key(tmp_path / "other") != key


def test_acct141_signatures_are_hmacs_with_the_key(r: redis.Redis) -> None:
    import hmac as hmac_mod

    hid = signed_report(r)
    book = books(r)
    report = book.get(hid)
    assert report is not None and report["intact"] is True and report["unverifiable"] is None
    signed = report["signed"]
    assert signed["kid"] == key_id(KEY) and len(signed["hmac"]) == 64
    body = {k: report.get(k) for k in ("id", "from", "to", "scope", "shift", "incoming",
                                       "author", "author_name", "created", "generated",
                                       "sections", "counts", "summary", "remarks")}
    body["signed"] = {k: signed[k] for k in ("by", "name", "ts")}
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert signed["hmac"] == hmac_mod.new(KEY, text.encode(), hashlib.sha256).hexdigest()
    done = book.accept(hid, by="zhiban2", note="ok")
    assert done["intact"] is True and done["accepted"]["kid"] == key_id(KEY)
    # someone with Redis but not the key changes the acceptance
    key = f"cc:handover:{hid}"
    from dashboard.archive.events import binary_client

    stored = unpack(binary_client(r).get(key))  # type: ignore[arg-type]
    stored["accepted"]["by"] = "zhihui"
    binary_client(r).set(key, pack(stored))
    assert book.get(hid)["intact"] is False  # type: ignore[index]


def test_acct142_a_change_rehashed_without_the_key_is_caught(r: redis.Redis) -> None:
    hid = signed_report(r)
    book = books(r)
    from dashboard.archive.events import binary_client

    key = f"cc:handover:{hid}"
    stored = unpack(binary_client(r).get(key))  # type: ignore[arg-type]
    stored["remarks"] = "一切正常"  # and the plain digest recomputed, as anyone can
    stored["signed"]["sha256"] = content_hash(stored, stored["signed"])
    binary_client(r).set(key, pack(stored))
    report = book.get(hid)
    assert report is not None and report["intact"] is False and report["unverifiable"] is None
    with pytest.raises(Refused) as refused:
        book.accept(hid, by="zhiban2")
    assert refused.value.code == "tampered"


def test_acct143_unkeyed_or_other_key_signatures_are_unverifiable(r: redis.Redis) -> None:
    hid = signed_report(r)
    other = books(r, key=b"\x01" * 32).get(hid)
    assert other is not None and (other["intact"], other["unverifiable"]) == (False,
                                                                              "other_key")
    from dashboard.archive.events import binary_client

    key = f"cc:handover:{hid}"
    stored = unpack(binary_client(r).get(key))  # type: ignore[arg-type]
    del stored["signed"]["hmac"], stored["signed"]["kid"]  # as signed before this change
    assert stored["signed"]["sha256"] == content_hash(stored, stored["signed"])
    binary_client(r).set(key, pack(stored))
    book = books(r)
    report = book.get(hid)
    assert report is not None and (report["intact"], report["unverifiable"]) == (False,
                                                                                 "unkeyed")
    with pytest.raises(Refused) as refused:
        book.accept(hid, by="zhiban2")
    assert refused.value.code == "unverifiable" and refused.value.status == 409
    from callbacks.duty.handover import print_html

    page = print_html(report, "en", Settings(), BASE)
    assert "cannot be verified" in page and "does not match" not in page


# -- the embedded Valkey's password --------------------------------------------------------


def test_acct150_embedded_valkey_requires_its_password(tmp_path: Path) -> None:
    password = secret(tmp_path, REDIS_PASSWORD)
    assert mode(secret_path(tmp_path, REDIS_PASSWORD)) == 0o600
    with EmbeddedRedis(tmp_path / "redis", persist=False, password=password) as server:
        assert password in server.url and password not in server.safe_url
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=server.port).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=server.port, password="wrong").ping()
        assert redis.Redis.from_url(server.url).ping()
        assert mode(tmp_path / "redis" / "auth.conf") == 0o600
        assert server.process is not None
        cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
        assert password.encode() not in cmdline  # `ps` shows no password
    # without a password the old behaviour: the tests' own server
    with EmbeddedRedis(tmp_path / "plain", persist=False) as server:
        assert redis.Redis(port=server.port).ping()


def test_acct151_redact_hides_passwords_in_logs() -> None:
    assert redact("redis://:s3cret@127.0.0.1:6379/0") == "redis://***@127.0.0.1:6379/0"
    assert redact("rediss://user:s3cret@[::1]:7000/1") == "rediss://***@[::1]:7000/1"
    assert redact("redis://10.0.0.5:6379/0") == "redis://10.0.0.5:6379/0"


def test_acct152_adduser_reaches_the_running_servers_password(tmp_path: Path) -> None:
    """`app.py adduser` with no REDIS_URL and the app stopped: it starts the data folder's
    server with its password, and the user is there at the next start."""
    env = {**os.environ, "CC_DATA_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "app.py", "adduser", "liu", "--role", "leader"],
                          input="Liu-pass-2026\n", capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    password = secret(tmp_path, REDIS_PASSWORD)
    assert password not in done.stdout + done.stderr
    with EmbeddedRedis(tmp_path / "redis", persist=True, password=password) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert Auth(client, "cc:", Settings()).login("liu", "Liu-pass-2026", "1.2.3.4")
        client.close()


# -- the audit trail -----------------------------------------------------------------------


def entry(i: int) -> dict[str, str]:
    return {"ts": "0", "user": "u", "role": "commander", "action": "old", "target": str(i),
            "ip": "-", "outcome": "ok", "detail": "{}"}


def test_acct160_audit_kept_by_time_not_by_count(r: redis.Redis) -> None:
    now = int(time.time() * 1000)
    old, kept = now - 200 * DAY_MS, now - 179 * DAY_MS
    for i in range(300):  # older than 180 days
        r.xadd("cc:audit", entry(i), id=f"{old + i}-0")
    for i in range(50):  # 179 days old: must survive anything
        r.xadd("cc:audit", entry(1000 + i), id=f"{kept + i}-0")
    audit = Audit(r, "cc:")
    for i in range(3000):  # a flood of entries
        audit.write(user="u", role="commander", action="flood", target=str(i), ip="-",
                    outcome="ok")
    ids = [int(i.split("-")[0]) for i, _ in r.xrange("cc:audit")]
    assert sum(1 for t in ids if kept <= t < kept + 50) == 50
    assert sum(1 for t in ids if t >= now - 60_000) == 3000
    assert sum(1 for t in ids if t < now - 180 * DAY_MS) < 150  # the old ones went
    # 0 = for ever
    r.delete("cc:audit")
    for i in range(300):
        r.xadd("cc:audit", entry(i), id=f"{old - 400 * DAY_MS + i}-0")
    Audit(r, "cc:", retention_days=0).write(user="u", role="-", action="x", target="-",
                                            ip="-", outcome="ok")
    assert r.xlen("cc:audit") == 301


def test_acct161_retention_setting_refuses_less_than_180_days(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_AUDIT_RETENTION_DAYS", "90")
    with pytest.raises(ValueError, match="at least 180"):
        Settings.from_env()
    monkeypatch.setenv("CC_AUDIT_RETENTION_DAYS", "365")
    assert Settings.from_env().audit_retention_days == 365
    monkeypatch.setenv("CC_AUDIT_RETENTION_DAYS", "0")
    assert Settings.from_env().audit_retention_days == 0
    monkeypatch.delenv("CC_AUDIT_RETENTION_DAYS")
    assert Settings.from_env().audit_retention_days == 180


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_acct162_entries_before_sign_in_are_rate_limited_with_a_summary(
        r: redis.Redis) -> None:
    minute = int(time.time() * 1000) // 60_000 * 60_000
    clock = Clock(minute + 1000)
    audit = Audit(r, "cc:", anon_per_min=3, clock=clock)
    written = [audit.write_anonymous(action="login", target=f"n{i}", ip="10.0.0.1",
                                     outcome="failure") for i in range(8)]
    written += [audit.write_anonymous(action="login.display", target="-", ip="10.0.0.1",
                                      outcome="failure") for _ in range(2)]
    assert written == [True] * 3 + [False] * 7
    assert audit.write_anonymous(action="login", target="x", ip="10.0.0.2", outcome="failure")
    assert [e["action"] for e in audit.entries(20)] == ["login"] * 4  # no summary yet
    clock.now = minute + 61_000  # the minute is over: the next entry brings its summary
    audit.write(user="zhang", role="commander", action="login", target="zhang", ip="10.0.0.3",
                outcome="success")
    rows = audit.entries(20)
    assert [e["action"] for e in rows[:2]] == ["login", "audit.suppressed"]
    summary = rows[1]
    assert (summary["target"], summary["ip"], summary["outcome"]) == ("10.0.0.1", "10.0.0.1",
                                                                      "suppressed")
    assert summary["detail"] == {"count": 7, "actions": {"login": 5, "login.display": 2},
                                 "from": minute, "to": minute + 60_000, "limit": 3,
                                 "per": "address"}
    audit.flush()
    audit.write(user="zhang", role="commander", action="x", target="-", ip="-", outcome="ok")
    assert len(audit.entries(50, action="audit.suppressed")) == 1  # once
    address = hashlib.sha256(b"10.0.0.1").hexdigest()[:32]
    assert not r.exists(f"cc:audit:anon:{minute // 60_000}:{address}")  # summarised: gone
    # a new minute starts afresh for the address
    assert audit.write_anonymous(action="login", target="y", ip="10.0.0.1", outcome="failure")


def test_acct163_all_addresses_together_are_limited_too(r: redis.Redis) -> None:
    minute = int(time.time() * 1000) // 60_000 * 60_000
    clock = Clock(minute + 1000)
    audit = Audit(r, "cc:", anon_per_min=1, clock=clock)  # 20 a minute from all addresses
    written = [audit.write_anonymous(action="login", target="n", ip=f"10.1.0.{i}",
                                     outcome="failure") for i in range(25)]
    assert written == [True] * 20 + [False] * 5
    clock.now += 60_000
    audit.flush()
    summary = audit.entries(1)[0]
    assert summary["action"] == "audit.suppressed" and summary["target"] == "*"
    assert summary["detail"]["count"] == 5 and summary["detail"]["per"] == "all"


def test_acct164_failed_log_ins_over_http_are_rate_limited(redis_url: str,
                                                          r: redis.Redis) -> None:
    http = make_app(redis_url, audit_anon_per_min=5).server.test_client()
    if time.time() % 60 > 45:  # all in one minute: the limit is per minute
        time.sleep(61 - time.time() % 60)
    codes = [login(http, f"nobody{i}", "bad-pass-1").status_code for i in range(12)]
    assert codes == [401] * 12
    failures = Audit(r, "cc:").entries(50, action="login")
    assert len(failures) == 5 and all(e["user"] == "-" for e in failures)
    assert failures[0]["detail"] == {"reason": "password"}
    bucket = [k for k in r.scan_iter("cc:audit:anon:*") if not k.endswith(":*")
              and not k.endswith(":due")]
    assert len(bucket) == 1 and r.hget(bucket[0], "s") == "7"
    for _ in range(12):  # bad kiosk tokens count for the same address
        http.get("/?display=" + "x" * 40, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert len(Audit(r, "cc:").entries(50, action="login.display")) == 0
    assert r.hget(bucket[0], "s") == "19"


def test_acct165_audit_api_filters_by_user_action_and_time(redis_url: str,
                                                           r: redis.Redis) -> None:
    from ..auth_util import sign_in

    http = make_app(redis_url).server.test_client()
    sign_in(http, r, "commander", "chief")
    audit = Audit(r, "cc:")
    for i in range(6):
        audit.write(user="zhiban" if i % 2 else "zhihui", role="duty_officer",
                    action="handover.sign" if i % 3 == 0 else "event.verify",
                    target=f"T{i}", ip="10.0.0.1", outcome="ok")
        time.sleep(0.003)  # distinct milliseconds
    every = http.get("/api/audit?limit=1000").get_json()["entries"]
    assert [e["target"] for e in every[:6]] == ["T5", "T4", "T3", "T2", "T1", "T0"]
    got = http.get("/api/audit?user=zhiban").get_json()
    assert [e["target"] for e in got["entries"]] == ["T5", "T3", "T1"] and got["next"] is None
    got = http.get("/api/audit?action=handover.*").get_json()["entries"]
    assert [e["target"] for e in got] == ["T3", "T0"]
    got = http.get("/api/audit?action=event.verify&user=zhihui").get_json()["entries"]
    assert [e["target"] for e in got] == ["T4", "T2"]
    t1 = int(every[4]["id"].split("-")[0])
    t4 = int(every[1]["id"].split("-")[0])
    got = http.get(f"/api/audit?from={t1}&to={t4}").get_json()["entries"]
    assert [e["target"] for e in got] == ["T4", "T3", "T2", "T1"]
    page = http.get("/api/audit?limit=2&action=event.verify").get_json()
    assert [e["target"] for e in page["entries"]] == ["T5", "T4"] and page["next"]
    more = http.get(f"/api/audit?limit=2&action=event.verify&before={page['next']}").get_json()
    assert [e["target"] for e in more["entries"]] == ["T2", "T1"]
    for bad in ("from=x", "to=-1", f"from={t4}&to={t1}", "user=bad%20name", "action=a%20b",
                "action=*", "before=xyz", "limit=0", "limit=1001", "from=1" + "0" * 20):
        res = http.get(f"/api/audit?{bad}")
        assert res.status_code == 400, bad
        body = res.get_json()
        assert body["code"] == "bad_query" and body["status"] == 400 and body["error"], bad
    duty = http.application.test_client()
    sign_in(duty, r, "duty_officer")
    assert duty.get("/api/audit?user=zhiban").status_code == 403


def test_acct166_audit_scan_is_bounded_and_says_where_to_go_on(r: redis.Redis) -> None:
    audit = Audit(r, "cc:")
    for i in range(30):
        audit.write(user="rare" if i == 0 else "busy", role="-", action="x", target=str(i),
                    ip="-", outcome="ok")
    found, more = audit.query(10, user="rare", scan_max=20)
    assert found == [] and more is not None  # looked at 20, 10 are left
    found, more = audit.query(10, user="rare", before=more, scan_max=20)
    assert [e["target"] for e in found] == ["0"] and more is None
    assert re.match(r"^\d+-\d+$", audit.entries(1)[0]["id"])
