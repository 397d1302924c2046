"""Sign-in for the wall (docs/HTTP.md, docs/SECURITY.md): the guard on every request, the
`/login` page, `POST /api/login`, `POST /api/logout`, `GET /api/me`, `GET /api/audit`.

Every path needs a session except `/api/health`, `/api/login`, `/login` and `/logout`, and
`/metrics` (Prometheus has no session: callbacks/metrics.py checks its token or loopback). An
API or Dash XHR without one gets a JSON 401; a page is redirected to `/login?next=…`. A
kiosk signs in read-only with `/?display=TOKEN` (the token `app.py adduser NAME --role
display` prints): the guard swaps the token for a session cookie and drops it from the URL.
A display session may only read: any other method gets a JSON 403. Requests before sign-in
(failed log-ins, bad kiosk tokens) are audited rate-limited per address (dashboard/access/audit.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast
from urllib.parse import urlencode, urlsplit

import flask
from flask import Flask, Response, g, jsonify, redirect, request

from callbacks.errors import error
from dashboard.access.audit import ACTION_RE, Audit
from dashboard.access.auth import NAME_RE, Auth, Session
from dashboard.config import Settings
from dashboard.i18n import normalise_lang, t
from dashboard.scope import sees
from layouts import plain

F = TypeVar("F", bound=Callable[..., Any])

COOKIE: Final = "cc_session"
DISPLAY_PARAM: Final = "display"
# Reachable without a session: the health probe, everything signing in needs, and the
# metrics (guarded by their own rule, callbacks/metrics.py).
OPEN_PATHS: Final = frozenset({"/api/health", "/api/login", "/login", "/logout",
                               "/_favicon.ico", "/metrics"})
# Answered with a JSON 401 rather than a redirect: XHRs, data and static files.
JSON_PREFIXES: Final = ("/api/", "/_dash-", "/geo/", "/assets/", "/_reload-hash")
# What a read-only (display) session may still POST: Dash's own callback XHRs (the wall's
# callbacks are clientside and server callbacks that change data check roles themselves)
# and signing out.
DISPLAY_POSTS: Final = ("/_dash-update-component", "/api/logout", "/logout")
READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
EXT_AUTH: Final = "cc_auth"
EXT_AUDIT: Final = "cc_audit"
AUDIT_LIMIT_MAX: Final = 1000
MS_MAX: Final = 10**15  # epoch ms: far beyond any date we meet
STREAM_ID_RE: Final = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


def _ip() -> str:
    # Behind a reverse proxy, wrap the WSGI app in werkzeug's ProxyFix so this is the client.
    return request.remote_addr or ""


def _auth() -> Auth:
    return cast(Auth, flask.current_app.extensions[EXT_AUTH])


def _audit() -> Audit:
    return cast(Audit, flask.current_app.extensions[EXT_AUDIT])


def safe_next(raw: str | None) -> str:
    """A local path to go to after signing in; anything else (another site, `//host`,
    a scheme, a backslash trick) becomes `/`."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in raw):
        return "/"
    return raw


def current_session() -> Session | None:
    """The request's session (looked up once per request), or None."""
    if "session" in g:
        return cast("Session | None", g.session)
    token = request.cookies.get(COOKIE)
    found = _auth().session(token) if token else None
    g.session = found
    return found


