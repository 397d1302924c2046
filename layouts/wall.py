"""The wall page `/`: header, KPI and breakdown panels, the map, the live event list.

`configure(settings)` is called once by the app; `serve_layout(lang)` runs per page load
(layouts/pages.py), in the language of the address's `?lang=`. Live values are filled by
assets/js from the websocket.
"""

from __future__ import annotations

import dash_leaflet as dl
from dash import dcc, html
from dash.development.base_component import Component

from dashboard.config import Settings
from dashboard.i18n import t
from dashboard.models import (
    CATEGORIES,
    SOURCES,
)
from layouts import chrome, command, ids, theme, widgets

_settings: Settings = Settings()


def configure(settings: Settings) -> None:
    """Keep the settings the page needs; called once before the first request."""
    global _settings
    _settings = settings


def _left(lang: str) -> html.Aside:
    overview = widgets.panel(t("panel.overview", lang), [
        html.Div(className="cc-kpis", children=[
            widgets.kpi(t("kpi.today", lang), ids.KPI_TODAY, "cc-kpi-today"),
            widgets.kpi(t("kpi.open", lang), ids.KPI_OPEN, "cc-kpi-open"),
            widgets.kpi(t("kpi.in_progress", lang), ids.KPI_IN_PROGRESS, "cc-kpi-progress"),
            widgets.kpi(t("kpi.closed_today", lang), ids.KPI_CLOSED, "cc-kpi-closed"),
        ]),
        html.Div(t("kpi.by_severity", lang), className="cc-subhead"),
        widgets.severity_tiles(lang),
        html.Div(className="cc-minis", children=[
            html.Div(className="cc-mini", children=[
                html.Span(t("kpi.workers_online", lang), className="cc-mini-label"),
                html.Span(widgets.DASH, id=ids.KPI_WORKERS, className="cc-mini-value"),
            ]),
            html.Div(className="cc-mini", children=[
                html.Span(t("kpi.ingest_rate", lang), className="cc-mini-label"),
                html.Span(widgets.DASH, id=ids.KPI_RATE, className="cc-mini-value"),
                html.Span(t("kpi.rate_unit", lang), className="cc-mini-unit"),
            ]),
        ]),
    ], class_name="cc-panel-overview")
    categories = widgets.panel(
        t("panel.by_category", lang),
        widgets.bar_list("cat", CATEGORIES, "cat", lang, ids.BARS_CATEGORY),
        class_name="cc-panel-cat",
    )
    sources = widgets.panel(
        t("panel.by_source", lang),
        widgets.bar_list("src", SOURCES, "src", lang, ids.BARS_SOURCE),
        class_name="cc-panel-src",
    )
    return html.Aside([overview, categories, sources], className="cc-col cc-col-left")


def _map(lang: str) -> html.Section:
    s = _settings
    children: list[Component] = []
    if s.tile_url:
        children.append(dl.TileLayer(url=s.tile_url, maxZoom=18, attribution=""))
    the_map = dl.Map(
        id=ids.MAP, center=list(theme.MAP_CENTER), zoom=theme.MAP_ZOOM, minZoom=7, maxZoom=18,
        zoomSnap=0.1, zoomDelta=0.5, attributionControl=False, zoomControl=False,
        trackViewport=False, children=children, className="cc-map",
        style={"width": "100%", "height": "100%"},
    )
    return html.Section(className="cc-map-wrap", children=[
        the_map,
        html.Div(id=ids.MAP_INFO, className="cc-map-info"),
        widgets.legend(lang),
        widgets.detail_card(lang),
        html.Div(className="cc-map-frame"),
    ])


def _right(lang: str) -> html.Aside:
    events = widgets.panel(
        t("panel.events", lang),
        html.Ol(id=ids.EVENT_LIST, className="cc-event-list"),
        extra=html.Span("", id=ids.EVENT_COUNT, className="cc-panel-extra"),
        class_name="cc-panel-events",
    )
    alerts = widgets.panel(t("alert.panel", lang), command.alerts_body(),
                           extra=command.alerts_extra(), class_name="cc-panel-alerts")
    return html.Aside([alerts, events], className="cc-col cc-col-right")


def serve_layout(lang: str) -> Component:
    """The wall page, in `lang` (the address's `?lang=`)."""
    return html.Div(id=ids.ROOT, className="cc-wall", lang=lang, children=[
        chrome.header(lang),
        html.Main(className="cc-main", children=[_left(lang), _map(lang), _right(lang)]),
        dcc.Store(id=ids.CONFIG, data=chrome.browser_config(lang)),
        dcc.Store(id=ids.BOOTED, data=False),
        dcc.Store(id=ids.SELECTED, data=None),
    ])
