"""What every page shares: the header (clock, title, page menu, roster line, connection,
data age, language, user), the browser config store, the page's language and session.

Its own module so the pages and the router (layouts/pages.py) import it and it imports
none of them.
"""

from __future__ import annotations

from typing import Any, Final

import flask
from dash import get_relative_path, html
from dash.development.base_component import Component

from dashboard.command.nearby import rule135_limit_s
from dashboard.config import Settings
from dashboard.i18n import normalise_lang, t, table_for
from dashboard.models import (
    CATEGORIES,
    EVENT_CLOSED,
    EVENT_IN_PROGRESS,
    RESOURCE_KINDS,
    SOURCES,
    URGENT_LEVELS,
)
from layouts import ids, roster, theme, widgets

_settings: Settings = Settings()


def configure(settings: Settings) -> None:
    """Keep the settings the page needs; called once before the first request."""
    global _settings
    _settings = settings


def page_lang(raw: str | None) -> str:
    """The language a page's `?lang=` asks for (`raw`), else the center's (CC_LANG)."""
    return normalise_lang(raw or _settings.lang)


def request_lang() -> str:
    """The language of a page request (`/cockpit?lang=en`). Dash's XHRs carry no address:
    the router (layouts/pages.py) hands each page its language instead."""
    if not flask.has_request_context():
        return page_lang(None)
    return page_lang(flask.request.args.get("lang"))


# What a page's websocket carries besides the stats (the header's connection and data age):
# None = everything. The cockpit polls its figures and the handover reads its API; the duty
# desk follows alerts only — none of them needs a city's units and cameras.
WS_KINDS: Final[dict[str, list[str]]] = {"cockpit": [], "handover": [], "duty": ["alert"],
                                          "rotate": ["alert"]}  # urgent events hold it


def set_address(path: str, search: str) -> None:
    """The address the router renders a page for (layouts/pages.py), kept for the request."""
    if flask.has_request_context():
        flask.g.cc_address = (path, search)


def address() -> tuple[str, str]:
    """(path, query) of the page being rendered; ("", "") outside the router."""
    found = flask.g.get("cc_address") if flask.has_request_context() else None
    return found if isinstance(found, tuple) else ("", "")


def browser_config(lang: str, page: str = "wall") -> dict[str, Any]:
    """Everything the browser glue needs, handed over in one store; `page` says which page
    booted (layouts/pages.py), so the JS starts only that page's parts."""
    s = _settings
    return {
        "page": page,
        "lang": lang,
        "strings": table_for(lang),
        "ids": ids.as_dict(),
        "detailFields": list(ids.DETAIL_FIELDS),
        # Empty url: the browser builds ws://<page host>:<port>/ws itself.
        "ws": {"url": s.ws_public_url, "port": s.ws_port, "path": "/ws",
               "kinds": WS_KINDS.get(page)},
        "tz": s.timezone,
        # Feed positions are WGS-84; only a tile layer in another datum needs them shifted.
        "tileCrs": s.tile_crs if s.tile_url else "wgs84",
        "geo": {
            level: get_relative_path(f"/geo/{level}.geojson") for level in theme.BOUNDARY_LEVELS
        },
        "geoMinZoom": theme.BOUNDARY_MIN_ZOOM,
        "labelMinZoom": theme.LABEL_MIN_ZOOM,
        "severity": theme.severity_config(),
        "urgent": sorted(URGENT_LEVELS),
        "closed": sorted(EVENT_CLOSED),
        "inProgress": sorted(EVENT_IN_PROGRESS),
        "colours": {
            "worker": theme.WORKER_COLOURS,
            "resource": theme.RESOURCE_COLOURS,
            "camera": theme.CAMERA_COLOURS,
        },
        "layers": list(theme.LAYERS),
        "layerMinZoom": theme.LAYER_MIN_ZOOM,
        "cameraLayer": theme.CAMERA_LAYER,
        "categories": list(CATEGORIES),
        "sources": list(SOURCES),
        "limits": theme.LIMITS,
        "staleS": theme.STALE_S,
        "idleReturnS": theme.IDLE_RETURN_S,
        "detailWidthRem": theme.DETAIL_WIDTH_REM,
        "command": theme.COMMAND,
        # 1-3-5 limits (s) per unit kind, for units the panel shows without the API's verdict
        "rule135": {"worker": rule135_limit_s("worker", None),
                    **{k: v for k in RESOURCE_KINDS
                       if (v := rule135_limit_s("resource", k)) is not None}},
        "api": get_relative_path("/api"),
        "session": session_info(),
    }


def session_info() -> dict[str, Any] | None:
    """Who this page is for (set on flask.g by callbacks/access/auth.py): the JS hides what the
    role may not do; the server refuses it anyway."""
    session = flask.g.get("session") if flask.has_request_context() else None
    return session.to_dict() if session is not None else None