def require(*roles: str) -> Callable[[F], F]:
    """Route decorator: 401 JSON without a session, 403 JSON when the role is not one of
    `roles` (a commander counts as a duty officer); sets `flask.g.session`."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            found = current_session()
            if found is None or not found.may(*roles):
                return role_refusal(found, roles)
            g.session = found
            return fn(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def role_refusal(found: Session | None, roles: tuple[str, ...]) -> tuple[Response, int]:
    """401 without a session, 403 when its role is not one of `roles`."""
    if found is None:
        return error(401, "unauthenticated", "sign in first")
    return error(403, "forbidden", f"needs role {' or '.join(roles)}", role=found.role)


def out_of_scope() -> None:
    """Mark the request as refused for the user's scope: it is answered like an unknown id
    (404, so ids do not leak), but audited as what it was, `denied` / `out_of_scope`."""
    g.cc_out_of_scope = True


def scoped_event(store: Any, event_id: str) -> dict[str, Any] | None:
    """The event if the session may see it; None when unknown or outside the scope (then
    marked `out_of_scope` for the audit), so the caller answers both with the same 404."""
    event = store.event(event_id)
    if event is not None and not sees(g.session.scope, event):
        out_of_scope()
        return None
    return event


def audited(action: str, target: str, outcome: str, detail: dict | None = None) -> None:
    """One audit entry for the request's session (or `-` when none) and address."""
    if g.get("cc_out_of_scope") and outcome in ("failure", "refused"):
        outcome, detail = "denied", {**(detail or {}), "code": "out_of_scope"}
    found = g.get("session")
    _audit().write(user=found.user if found else "-", role=found.role if found else "-",
                   action=action, target=target, ip=_ip(), outcome=outcome, detail=detail)


def audited_anonymous(action: str, target: str, outcome: str,
                      detail: dict | None = None) -> None:
    """An audit entry for a request before sign-in (a failed log-in, a bad kiosk token),
    rate-limited per address so a flood of them cannot flood the trail."""
    _audit().write_anonymous(action=action, target=target, ip=_ip(), outcome=outcome,
                             detail=detail)


def _set_cookie(response: Response, token: str) -> Response:
    # CC_COOKIE_SECURE=true (callbacks/access/security.py): Secure even when TLS ends before us
    secure = request.is_secure or bool(flask.current_app.config.get("SESSION_COOKIE_SECURE"))
    response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", secure=secure, path="/")
    return response


def _clear_cookie(response: Response) -> Response:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax")
    return response


def _login_url(next_path: str) -> str:
    lang = request.args.get("lang")
    query = {"next": next_path, **({"lang": lang} if lang else {})}
    return "/login?" + urlencode(query)


def _without_display_param() -> str:
    args = [(k, v) for k, v in request.args.items(multi=True) if k != DISPLAY_PARAM]
    return request.path + ("?" + urlencode(args) if args else "")


