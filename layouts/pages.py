"""Which page a request is for: the app's one layout function routes by path.

Dash serves the same index for every path and then asks `/_dash-layout` for the tree; that
XHR's own path says nothing, so (as with `?lang=`) the page's path comes from its Referer.
`cfg.page` in the browser config tells the JS which page it booted on. A later page (the
cockpit, the duty desk) is one more entry in `PAGES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

import flask
from dash import get_app
from dash.development.base_component import Component

from dashboard.config import Settings
from layouts import cockpit, handover, video, wall

# path under the app's prefix (no slashes) → (page name for cfg.page, layout function)
PAGES: Final[dict[str, tuple[str, Callable[[], Component]]]] = {
    "": ("wall", wall.serve_layout),
    "video": ("video", video.serve_layout),
    "cockpit": ("cockpit", cockpit.serve_layout),
    "duty/handover": ("handover", handover.serve_layout),
}
DEFAULT: Final = ""  # an unknown path shows the wall, as before there were pages


def configure(settings: Settings) -> None:
    """Hand the settings to every page module; called once before the first request."""
    wall.configure(settings)
    video.configure(settings)
    cockpit.configure(settings)
    handover.configure(settings)


def _strip(path: str, prefix: str) -> str:
    prefix = prefix.rstrip("/")
    if prefix and path.startswith(prefix):
        path = path[len(prefix):]
    return path.strip("/")


def request_page() -> str:
    """The `PAGES` key of the page this request is for (page load or layout XHR)."""
    if not flask.has_request_context():  # e.g. layout validation at start-up
        return DEFAULT
    req = flask.request
    config = get_app().config
    if req.path.rstrip("/").endswith("/_dash-layout"):
        # the browser's address, so the public prefix (a reverse proxy may add one)
        path = urlsplit(req.referrer).path if req.referrer else "/"
        prefix = config.requests_pathname_prefix or "/"
    else:
        path, prefix = req.path, config.routes_pathname_prefix or "/"
    name = _strip(path, prefix)
    return name if name in PAGES else DEFAULT


def page_name() -> str:
    """`wall`, `video`, …: what `cfg.page` says on this request's page."""
    return PAGES[request_page()][0]


def serve_layout() -> Component:
    """`app.layout`: the layout of the page the request is for."""
    return PAGES[request_page()][1]()
