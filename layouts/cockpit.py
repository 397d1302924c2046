"""The executive cockpit `/cockpit` (领导驾驶舱): the city's figures at a glance, by level.

Static skeleton only: assets/js/cc-80-cockpit.js fetches `GET /api/stats?scope=` (cached on
the server, docs/COCKPIT.md) and fills every panel; clicking an area drills down to it
(`/cockpit?scope=CODE`, so a kiosk can be pointed at a town). Leaders and commanders only.
"""

from __future__ import annotations

from typing import Final

import dash_leaflet as dl
from dash import dcc, html
from dash.development.base_component import Component

from dashboard.city import load_city
from dashboard.config import Settings
from dashboard.i18n import t
from layouts import ids, theme, wall, widgets

ROLES: Final = frozenset({"leader", "commander"})
# The page re-reads the (cached) figures this often; the server recomputes only on new data.
POLL_MS: Final = 5000


_city: dict[str, str] = {}


def configure(settings: Settings) -> None:
    """The city's own code and name: the top of every breadcrumb."""
    city = load_city(settings.city)
    _city.update(code=city.code, name=city.name)


def _panel(title: str, name: str, class_name: str = "") -> html.Section:
    return widgets.panel(title, html.Div(className="cc-ck-fill", **{"data-ck": name}),
                         class_name=f"cc-ck-panel cc-ck-p-{name} {class_name}".strip())


def _forbidden(lang: str) -> Component:
    return html.Div(id=ids.CK_ROOT, className="cc-wall cc-ck", lang=lang, children=[
        wall.header(lang, subtitle=t("cockpit.title", lang)),
        html.Main(className="cc-ck-forbidden", children=[
            html.P(t("cockpit.forbidden", lang)),
            html.A(t("cockpit.to_wall", lang), href="/", className="cc-vw-btn"),
        ]),
    ])


def serve_layout() -> Component:
    """The page for one request; the language from `?lang=`, the scope from `?scope=`."""
    lang = wall.request_lang()
    session = wall.session_info()
    if not session or session.get("role") not in ROLES:
        return _forbidden(lang)
    back = "/" + ("?lang=en" if lang == "en" else "")
    toolbar = html.Div(className="cc-ck-toolbar", children=[
        html.Nav(id=ids.CK_CRUMBS, className="cc-ck-crumbs"),
        html.Div(id=ids.CK_MSG, className="cc-ck-msg", role="status"),
        html.A(t("cockpit.to_wall", lang), className="cc-vw-btn cc-ck-back", href=back),
    ])
    the_map = dl.Map(
        id=ids.CK_MAP, center=list(theme.MAP_CENTER), zoom=theme.MAP_ZOOM, minZoom=7,
        maxZoom=18, zoomSnap=0.1, attributionControl=False, zoomControl=False,
        trackViewport=False, children=[], className="cc-map cc-ck-leaflet",
        style={"width": "100%", "height": "100%"},
    )
    left = html.Aside(className="cc-col cc-ck-col", children=[
        _panel(t("cockpit.periods", lang), "periods"),
        _panel(t("cockpit.now", lang), "now"),
        _panel(t("cockpit.window", lang), "window"),
    ])
    centre = html.Section(className="cc-ck-centre", children=[
        widgets.panel(t("cockpit.map", lang), html.Div(the_map, className="cc-ck-mapbox"),
                      class_name="cc-ck-panel cc-ck-p-map"),
        _panel(t("cockpit.trend", lang), "trend"),
    ])
    right = html.Aside(className="cc-col cc-ck-col", children=[
        _panel(t("cockpit.children", lang), "children"),
        _panel(t("cockpit.by_category", lang), "category"),
        _panel(t("cockpit.by_source", lang), "source"),
        _panel(t("cockpit.workers", lang), "workers"),
    ])
    config = {**wall.browser_config(lang, page="cockpit"),
              "cockpit": {"pollMs": POLL_MS, "scopeOf": session.get("scope") or None,
                          "city": dict(_city)}}
    return html.Div(id=ids.CK_ROOT, className="cc-wall cc-ck", lang=lang, children=[
        wall.header(lang, subtitle=t("cockpit.title", lang)),
        toolbar,
        html.Main(id=ids.CK_BODY, className="cc-ck-main", children=[left, centre, right]),
        dcc.Store(id=ids.CONFIG, data=config),
        dcc.Store(id=ids.BOOTED, data=False),
    ])