def header(lang: str, subtitle: str | None = None, page: str = "wall") -> html.Header:
    """The header every page shares: clock, title, connection, data age, language, user;
    for leaders and commanders a link to the cockpit (on the cockpit: back to the wall)."""
    s = _settings
    name = s.center_name_en if lang == "en" else s.center_name
    other = "zh-CN" if lang == "en" else "en"
    return html.Header(className="cc-header", children=[
        html.Div(className="cc-header-side cc-header-left", children=[
            html.Div(className="cc-clock", children=[
                html.Div("--:--:--", id=ids.CLOCK_TIME, className="cc-clock-time"),
                html.Div(widgets.DASH, id=ids.CLOCK_DATE, className="cc-clock-date"),
            ]),
            *_nav(lang, page),
            roster.line(lang),
        ]),
        html.Div(className="cc-header-center", children=[
            html.H1(name, id=ids.CENTER_NAME, className="cc-title"),
            html.Div(subtitle or t("header.subtitle", lang), className="cc-subtitle"),
        ]),
        html.Div(className="cc-header-side cc-header-right", children=[
            html.Div(id=ids.CONN, className="cc-status cc-conn", **{"data-state": "connecting"},
                     children=[html.Span(className="cc-dot"),
                               html.Span(t("conn.connecting", lang), id=ids.CONN_TEXT)]),
            html.Div(id=ids.DATA_AGE, className="cc-status cc-age", **{"data-level": "none"},
                     children=[html.Span(t("header.data_age", lang), className="cc-status-key"),
                               html.Span(t("age.none", lang), id=ids.DATA_AGE_TEXT)]),
            # the link speaks the language it switches to (its own `lang`)
            html.A(t("header.lang_switch", lang), id=ids.LANG_LINK, className="cc-lang", lang=other,
                   href=f"?lang={other}", title=t("header.lang_switch_title", lang)),
            *_user_box(lang),
        ]),
    ])


# The pages a role may open from the header: (page name, path, roles, label key). A page
# links to the others its user may open. Every path here is one of the router's pages
# (layouts/pages.py; tests/core/test_house.py holds the two together).
NAV: Final = (
    ("wall", "", ("commander", "duty_officer", "leader", "display"), "ck.wall_link"),
    ("cockpit", "cockpit", ("leader", "commander"), "ck.link"),
    ("duty", "duty", ("duty_officer", "commander"), "nav.duty"),
    ("video", "video", ("duty_officer", "commander"), "nav.video"),
    ("rotate", "rotate", ("commander", "duty_officer", "leader", "display"), "nav.rotate"),
)


def _nav(lang: str, page: str) -> list[Component]:
    """The other pages as a small menu: a row of links would take the header's room from
    the roster line, and a wall's display user has none."""
    links = _page_links(lang, page)
    if not links:
        return []
    return [html.Details(className="cc-nav-menu", children=[
        html.Summary(t("nav.menu", lang), className="cc-lang cc-nav-summary"),
        html.Nav(className="cc-nav-links", children=links),
    ])]


def _page_links(lang: str, page: str) -> list[Component]:
    """Links to the other pages this session's role may open (each page checks again)."""
    session = flask.g.get("session") if flask.has_request_context() else None
    if session is None:
        return []
    query = "?lang=en" if lang == "en" else ""
    links: list[Component] = []
    for name, path, roles, label in NAV:
        if name == page or session.role not in roles:
            continue
        link_id = ids.COCKPIT_LINK if name == "cockpit" else ids.nav_link(name)
        links.append(html.A(t(label, lang), id=link_id, className="cc-lang cc-nav",
                            href="/" + path + query))
    return links


def _user_box(lang: str) -> list[Component]:
    """Who is signed in (set on flask.g by callbacks/access/auth.py) and a sign-out button. It is
    no form: a plain form post is what the CSRF rule refuses (callbacks/access/security.py), so
    assets/js/cc-05-signout.js posts `/api/logout` from script, then opens `data-login`."""
    session = flask.g.get("session") if flask.has_request_context() else None
    if session is None:
        return []
    role = t(f"role.{session.role}", lang)
    return [html.Div(
        id=ids.USER_BOX, className="cc-user",
        title=t("header.user_title", lang, user=session.user, role=role),
        children=[html.Span(session.user, id=ids.USER_NAME, className="cc-user-name"),
                  html.Button(t("header.sign_out", lang), id=ids.SIGN_OUT, type="button",
                              className="cc-lang cc-sign-out",
                              **{"data-login": "/login" + ("?lang=en" if lang == "en" else ""),
                                 "data-failed": t("header.sign_out_failed", lang)})],
    )]
