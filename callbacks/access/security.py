"""HTTP hardening of every request and response (issue 13; README, "Production").

- A Content-Security-Policy the pages work under: scripts from the app itself plus the
  inline ones it knows by hash (Dash's renderer, the sign-in page's), never `eval`; the
  relay's websocket on `CC_WS_PORT` of the page's own host (or `CC_WS_PUBLIC_URL`); camera
  streams from `CC_MEDIA_SOURCES`; framing as `CC_FRAME_ANCESTORS` says, X-Frame-Options
  agreeing, but a page the browser loads into a frame of this origin (the rotation,
  /rotate) may be framed by it. Inline styles stay allowed: Dash and Leaflet set `style`
  attributes everywhere.
- `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` on every response.
- A request that may change something (not GET/HEAD/OPTIONS) is JSON or carries
  `X-Requested-With`: an HTML form on another site can send neither (and a script there
  cannot without a CORS preflight we never answer), so it is refused: JSON 415, or 403 when
  it has no body at all.
- A body over `CC_MAX_CONTENT_LENGTH` is a JSON 413.
- Behind `CC_TRUSTED_PROXIES` reverse proxies, the client's address, the scheme, the host
  and the path prefix come from their X-Forwarded-For/-Proto/-Host/-Prefix (werkzeug's
  ProxyFix); with none configured those headers are ignored, as anyone can send them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import dash
from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from callbacks.errors import error
from dashboard.config import Settings
from layouts.plain import LOGIN_SCRIPT

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
XHR_HEADER: Final = "X-Requested-With"
REFERRER_POLICY: Final = "same-origin"
# What a CSP host-source can name: a DNS name or an IPv4 address (not an IPv6 literal).
_HOST_NAME: Final = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_PLACEHOLDER: Final = re.compile(r"\{[^}]*\}")


def script_hash(script: str) -> str:
    """The CSP source that allows exactly this inline script."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def origin(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute URL; None for anything else."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def tile_source(template: str) -> str | None:
    """The CSP source of a tile URL template: `{s}` in the host (Leaflet's subdomains)
    becomes the leftmost wildcard CSP allows; a placeholder elsewhere in the host leaves
    only the scheme."""
    parts = urlsplit(template.strip())
    if not parts.scheme or not parts.netloc:
        return None
    host = parts.netloc.rpartition("@")[2]
    if "{" not in host:
        return f"{parts.scheme}://{host}"
    head, dot, rest = host.partition(".")
    if _PLACEHOLDER.fullmatch(head) and dot and "{" not in rest:
        return f"{parts.scheme}://*.{rest}"
    return f"{parts.scheme}:"


def demo_video_sources(settings: Settings) -> tuple[str, ...]:
    """The origins the demo video server streams from, by the simulator's own rule."""
    from feeds.sim.engine import video_bases  # the one place the demo's stream URLs are made

    found = (origin(base) for base in video_bases(settings))
    return tuple(dict.fromkeys(o for o in found if o))


def media_sources(settings: Settings) -> tuple[str, ...]:
    """Where camera pictures may load from: the setting, else the demo video server."""
    return settings.media_sources or demo_video_sources(settings)


def relay_sources(settings: Settings, host: str) -> tuple[str, ...]:
    """What the page's websocket connects to (assets/js/cc-40-socket.js): the public URL
    when one is set, else `CC_WS_PORT` on the host the page was asked from."""
    if settings.ws_public_url:
        public = origin(settings.ws_public_url)
        return (public,) if public else ()
    name = host.lower()
    if name.startswith("["):
        # an IPv6 literal cannot be named in a CSP: any websocket, rather than none
        return ("ws:", "wss:")
    name = name.rpartition(":")[0] if ":" in name else name
    if not _HOST_NAME.match(name):
        return ()  # a malformed Host: this response's page gets no live data, nobody else's
    return (f"ws://{name}:{settings.ws_port}", f"wss://{name}:{settings.ws_port}")


def frame_options(ancestors: Sequence[str]) -> str | None:
    """X-Frame-Options saying what frame-ancestors says, for browsers that only know it;
    None when it cannot (a list of origins: such browsers then allow framing)."""
    if tuple(ancestors) == ("'none'",):
        return "DENY"
    if tuple(ancestors) == ("'self'",):
        return "SAMEORIGIN"
    return None


