"""The video wall page `/video`: the shared header, a tool bar, 1/4/9/16 tiles, and (for
editors) the camera list and the saved layouts.

Static skeleton only: assets/js/cc-70-videowall.js makes the tiles, the list rows and the
two text inputs (plain DOM values, as in layouts/command.py), and fills everything from the
websocket's store and /api/video. A session that may not change the wall (display, leader)
gets no assign, save or clear controls at all, not hidden ones.
"""

from __future__ import annotations

from typing import Any, Final

from dash import dcc, html
from dash.development.base_component import Component

from dashboard.city import Unit, load_city
from dashboard.config import Settings
from dashboard.i18n import t
from dashboard.video import wall as video
from layouts import chrome, ids, widgets

EDITORS: Final = frozenset({"commander", "duty_officer"})
# Camera rows listed at most (the store may hold tens of thousands: list the first matches).
LIST_MAX: Final = 80
# The list follows camera updates at most this often.
LIST_REFRESH_MS: Final = 1000
# The followed event's cameras are read again this often (cameras come and go).
RANKING_REFRESH_MS: Final = 60_000

# Town and community names by code, for the tiles' captions (the tour goes by area).
_areas: dict[str, Unit] = {}
_tour_s: list[int] = [20]


def configure(settings: Settings) -> None:
    """The city's area names and the tour's interval; header and config: layouts.chrome."""
    city = load_city(settings.city)
    _areas.clear()
    _areas.update({u.code: u for u in (*city.towns, *city.communities)})
    _tour_s[0] = settings.video_tour_s


def can_edit() -> bool:
    session = chrome.session_info()
    return bool(session and session.get("role") in EDITORS)


def areas_for(scope: str | None, lang: str = "zh-CN") -> dict[str, str]:
    """The area names a session may need, in the page's language: its scope's towns and
    communities and the town a community scope lies in (names of places are not records,
    but a scoped user's page has no use for the rest)."""
    return {code: unit.label(lang) for code, unit in _areas.items()
            if not scope or code.startswith(scope) or scope.startswith(code)}


def video_config(editor: bool, lang: str = "zh-CN") -> dict[str, Any]:
    session = chrome.session_info() or {}
    return {"grids": list(video.GRIDS), "tilesMax": video.TILES_MAX,
            "nameMax": video.NAME_MAX, "listMax": LIST_MAX, "listRefreshMs": LIST_REFRESH_MS,
            "canEdit": editor, "tourS": _tour_s[0], "rankingRefreshMs": RANKING_REFRESH_MS,
            "areas": areas_for(session.get("scope"), lang)}


def _toolbar(lang: str, editor: bool) -> html.Div:
    left: list[Component] = [
        html.Div(id=ids.VW_EVENT, className="cc-vw-event", **{"data-state": "none"},
                 children=[html.Span(t("vw.event_none", lang), className="cc-vw-event-text")]),
    ]
    right: list[Component] = []
    if editor:
        right.append(html.Div(id=ids.VW_GRIDS, className="cc-vw-grids", children=[
            html.Button(t("vw.grid_n", lang, n=n), className="cc-vw-btn cc-vw-grid-btn",
                        **{"data-vw": "grid", "data-grid": str(n)})
            for n in video.GRIDS
        ]))
        right.append(html.Button(t("vw.follow", lang), id=ids.VW_FOLLOW,
                                 className="cc-vw-btn cc-vw-follow", title=t("vw.follow_title",
                                                                             lang),
                                 **{"data-vw": "follow", "aria-pressed": "true"}))
        right.append(html.Button(t("vw.clear_all", lang), id=ids.VW_CLEAR_ALL,
                                 className="cc-vw-btn", **{"data-vw": "clear-all"}))
    else:
        right.append(html.Span(t("vw.follow", lang), id=ids.VW_FOLLOW,
                               className="cc-vw-follow is-readonly", title=t("vw.follow_title",
                                                                             lang),
                               **{"aria-pressed": "true"}))
        right.append(html.Span(t("vw.readonly", lang), className="cc-vw-readonly"))
    right.append(html.A(t("vw.back", lang), id=ids.VW_BACK, className="cc-vw-btn cc-vw-back",
                        href="/" + ("?lang=en" if lang == "en" else "")))
    return html.Div(className="cc-vw-toolbar", children=[
        html.Div(left, className="cc-vw-toolbar-left"),
        html.Div(id=ids.VW_MSG, className="cc-vw-msg", role="status",
                 **{"data-level": "info"}),
        html.Div(right, className="cc-vw-toolbar-right"),
    ])


def _side(lang: str) -> html.Aside:
    cameras = widgets.panel(t("vw.cameras", lang), [
        html.Div(id=ids.VW_SEARCH_BOX, className="cc-vw-search-box"),
        html.Ol(id=ids.VW_CAMS, className="cc-vw-cams"),
    ], extra=html.Span("", id=ids.VW_CAM_COUNT, className="cc-panel-extra"),
        class_name="cc-vw-panel-cams")
    layouts = widgets.panel(t("vw.layouts", lang), [
        html.Div(id=ids.VW_LAYOUT_FORM, className="cc-vw-layout-form", children=[
            html.Button(t("vw.save", lang), id=ids.VW_LAYOUT_SAVE, className="cc-vw-btn",
                        **{"data-vw": "save"}),
        ]),
        html.Ul(id=ids.VW_LAYOUTS, className="cc-vw-layouts"),
    ], class_name="cc-vw-panel-layouts")
    return html.Aside([cameras, layouts], id=ids.VW_SIDE, className="cc-col cc-vw-side")


def serve_layout(lang: str) -> Component:
    """The page for one request in `lang`, the controls from the session's role."""
    editor = can_edit()
    stage = html.Section(id=ids.VW_STAGE, className="cc-vw-stage", children=[
        _toolbar(lang, editor),
        html.Div(id=ids.VW_GRID, className="cc-vw-grid", **{"data-grid": str(video.DEFAULT_GRID)}),
    ])
    main: list[Component] = [_side(lang), stage] if editor else [stage]
    config = {**chrome.browser_config(lang, page="video"), "video": video_config(editor, lang)}
    return html.Div(id=ids.VW_ROOT, className="cc-wall cc-vw", lang=lang,
                    **{"data-edit": "1" if editor else "0"}, children=[
        chrome.header(lang, subtitle=t("vw.title", lang), page="video"),
        html.Main(className="cc-vw-main", children=main),
        dcc.Store(id=ids.CONFIG, data=config),
        dcc.Store(id=ids.BOOTED, data=False),
    ])
