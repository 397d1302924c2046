"""Signing in from tests: over HTTP (Flask test client), in the browser, or for a websocket."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from flask.testing import FlaskClient

from dashboard.access.auth import Auth
from dashboard.config import Settings

PASSWORD_SUFFIX = "-Test-pw1"  # with any name: ≥ 10 characters of four classes
# What the browser glue sends with every call: a request without a JSON body needs it
# (callbacks/access/security.py refuses what a plain HTML form could send).
XHR = {"X-Requested-With": "XMLHttpRequest"}


def _name(role: str, name: str | None) -> str:
    return name or f"t-{role}"


def make_user(r: redis.Redis, role: str = "commander", name: str | None = None,
              prefix: str = "cc:", scope: str | None = None) -> tuple[str, str]:
    """Create (or reset) a user; returns (name, password)."""
    user = _name(role, name)
    password = user + PASSWORD_SUFFIX
    Auth(r, prefix, Settings()).add_user(user, role, password, scope)
    return user, password


def sign_in(client: FlaskClient, r: redis.Redis, role: str = "commander",
            name: str | None = None, prefix: str = "cc:", scope: str | None = None) -> str:
    """Create the user and log in through `POST /api/login`; the client keeps the cookie.
    Returns the session token."""
    user, password = make_user(r, role, name, prefix, scope)
    res = client.post("/api/login", json={"username": user, "password": password})
    assert res.status_code == 200, res.get_data(as_text=True)
    cookie = client.get_cookie("cc_session")
    assert cookie is not None
    return cookie.value


def make_app(redis_url: str, **overrides: Any) -> Any:
    """The whole app (`app.create_app`) on `redis_url`, with settings `overrides`."""
    from app import create_app

    return create_app(dataclasses.replace(Settings(), redis_url=redis_url, **overrides))


def client_as(app: Any, r: redis.Redis, role: str | None, scope: str | None = None
              ) -> FlaskClient:
    """A test client of `app` signed in as a user of `role` (and `scope`); none: anonymous."""
    client = app.server.test_client()
    if role:
        sign_in(client, r, role, f"t-{role}-{scope}", scope=scope)
    return client


def session_token(r: redis.Redis, role: str = "commander", name: str | None = None,
                  prefix: str = "cc:", scope: str | None = None) -> str:
    """A session token straight from the store (for websocket clients and benchmarks)."""
    user, password = make_user(r, role, name, prefix, scope)
    found = Auth(r, prefix, Settings()).login(user, password, "127.0.0.1")
    assert found is not None
    return found.token


def session_key(token: str, prefix: str = "cc:") -> str:
    """The Redis key of a session: tokens are stored only as their SHA-256."""
    return f"{prefix}session:{hashlib.sha256(token.encode()).hexdigest()}"


def cookie_header(token: str) -> dict[str, str]:
    """Headers that carry a session to the relay, as a browser on the same host does."""
    return {"Cookie": f"cc_session={token}"}


def browser_sign_out(dash_duo: Any) -> None:
    """Forget the browser's session. Leave the wall for a plain JSON page first: a wall still
    open without its cookie would make its next API read a 401 in the console."""
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + "/api/health")
    dash_duo.driver.delete_all_cookies()


def browser_sign_in(dash_duo: Any, r: redis.Redis, role: str = "commander",
                    name: str | None = None, prefix: str = "cc:",
                    scope: str | None = None) -> None:
    """Sign in through the /login page, then set `dash_duo.server_url` (which opens the
    wall). Call after `dash_duo.start_server(app, navigate=False, ...)`."""
    user, password = make_user(r, role, name, prefix, scope)
    base = dash_duo.server.url.rstrip("/")
    driver = dash_duo.driver
    # `next` is a tiny JSON page, so signing in costs no extra load of the wall
    driver.get(f"{base}/login?next=/api/me")
    driver.find_element("id", "cc-login-user").send_keys(user)
    driver.find_element("id", "cc-login-password").send_keys(password)
    driver.find_element("id", "cc-login-submit").click()
    deadline = time.monotonic() + 10
    while urlsplit(driver.current_url).path != "/api/me":
        if time.monotonic() > deadline:
            error = driver.execute_script(
                "var e = document.getElementById('cc-login-error'); return e && e.textContent")
            raise AssertionError(f"browser sign-in as {user} failed: {error!r}")
        time.sleep(0.02)
    dash_duo.server_url = base  # opens the wall and waits for Dash to render
