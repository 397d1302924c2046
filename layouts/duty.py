"""The duty desk `/duty` (值班台): the alarms nobody has acknowledged yet, loudly.

Static skeleton only: assets/js/cc-82-duty.js fetches `GET /api/duty/queue`, follows the
websocket's `alert` frames, draws the rows, plays the alarm by severity and posts the
actions (docs/DUTY.md, "The duty desk"). Duty officers and commanders only.
"""

from __future__ import annotations

from typing import Final

from dash import dcc, html
from dash.development.base_component import Component

from dashboard.config import Settings
from dashboard.duty.desk import REASON_MAX, SILENCE_MINUTES
from dashboard.i18n import t
from layouts import chrome, ids, widgets

ROLES: Final = frozenset({"duty_officer", "commander"})
# The queue is read again this often as well as on every alert frame: it also brings a
# silence set on another desk, and corrects anything a missed frame left behind.
POLL_MS: Final = 30_000
# Seconds between two plays of the alarm: level I and SOS, level II, the rest.
SOUND_EVERY_S: Final = {"1": 2, "2": 4, "other": 8}
QUEUE_ROWS: Final = 7  # rows on screen at 1920×1080; the rest are counted
SIDE_ROWS: Final = 5
HANDOVER_PATH: Final = "/duty/handover"


def _forbidden(lang: str) -> Component:
    return html.Div(id=ids.DUTY_ROOT, className="cc-wall cc-duty", lang=lang, children=[
        chrome.header(lang, subtitle=t("duty.title", lang)),
        html.Main(className="cc-duty-forbidden", children=[
            html.P(t("duty.forbidden", lang)),
            html.A(t("duty.to_wall", lang), href="/", className="cc-vw-btn"),
        ]),
    ])


def serve_layout(lang: str) -> Component:
    """The page for one request, in `lang`."""
    session = chrome.session_info()
    if not session or session.get("role") not in ROLES:
        return _forbidden(lang)
    suffix = "?lang=en" if lang == "en" else ""
    toolbar = html.Div(id=ids.DUTY_TOOLBAR, className="cc-duty-toolbar", children=[
        html.Button(t("duty.enable_sound", lang), id=ids.DUTY_SOUND,
                    className="cc-duty-sound", hidden=True, type="button"),
        html.Div(t("duty.quiet", lang), id=ids.DUTY_STATE, className="cc-duty-state",
                 role="status"),
        html.Div(id=ids.DUTY_MSG, className="cc-duty-msg", role="status"),
        html.A(t("duty.handover", lang), className="cc-vw-btn cc-duty-handover",
               href=HANDOVER_PATH + suffix),
        html.A(t("duty.to_wall", lang), className="cc-vw-btn", href="/" + suffix),
    ])
    queue = widgets.panel(
        t("duty.queue", lang),
        [html.Ol(id=ids.DUTY_QUEUE, className="cc-duty-list cc-duty-queue")],
        extra=html.Span("", id=ids.DUTY_COUNT, className="cc-panel-extra"),
        class_name="cc-duty-p-queue",
    )
    side = html.Aside(className="cc-col cc-duty-side", children=[
        widgets.panel(t("duty.handed", lang),
                      html.Ol(id=ids.DUTY_HANDED, className="cc-duty-list cc-duty-small"),
                      class_name="cc-duty-p-handed"),
        widgets.panel(t("duty.recent", lang),
                      html.Ol(id=ids.DUTY_RECENT, className="cc-duty-list cc-duty-small"),
                      class_name="cc-duty-p-recent"),
    ])
    config = {**chrome.browser_config(lang, page="duty"),
              "duty": {"pollMs": POLL_MS, "soundEveryS": SOUND_EVERY_S,
                       "minutes": list(SILENCE_MINUTES), "reasonMax": REASON_MAX,
                       "rows": QUEUE_ROWS, "sideRows": SIDE_ROWS}}
    return html.Div(
        id=ids.DUTY_ROOT, className="cc-wall cc-duty", lang=lang,
        **{"data-sounding": "0", "data-beeps": "0", "data-audio": "none"},
        children=[
            chrome.header(lang, subtitle=t("duty.title", lang)),
            toolbar,
            html.Main(className="cc-duty-main", children=[queue, side]),
            html.Div(id=ids.DUTY_NOTE, className="cc-duty-note", hidden=True),
            dcc.Store(id=ids.CONFIG, data=config),
            dcc.Store(id=ids.BOOTED, data=False),
        ])


def configure(settings: Settings) -> None:
    """Nothing to keep yet (the header reads the wall's settings); here for PAGES."""
    del settings
