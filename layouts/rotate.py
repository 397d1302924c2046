"""The page rotation `/rotate` (docs/ROTATION.md): a player for an unattended wall, or the
chooser of saved rotations.

`/rotate?p=SPEC[&s=N]` and `/rotate/<name>` are the player: one frame per page (the pages
themselves, each a whole document of its own) under a corner indicator with a pause button;
callbacks/rotation.py has already refused a spec this viewer may not see. `/rotate` alone is
the chooser. Static skeleton only: assets/js/cc-90-rotate.js reads the slides from
`GET /api/rotation` or `/api/rotations/<name>`, swaps the frames and holds the wall on an
urgent event; the chooser's rows and inputs are made there too.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qs, unquote

from dash import dcc, html
from dash.development.base_component import Component

from dashboard.config import Settings
from dashboard.i18n import t
from dashboard.rotation import spec as rot
from layouts import chrome, ids, widgets

SAVERS: Final = frozenset({"commander"})
PAUSE_MAX_S: Final = 600  # a pause by someone walking by ends by itself: nobody may be back
READY_TIMEOUT_MS: Final = 10_000  # a page that never says it is ready is shown anyway
EXAMPLE: Final = "wall:60,cockpit:30,cockpit@towns:10"


def configure(settings: Settings) -> None:
    """Nothing of its own: the header and config come from layouts.chrome."""
    del settings


def _what(path: str, search: str) -> dict[str, Any] | None:
    """What the address asks the player for, or None for the chooser."""
    name = path.rstrip("/").partition("/rotate/")[2]
    query = parse_qs(search.lstrip("?"))
    if name:
        return {"name": unquote(name)}
    if "p" in query:
        return {"spec": query["p"][0], "s": (query.get("s") or [""])[0]}
    return None


def _player(lang: str, what: dict[str, Any]) -> Component:
    config = {**chrome.browser_config(lang, page="rotate"),
              "rotate": {"mode": "play", **what, "pauseMaxS": PAUSE_MAX_S,
                         "readyTimeoutMs": READY_TIMEOUT_MS}}
    return html.Div(id=ids.ROT_ROOT, className="cc-rot", lang=lang,
                    **{"data-mode": "play", "data-state": "loading"}, children=[
        html.Div(id=ids.ROT_STAGE, className="cc-rot-stage"),
        html.Div(id=ids.ROT_BAR, className="cc-rot-bar", role="status", children=[
            html.Div(className="cc-rot-lines", children=[
                html.Div(t("rot.loading", lang), id=ids.ROT_WHAT, className="cc-rot-what"),
                html.Div("", id=ids.ROT_NEXT, className="cc-rot-next"),
            ]),
            html.Button(t("rot.pause", lang), id=ids.ROT_PAUSE, className="cc-rot-pause",
                        type="button", disabled=True),
        ]),
        html.Div(id=ids.ROT_MSG, className="cc-rot-msg", hidden=True),
        dcc.Store(id=ids.CONFIG, data=config),
        dcc.Store(id=ids.BOOTED, data=False),
    ])


def _chooser(lang: str) -> Component:
    session = chrome.session_info() or {}
    saver = session.get("role") in SAVERS
    config = {**chrome.browser_config(lang, page="rotate"),
              "rotate": {"mode": "choose", "canSave": saver, "example": EXAMPLE,
                         "nameMax": rot.NAME_MAX, "minS": rot.MIN_S, "maxS": rot.MAX_S,
                         "defaultS": rot.DEFAULT_S, "pages": list(rot.PAGES)}}
    saved = widgets.panel(t("rot.saved", lang), html.Ul(id=ids.ROT_LIST, className="cc-rot-list"),
                          class_name="cc-rot-p-saved")
    form = widgets.panel(t("rot.new", lang), [
        html.Div(id=ids.ROT_FORM, className="cc-rot-form"),
        html.Div(id=ids.ROT_FORM_MSG, className="cc-rot-form-msg", role="status"),
        html.Div(className="cc-rot-help", children=[
            html.P(t("rot.help_syntax", lang)),
            html.P(t("rot.help_pages", lang)),
            html.P(t("rot.help_kiosk", lang)),
        ]),
    ], class_name="cc-rot-p-form")
    return html.Div(id=ids.ROT_ROOT, className="cc-wall cc-rot-choose", lang=lang,
                    **{"data-mode": "choose", "data-edit": "1" if saver else "0"}, children=[
        chrome.header(lang, subtitle=t("rot.title", lang), page="rotate"),
        html.Main(className="cc-rot-main", children=[saved, form]),
        dcc.Store(id=ids.CONFIG, data=config),
        dcc.Store(id=ids.BOOTED, data=False),
    ])


def serve_layout(lang: str) -> Component:
    """The player or the chooser, from the address the router renders (layouts/pages.py)."""
    what = _what(*chrome.address())
    return _player(lang, what) if what is not None else _chooser(lang)
