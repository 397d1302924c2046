"""The cockpit page's server-side gate: `/cockpit` answers 403 (a page, not Dash's index) to a
role that may not read the figures, and to a scoped user asking for another area.

The auth guard (callbacks/access/auth.py) runs first, so a visitor without a session is already on
the way to /login; this only sees signed-in users. The figures themselves come from
`GET /api/stats`, which checks the same again (callbacks/archive/stats.py).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from markupsafe import escape

from callbacks.access.auth import current_session
from dashboard.i18n import normalise_lang, t
from layouts import cockpit, pages
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
    title = escape(t("ck.forbidden_title", lang))
    text = escape(t("ck.forbidden_scope" if reason == "scope" else "ck.forbidden", lang))
    back = escape(t("ck.to_wall", lang))
    home = "/?lang=en" if lang == "en" else "/"
    html_lang = "en" if lang == "en" else "zh-CN"
    return f"""<!doctype html>
<html lang="{html_lang}"><head><meta charset="utf-8"><title>403 · {title}</title>
<style>
html,body{{margin:0;height:100%;background:#030b17;color:#e3f1ff;overflow:hidden;
font-family:"Noto Sans CJK SC","Microsoft YaHei","Noto Sans",Arial,sans-serif;
font-size:min(100vw / 120, 100vh / 67.5)}}
main{{height:100%;display:flex;flex-direction:column;align-items:center;justify-content:center;
gap:1.5rem;text-align:center}}
.code{{font-size:8rem;font-weight:700;color:#ff3d3d;line-height:1}}
h1{{margin:0;font-size:3.2rem;letter-spacing:.3rem}}
p{{margin:0;font-size:2rem;color:#9fc0e0}}
a{{font-size:1.6rem;color:#38d8ff;border:.0625rem solid #38d8ff;padding:.6rem 1.6rem;
text-decoration:none}}
</style></head>
<body><main id="cc-ck-denied" data-reason="{reason}"><div class="code">403</div>
<h1>{title}</h1><p>{text}</p><a href="{home}">{back}</a></main></body></html>"""
