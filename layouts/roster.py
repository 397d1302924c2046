"""The duty roster's line in the header every page shares ("值班: 白班 王晓明 · 带班 陈建国").

Static skeleton: assets/js/cc-83-roster.js fills it from `GET /api/roster` and keeps it
current (every 60 s: a shift changes at a time of day, a roster change shows within a
minute).
"""

from __future__ import annotations

from dash import html

from dashboard.i18n import t
from layouts import ids

DASH = "–"


def line(lang: str) -> html.Div:
    """The header's roster line (its text set as text by the browser)."""
    return html.Div(id=ids.ROSTER, className="cc-roster", title=t("roster.title", lang),
                    children=[html.Span(t("roster.on_duty", lang), className="cc-roster-key"),
                              html.Span(DASH, id=ids.ROSTER_TEXT, className="cc-roster-text")])
