"""The executive cockpit page `/cockpit` (issue 5): the figures of one scope (city, town,
community or grid) on one big screen, drilled down by clicking a child unit.

Static skeleton only: assets/js/cc-80-cockpit.js fills every figure from
`GET /api/stats?scope=&range=` (docs/COCKPIT.md) and keeps `?scope=CODE` and the time range
in the address so a drilled view can be bookmarked or kiosked; the charts are `dcc.Graph`s
whose figures callbacks/cockpit.py builds (layouts/cockpit_charts.py) from the same figures
JSON. Leaders and commanders only: anyone else gets `forbidden_layout` here, and a 403 page
from callbacks/cockpit.py before Dash is even asked.
"""

from __future__ import annotations

from typing import Any, Final

from dash import dcc, get_relative_path, html
from dash.development.base_component import Component

from dashboard.archive.span import RANGES
from dashboard.city import load_city
from dashboard.config import Settings
from dashboard.i18n import t
from layouts import chrome, ids, theme, widgets

READERS: Final = frozenset({"leader", "commander"})  # as callbacks/archive/stats.py READERS
# The figures are re-read this often; the server answers from its cache unless the data
# moved, and the page repaints only when `version` or `generated` changed.
POLL_MS: Final = 5000
RANK_ROWS: Final = 6  # rows of each ranking list that fit the panel at 1080 lines
EXPORT_FORMATS: Final = ("csv", "xlsx")


_city: dict[str, str] = {}


def configure(settings: Settings) -> None:
    """The city (the breadcrumb's root); the header and config come from layouts.chrome."""
    city = load_city(settings.city)
    _city.update(code=city.code, name=city.name, name_en=city.label("en"), level="city")


def allowed(session: dict[str, Any] | None) -> bool:
    return bool(session and session.get("role") in READERS)


def cockpit_config(session: dict[str, Any] | None) -> dict[str, Any]:
    return {"pollMs": POLL_MS, "own": (session or {}).get("scope") or None,
            "city": dict(_city), "rankRows": RANK_ROWS,
            "ranges": list(RANGES),
            "export": get_relative_path("/api/export")}


def _fig(label: str, key: str, modifier: str = "") -> html.Div:
    """One big figure; `data-ck` names the figure the JS writes (and tests read)."""
    return html.Div(className=f"cc-ck-fig {modifier}".strip(), children=[
        html.Div(widgets.DASH, className="cc-ck-fig-value", **{"data-ck": key}),
        html.Div(label, className="cc-ck-fig-label"),
    ])


def _period(label: str, key: str) -> html.Div:
    return html.Div(className="cc-ck-period", **{"data-period": key}, children=[
        html.Div(label, className="cc-ck-period-label"),
        html.Div(widgets.DASH, className="cc-ck-period-value", **{"data-ck": f"{key}.count"}),
        html.Div(className="cc-ck-period-foot", children=[
            html.Span("", className="cc-ck-change", **{"data-ck": f"{key}.change",
                                                       "data-dir": "none"}),
            html.Span("", className="cc-ck-prev", **{"data-ck": f"{key}.prev"}),
        ]),
    ])


