"""The cockpit page's server-side gate: `/cockpit` answers 403 (a page, not Dash's index) to a
role that may not read the figures, and to a scoped user asking for another area.

The auth guard (callbacks/access/auth.py) runs first, so a visitor without a session is already on
the way to /login; this only sees signed-in users. The figures themselves come from
`GET /api/stats`, which checks the same again (callbacks/archive/stats.py).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from callbacks.access.auth import current_session
from dashboard.i18n import normalise_lang
from layouts import cockpit, pages, plain
from layouts.chrome import request_lang


def install_cockpit_guard(server: Flask) -> None:
    """Register the gate; call after `install_auth` so signing in comes first."""

    @server.before_request
    def cockpit_gate() -> Any:
        if pages.request_page() != "cockpit":
            return None  # Dash's XHRs too: the router's serve_layout refuses (forbidden_layout)
        session = current_session()
        if session is None:
            return None  # the auth guard redirects it to /login
        lang = normalise_lang(request_lang())
        if session.role not in cockpit.READERS:
            return forbidden_page(lang, "role"), 403
        own = session.scope or ""
        asked = (request.args.get("scope") or "").strip()
        if own and asked and not asked.startswith(own):
            return forbidden_page(lang, "scope"), 403
        return None


def forbidden_page(lang: str, reason: str) -> str:
    """A plain dark page (no Dash, no script) saying why, with a way back to the wall."""
    return plain.render("forbidden.html", lang=lang, reason=reason)
