"""The shift handover page `/duty/handover` (交接班): this shift's report, drafted from the
system's state, edited and signed by the outgoing officer, accepted by the incoming one, and
the past reports with their printable form.

Static skeleton only: assets/js/cc-84-handover.js fills it from `/api/handover`
(docs/DUTY.md). Duty officers and commanders only; others get a refusal, as on the cockpit.
"""

from __future__ import annotations

from typing import Final

from dash import dcc, html
from dash.development.base_component import Component

from dashboard.config import Settings
from dashboard.duty.handover import SECTIONS
from dashboard.i18n import t
from layouts import chrome, ids, widgets

ROLES: Final = frozenset({"duty_officer", "commander"})
POLL_MS: Final = 30_000  # the incoming officer sees the signature without reloading
HISTORY: Final = 30  # past reports listed
DUTY_PATH: Final = "/duty"

_settings: dict[str, Settings] = {}


def configure(settings: Settings) -> None:
    _settings["s"] = settings


def _lang_query(lang: str) -> str:
    return "?lang=en" if lang == "en" else ""


def _forbidden(lang: str) -> Component:
    return html.Div(id=ids.HANDOVER_ROOT, className="cc-wall cc-ho", lang=lang, children=[
        chrome.header(lang, subtitle=t("handover.title", lang)),
        html.Main(className="cc-ho-forbidden", children=[
            html.P(t("handover.forbidden", lang)),
            html.A(t("cockpit.to_wall", lang), href="/" + _lang_query(lang),
                   className="cc-vw-btn"),
        ]),
        dcc.Store(id=ids.CONFIG, data=chrome.browser_config(lang, page="handover-refused")),
        dcc.Store(id=ids.BOOTED, data=False),
    ])


def serve_layout(lang: str) -> Component:
    """The page for one request, in `lang`."""
    session = chrome.session_info()
    if not session or session.get("role") not in ROLES:
        return _forbidden(lang)
    toolbar = html.Div(id=ids.HO_TOOLBAR, className="cc-ho-toolbar", children=[
        html.A(t("handover.to_duty", lang), id=ids.HO_BACK, className="cc-vw-btn cc-ho-back",
               href=DUTY_PATH + _lang_query(lang)),
        html.Div(id=ids.HO_MSG, className="cc-ho-msg", role="status"),
    ])
    report = widgets.panel(
        t("handover.current", lang),
        [html.Div(id=ids.HO_META, className="cc-ho-meta"),
         html.Div(id=ids.HO_REPORT, className="cc-ho-report")],
        class_name="cc-ho-panel cc-ho-p-report")
    side = html.Aside(className="cc-col cc-ho-side", children=[
        widgets.panel(t("handover.title", lang), html.Div(id=ids.HO_ACTIONS,
                                                          className="cc-ho-actions"),
                      class_name="cc-ho-panel cc-ho-p-actions"),
        widgets.panel(t("handover.history", lang), html.Ol(id=ids.HO_HISTORY,
                                                           className="cc-ho-history"),
                      class_name="cc-ho-panel cc-ho-p-history"),
    ])
    config = {**chrome.browser_config(lang, page="handover"),
              "handover": {"pollMs": POLL_MS, "history": HISTORY, "sections": list(SECTIONS),
                           "print": "/duty/handover/{id}/print" + _lang_query(lang)}}
    return html.Div(id=ids.HANDOVER_ROOT, className="cc-wall cc-ho", lang=lang, children=[
        chrome.header(lang, subtitle=t("handover.title", lang)),
        toolbar,
        html.Main(className="cc-ho-main", children=[report, side]),
        dcc.Store(id=ids.CONFIG, data=config),
        dcc.Store(id=ids.BOOTED, data=False),
    ])