class Policy:
    """The Content-Security-Policy: fixed at start-up but for the relay's host."""

    def __init__(self, settings: Settings, script_hashes: Sequence[str]) -> None:
        self.settings = settings
        media = media_sources(settings)
        tiles = tile_source(settings.tile_url) if settings.tile_url else None
        self._head = "; ".join([
            "default-src 'self'",
            "script-src " + " ".join(["'self'", *dict.fromkeys(script_hashes)]),
            # Dash, React and Leaflet write style attributes and <style> elements
            "style-src 'self' 'unsafe-inline'",
            # data: for CSS icons, blob: for pictures made in the page; tiles; cameras
            "img-src " + " ".join(["'self'", "data:", "blob:", *([tiles] if tiles else []),
                                    *media]),
            # hls.js plays through MediaSource (a blob: URL) and runs a blob: worker
            "media-src " + " ".join(["'self'", "blob:", *media]),
            "worker-src 'self' blob:",
            "font-src 'self' data:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ])
        self._frame = "frame-ancestors " + " ".join(settings.frame_ancestors)
        # the rotation (/rotate) shows the app's own pages in frames of its own page: a
        # same-origin frame may have them, whatever CC_FRAME_ANCESTORS says of other sites
        mine = [s for s in settings.frame_ancestors if s != "'none'"]
        self._frame_self = "frame-ancestors " + " ".join(dict.fromkeys(["'self'", *mine]))
        # hls.js fetches playlists and segments: the camera sources, for connect-src too
        self._connect = ("'self'", *media)

    def header(self, host: str, same_origin_frame: bool = False) -> str:
        """The policy for a response to a request for `host` (the relay is on its port);
        `same_origin_frame`: the browser is loading it into a frame of one of our pages."""
        connect = " ".join([*self._connect, *relay_sources(self.settings, host)])
        frame = self._frame_self if same_origin_frame else self._frame
        return f"{self._head}; {frame}; connect-src {connect}"


def same_origin_frame() -> bool:
    """Whether the browser says this request loads a frame for a page of this origin. The
    Sec-Fetch-* headers are set by the browser alone (a page's script cannot forge them);
    a client that forges them is no browser and frames nothing. frame-ancestors 'self' still
    makes the browser check every ancestor."""
    return (request.headers.get("Sec-Fetch-Dest") == "iframe"
            and request.headers.get("Sec-Fetch-Site") == "same-origin")


def install_security(app: dash.Dash, settings: Settings) -> None:
    """Add the checks and headers to `app`'s server. Call first of the request hooks, so a
    refused request costs no session lookup."""
    server: Flask = app.server
    server.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    # callbacks/access/auth.py marks the session cookie Secure on HTTPS requests, and always with
    # this
    server.config["SESSION_COOKIE_SECURE"] = settings.cookie_secure == "true"
    if settings.trusted_proxies > 0:
        hops = settings.trusted_proxies
        server.wsgi_app = ProxyFix(
            server.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
    limit = settings.max_content_length
    frame = frame_options(settings.frame_ancestors)
    policy: list[Policy] = []  # made on the first response, once every callback is known

    @server.before_request
    def refuse_forms_and_oversize() -> Any:
        if request.method in SAFE_METHODS:
            return None
        length = request.content_length
        if length is not None and length > limit:
            return error(413, "too_large", f"the body is {length} bytes; at most {limit}")
        if request.is_json or request.headers.get(XHR_HEADER):
            return None
        if request.mimetype or length:
            return error(415, "json_required",
                           "send JSON (Content-Type: application/json)")
        return error(403, "xhr_required",
                       f"a request without a body needs the {XHR_HEADER} header")

    @server.after_request
    def headers(response: Response) -> Response:
        if not policy:
            # Dash's inline scripts (the renderer, inline clientside callbacks) by hash
            policy.append(Policy(settings, [*app.csp_hashes(), script_hash(LOGIN_SCRIPT)]))
        framed = same_origin_frame()
        response.headers.setdefault("Content-Security-Policy",
                                    policy[0].header(request.host, framed))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = REFERRER_POLICY
        if framed:
            response.headers["X-Frame-Options"] = "SAMEORIGIN"
        elif frame:
            response.headers["X-Frame-Options"] = frame
        else:
            response.headers.pop("X-Frame-Options", None)
        return response
