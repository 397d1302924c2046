"""Which page the browser is on: one layout for every address, and a callback that renders
the page for it.

Dash serves the same index for every path, then asks `/_dash-layout` for the tree: an XHR
whose own URL says nothing of the page's address (only a Referer would, and a browser may
withhold that). So the layout is a `dcc.Location` and an empty slot; as the Location mounts
it reports the address, and `render` (a server callback, sent with the session cookie like
any request) fills the slot with that page in the address's `?lang=`. `cfg.page` in the
browser config tells the JS which page it booted on. Only the path triggers it: the cockpit
rewrites its query (`?scope=`) with history.pushState, and going back must not render it
anew. A new page is one more entry in `PAGES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final
from urllib.parse import parse_qs

import dash
import flask
from dash import Input, Output, State, dcc, get_app, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from dashboard.config import Settings
from layouts import chrome, cockpit, duty, handover, ids, rotate, video, wall

# path under the app's prefix (no slashes) → (page name for cfg.page, layout for a language)
PAGES: Final[dict[str, tuple[str, Callable[[str], Component]]]] = {
    "": ("wall", wall.serve_layout),
    "video": ("video", video.serve_layout),
    "cockpit": ("cockpit", cockpit.serve_layout),
    "duty/handover": ("handover", handover.serve_layout),
    "duty": ("duty", duty.serve_layout),
    "rotate": ("rotate", rotate.serve_layout),
}
# paths whose first segment names the page and the rest is its argument: /rotate/<name>
PREFIXED: Final = ("rotate",)
DEFAULT: Final = ""  # an unknown path shows the wall, as before there were pages


def configure(settings: Settings) -> None:
    """Hand the settings to every page module; called once before the first request."""
    chrome.configure(settings)
    wall.configure(settings)
    video.configure(settings)
    cockpit.configure(settings)
    handover.configure(settings)
    duty.configure(settings)
    rotate.configure(settings)


def page_key(path: str, prefix: str) -> str:
    """The `PAGES` key of `path` under the app's `prefix`; the wall's for any other path."""
    prefix = prefix.rstrip("/")
    if prefix and path.startswith(prefix):
        path = path[len(prefix):]
    name = path.strip("/")
    head = name.split("/", 1)[0]
    if head in PREFIXED:
        return head
    return name if name in PAGES else DEFAULT


def request_page() -> str:
    """The `PAGES` key of a page request's own path (GET /cockpit: its 403 gate)."""
    if not flask.has_request_context():
        return DEFAULT
    return page_key(flask.request.path, get_app().config.routes_pathname_prefix or "/")


def layout() -> Component:
    """`app.layout`: the address, and the slot its page is rendered into."""
    # every click on a page bubbles to the slot: it need not count them (as Dash Pages)
    return html.Div([dcc.Location(id=ids.URL), html.Div(id=ids.PAGE, disable_n_clicks=True)])


def render(pathname: str | None, search: str | None) -> Component:
    """The page at the browser's address (its public path, so under the requests prefix a
    reverse proxy may add), in the language its `?lang=` asks for."""
    if pathname is None:
        raise PreventUpdate  # the Location has not reported yet
    key = page_key(pathname, get_app().config.requests_pathname_prefix or "/")
    raw = parse_qs((search or "").lstrip("?")).get("lang", [None])[0]
    chrome.set_address(pathname, search or "")  # for a page that reads its own (/rotate)
    return PAGES[key][1](chrome.page_lang(raw))


def register(app: dash.Dash) -> None:
    """The router: the page follows the path (not the query) of the address."""
    app.callback(Output(ids.PAGE, "children"), Input(ids.URL, "pathname"),
                 State(ids.URL, "search"), prevent_initial_call=True)(render)