def _left(lang: str) -> html.Aside:
    periods = widgets.panel(t("ck.overview", lang), [
        html.Div(id=ids.CK_PERIODS, className="cc-ck-periods", children=[
            _period(t(f"ck.{p}", lang), p) for p in ("today", "week", "month")]),
        html.Div(id=ids.CK_NOW, className="cc-ck-figs cc-ck-figs-4", children=[
            _fig(t("ck.open", lang), "now.open"),
            _fig(t("ck.overdue", lang), "now.overdue", "is-bad"),
            _fig(t("ck.in_progress", lang), "now.in_progress"),
            _fig(t("ck.closed_today", lang), "now.closed_today", "is-good"),
        ]),
    ], class_name="cc-ck-panel-periods")
    window = widgets.panel(t("ck.range.30d", lang), [
        html.Div(id=ids.CK_WINDOW, className="cc-ck-figs cc-ck-figs-3", children=[
            _fig(t("ck.total", lang), "window.total"),
            _fig(t("ck.closed", lang), "window.closed", "is-good"),
            _fig(t("ck.closure_rate", lang), "window.closure_rate", "is-accent"),
            _fig(t("ck.overdue", lang), "window.overdue", "is-bad"),
            _fig(t("ck.yellow", lang), "window.yellow", "is-yellow"),
            _fig(t("ck.red", lang), "window.red", "is-red"),
        ]),
    ], class_name="cc-ck-panel-window")
    times = widgets.panel(t("ck.times", lang), [
        html.Div(id=ids.CK_TIMES, className="cc-ck-figs cc-ck-figs-3", children=[
            _fig(t("ck.avg_dispatch", lang), "window.avg_dispatch_s", "is-time"),
            _fig(t("ck.avg_arrive", lang), "window.avg_arrive_s", "is-time"),
            _fig(t("ck.avg_close", lang), "window.avg_close_s", "is-time"),
        ]),
    ], class_name="cc-ck-panel-times")
    workers = widgets.panel(t("ck.workers", lang), [
        html.Div(id=ids.CK_WORKERS, className="cc-ck-gauges", children=[
            _gauge(t("ck.online_rate", lang), "workers"),
            _gauge(t("ck.patrol", lang), "patrol"),
        ]),
    ], class_name="cc-ck-panel-workers")
    return html.Aside([periods, window, times, workers], className="cc-col cc-ck-left")


def _gauge(label: str, key: str) -> html.Div:
    return html.Div(className="cc-ck-gauge", **{"data-gauge": key}, children=[
        html.Div(className="cc-ck-gauge-head", children=[
            html.Span(label, className="cc-ck-gauge-label"),
            html.Span(widgets.DASH, className="cc-ck-gauge-value", **{"data-ck": f"{key}.rate"}),
        ]),
        html.Div(className="cc-ck-gauge-track", children=[html.Div(className="cc-ck-gauge-fill")]),
        html.Div("", className="cc-ck-gauge-of", **{"data-ck": f"{key}.of"}),
    ])


def graph(box_id: str, name: str) -> dcc.Graph:
    """An empty chart in the wall's template until callbacks/cockpit.py draws the figures;
    the PNG button names the file after the chart."""
    return dcc.Graph(id=box_id, className=f"cc-ck-graph cc-ck-graph-{name}",
                     figure={"data": [], "layout": {"template": theme.chart_template(),
                                                    "xaxis": {"visible": False},
                                                    "yaxis": {"visible": False}}},
                     config=theme.chart_config(name, get_relative_path("/assets/topojson/")),
                     responsive=True, style={"height": "100%", "width": "100%"})


def _range_picker(lang: str) -> html.Div:
    """today / 7 days / 30 days / this year / custom from–to; cc-80 keeps it in the address."""
    return html.Div(id=ids.CK_RANGE, className="cc-ck-range", role="group", children=[
        *[html.Button(t(f"ck.range.{r}", lang), className="cc-ck-range-btn", type="button",
                      **{"data-range": r}) for r in (*RANGES, "custom")],
        html.Div(id=ids.CK_CUSTOM, className="cc-ck-custom", hidden=True, children=[
            # cc-80 puts an <input type="date"> in each slot (Dash has no plain date input)
            *[html.Label([html.Span(t(f"ck.range.{end}", lang)),
                          html.Span(className="cc-ck-date-slot", **{"data-date": end})])
              for end in ("from", "to")],
            html.Button(t("ck.range.apply", lang), id=ids.CK_APPLY, type="button",
                        className="cc-ck-range-btn is-apply"),
        ]),
    ])


def _export(lang: str) -> html.Div:
    """The export of what the figures count (scope and range): cc-80 sets the links."""
    return html.Div(id=ids.CK_EXPORT, className="cc-ck-export", children=[
        html.Span(t("ck.export", lang), className="cc-ck-export-label"),
        *[html.A(t(f"ck.export.{f}", lang), className="cc-ck-export-link", download="",
                 href=get_relative_path(f"/api/export?format={f}"), **{"data-format": f})
          for f in EXPORT_FORMATS],
    ])