def install_auth(server: Flask, auth: Auth, audit: Audit, settings: Settings) -> None:
    """Guard every request of `server` and add the sign-in routes."""
    server.extensions[EXT_AUTH] = auth
    server.extensions[EXT_AUDIT] = audit

    @server.before_request
    def guard() -> Any:
        path = request.path
        if path in OPEN_PATHS:
            return None
        found = current_session()
        is_json = path.startswith(JSON_PREFIXES)
        if found is None and not is_json and request.args.get(DISPLAY_PARAM):
            return _display_sign_in(request.args[DISPLAY_PARAM])
        if found is None:
            if is_json:
                return error(401, "unauthenticated", "sign in first")
            return redirect(_login_url(safe_next(request.full_path.rstrip("?"))), 302)
        if found.role == "display" and request.method not in READ_METHODS and \
                path not in DISPLAY_POSTS:
            return error(403, "read_only", "a display session is read-only")
        return None

    def _display_sign_in(token: str) -> Any:
        found = auth.display_login(token, _ip())
        g.session = found
        if found is None:
            g.session = None
            audited_anonymous("login.display", "-", "failure")
            return redirect(_login_url(safe_next(_without_display_param())), 302)
        audited("login.display", found.user, "success")
        return _set_cookie(redirect(_without_display_param(), 302), found.token)

    @server.post("/api/login")
    def login() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("username"), str) or \
                not isinstance(body.get("password"), str) or not body["username"]:
            return error(400, "bad_json", 'send JSON {"username": "…", "password": "…"}')
        name, ip = body["username"][:64], _ip()
        g.session = None
        tried = auth.attempt(name, body["password"], ip)
        found = tried.session
        if tried.outcome == "throttled":
            audited_anonymous("login", name, "throttled", {"limit": tried.limit})
            return error(429, "throttled", "too many failed sign-ins; try again in 15 minutes")
        if found is None:
            audited_anonymous("login", name, "failure", {"reason": tried.reason})
            return error(401, "bad_credentials", "wrong user name or password")
        old = request.cookies.get(COOKIE)
        if old and old != found.token:
            auth.logout(old)  # one browser, one session
        g.session = found
        audited("login", name, "success")
        return _set_cookie(jsonify(found.to_dict()), found.token)

    def end_session() -> None:
        found = current_session()
        if found is not None:
            auth.logout(found.token)
            audited("logout", found.user, "success")

    @server.post("/api/logout")
    def logout() -> Any:
        end_session()
        return _clear_cookie(jsonify({"ok": True}))

    @server.post("/logout")
    def logout_page() -> Any:
        """Sign out, then the sign-in page. Only for scripts: callbacks/access/security.py refuses
        a plain form post (the header's button posts /api/logout from script instead)."""
        end_session()
        lang = request.args.get("lang")
        return _clear_cookie(redirect("/login" + (f"?lang={lang}" if lang else ""), 302))

    @server.get("/api/me")
    @require()
    def me() -> Any:
        return jsonify(g.session.to_dict())

    @server.get("/api/audit")
    @require("commander")
    def audit_entries() -> Any:
        if g.session.scope:  # the trail names every area's events and users
            return error(403, "forbidden", "the audit trail is for a city-wide commander")
        try:
            query = audit_query(request.args)
        except ValueError as exc:
            return error(400, "bad_query", str(exc))
        entries, more = audit.query(**query)
        return jsonify({"entries": entries, "next": more})

    @server.get("/login")
    def login_page() -> Any:
        lang = normalise_lang(request.args.get("lang") or settings.lang)
        next_path = safe_next(request.args.get("next"))
        if current_session() is not None:
            return redirect(next_path, 302)
        center = settings.center_name_en if lang == "en" else settings.center_name
        response = flask.make_response(login_html(lang, center, next_path))
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        response.headers["Cache-Control"] = "no-store"  # framing: callbacks/access/security.py
        return response




def _whole(args: Any, name: str, low: int, high: int) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def audit_query(args: Any) -> dict[str, Any]:
    """`GET /api/audit`'s arguments checked: `limit` (1-1000), `user` (a user name, or `-`
    for entries before sign-in), `action` (exact, or a prefix ending in `*`), `from`/`to`
    (epoch ms, inclusive), `before` (the `next` of the last page). ValueError says which."""
    limit = _whole(args, "limit", 1, AUDIT_LIMIT_MAX)
    from_ms = _whole(args, "from", 0, MS_MAX)
    to_ms = _whole(args, "to", 0, MS_MAX)
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise ValueError("from must not be after to")
    user = args.get("user") or None
    if user is not None and not NAME_RE.match(user):
        raise ValueError("user must be a user name (1-64 of A-Z a-z 0-9 _ . @ -)")
    action = args.get("action") or None
    if action is not None and not ACTION_RE.match(action.removesuffix("*")):
        raise ValueError("action must be an action name such as login or handover.*")
    before = args.get("before") or None
    if before is not None and not STREAM_ID_RE.match(before):
        raise ValueError("before must be an entry id (the next of the last page)")
    return {"limit": 100 if limit is None else limit, "user": user, "action": action,
            "from_ms": from_ms, "to_ms": to_ms, "before": before}


def login_html(lang: str, center: str, next_path: str) -> str:
    """The sign-in page: dark, big type, no external resources, a few lines of JS. The form
    posts (to nowhere that accepts it) so a page whose script did not run never puts the
    password in the address."""
    other = "zh-CN" if lang == "en" else "en"
    strings = {k: t(f"login.{k}", lang) for k in ("wrong", "throttled", "failed", "busy",
                                                  "submit")}
    return plain.render("login.html", lang=lang, center=center,
                        cfg={"next": next_path, "s": strings},
                        switch=f"/login?{urlencode({'next': next_path, 'lang': other})}",
                        script=plain.LOGIN_SCRIPT)
