"""The cockpit page's server side: the gate — `/cockpit` answers 403 (a page, not Dash's
index) to a role that may not read the figures, and to a scoped user asking for another area —
and the charts' callbacks (`register`).

The auth guard (callbacks/access/auth.py) runs first, so a visitor without a session is already on
the way to /login; this only sees signed-in users. The figures themselves come from
`GET /api/stats`, which checks the same again (callbacks/archive/stats.py).
"""

from __future__ import annotations

from typing import Any, Final

import dash
from dash import ClientsideFunction, Input, Output, get_relative_path
from dash.exceptions import PreventUpdate
from flask import Flask, request

from callbacks.access.auth import current_session
from dashboard.city import City
from dashboard.i18n import normalise_lang
from layouts import cockpit, ids, pages, plain, theme
from layouts.chrome import request_lang
from layouts.cockpit_charts import charts

# chart name (layouts/cockpit_charts.CHARTS) → its dcc.Graph
CHART_BOXES: Final = {"map": ids.CK_MAP, "trend": ids.CK_TREND, "cats": ids.CK_CATS,
                      "srcs": ids.CK_SRCS, "sev": ids.CK_SEV, "areas": ids.CK_CHILDREN}


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


def register(app: dash.Dash, city: City) -> None:
    """The cockpit's charts: drawn from the figures JSON cc-80 puts in `CK_DATA` when the
    figures' scope, range, version or moment changed (and only then), and a click on the
    map or the area bars handed back to cc-80's drill-down."""
    centroids = {u.code: u.centroid for u in (*city.towns, *city.communities, *city.grids)}

    @app.callback(*[Output(box, "figure") for box in CHART_BOXES.values()],
                  Input(ids.CK_DATA, "data"), prevent_initial_call=True)
    def draw(data: Any) -> tuple[dict[str, Any], ...]:
        # only the sender's own figures come back as charts: nothing here reads Redis
        if not isinstance(data, dict) or not isinstance(data.get("fig"), dict):
            raise PreventUpdate
        geo = {level: get_relative_path(f"/geo/{level}.geojson")
               for level in theme.BOUNDARY_LEVELS}
        figs = charts(data["fig"], normalise_lang(str(data.get("lang") or "")),
                      data.get("scale") or 1.0, geo, centroids.get)
        for fig in figs.values():  # which figures a chart shows (cc-80's chartKeys)
            fig["layout"]["meta"] = {"key": str(data.get("key") or "")}
        return tuple(figs[name] for name in CHART_BOXES)

    app.clientside_callback(
        ClientsideFunction("ccwall", "cockpitClick"),
        Output(ids.CK_CLICK, "data"),
        Input(ids.CK_MAP, "clickData"),
        Input(ids.CK_CHILDREN, "clickData"),
        prevent_initial_call=True,
    )