def _centre(lang: str) -> html.Section:
    bar = html.Div(className="cc-ck-bar", children=[
        html.Nav(id=ids.CK_CRUMBS, className="cc-ck-crumbs", **{"aria-label": "breadcrumb"}),
        html.Div("", id=ids.CK_MSG, className="cc-ck-msg", role="status"),
        _range_picker(lang),
        _export(lang),
    ])
    the_map = html.Section(className="cc-ck-map-wrap", children=[
        html.Div(className="cc-ck-map", children=[graph(ids.CK_MAP, "map")]),
        html.Div(id=ids.CK_SCOPE, className="cc-ck-scope"),
        html.Div(t("ck.loading", lang), id=ids.CK_UPDATED, className="cc-ck-updated"),
        html.Div(className="cc-map-frame"),
    ])
    trend = widgets.panel(t("ck.trend", lang), graph(ids.CK_TREND, "trend"),
                          class_name="cc-ck-panel-trend")
    bottom = html.Div(className="cc-ck-bottom", children=[
        trend,
        widgets.panel(t("ck.by_category", lang), graph(ids.CK_CATS, "categories"),
                      class_name="cc-ck-panel-cat"),
        widgets.panel(t("ck.by_source", lang), graph(ids.CK_SRCS, "sources"),
                      class_name="cc-ck-panel-src"),
    ])
    return html.Section([bar, the_map, bottom], className="cc-ck-centre")


def _right(lang: str) -> html.Aside:
    children = widgets.panel(t("ck.children.town", lang), [
        html.Div(className="cc-ck-children", children=[graph(ids.CK_CHILDREN, "areas")]),
    ], extra=html.Span("", id=ids.CK_CHILD_TITLE, className="cc-panel-extra"),
        class_name="cc-ck-panel-children")
    sev = widgets.panel(t("ck.by_severity", lang), html.Div(
        className="cc-ck-sev", children=[graph(ids.CK_SEV, "severity")]),
        class_name="cc-ck-panel-sev")
    rankings = widgets.panel(t("ck.rank.town", lang), [
        html.Div(className="cc-ck-ranks", children=[
            html.Div(className="cc-ck-rank", children=[
                html.Div(t("ck.rank_rate", lang), className="cc-ck-rank-head"),
                html.Ol(id=ids.CK_RANK_RATE, className="cc-ck-rank-list"),
            ]),
            html.Div(className="cc-ck-rank", children=[
                html.Div(t("ck.rank_overdue", lang), className="cc-ck-rank-head"),
                html.Ol(id=ids.CK_RANK_OVERDUE, className="cc-ck-rank-list"),
            ]),
        ]),
    ], class_name="cc-ck-panel-ranks")
    return html.Aside([children, sev, rankings], className="cc-col cc-ck-right")


def forbidden_layout(lang: str, reason: str = "role") -> Component:
    """What someone who may not see the cockpit gets instead (the page load is a 403 too)."""
    text = t("ck.forbidden_scope" if reason == "scope" else "ck.forbidden", lang)
    return html.Div(id=ids.CK_ROOT, className="cc-wall cc-ck cc-ck-denied", lang=lang, children=[
        html.Main(className="cc-ck-denied-box", children=[
            html.Div("403", className="cc-ck-denied-code"),
            html.H1(t("ck.forbidden_title", lang), className="cc-ck-denied-title"),
            html.P(text, className="cc-ck-denied-text"),
            html.A(t("ck.to_wall", lang), className="cc-vw-btn cc-ck-btn",
                   href="/" + ("?lang=en" if lang == "en" else "")),
        ]),
    ])


def serve_layout(lang: str) -> Component:
    """The page for one request in `lang`; the scope comes from the address (read by the
    JS) within the session's own."""
    session = chrome.session_info()
    if not allowed(session):
        return forbidden_layout(lang)
    config = {**chrome.browser_config(lang, page="cockpit"), "cockpit": cockpit_config(session)}
    return html.Div(id=ids.CK_ROOT, className="cc-wall cc-ck", lang=lang, children=[
        chrome.header(lang, subtitle=t("cockpit.title", lang), page="cockpit"),
        html.Main(className="cc-ck-main", children=[_left(lang), _centre(lang), _right(lang)]),
        dcc.Store(id=ids.CONFIG, data=config),
        dcc.Store(id=ids.CK_DATA),  # cc-80 puts the figures JSON here; the charts follow
        dcc.Store(id=ids.CK_CLICK),  # a chart's click, once cc-80 drilled down
        dcc.Store(id=ids.BOOTED, data=False),
    ])
