"""`GET /metrics` for Prometheus, and the request timing behind its latency histogram
(dashboard/ops/metrics.py; docs/OPERATIONS.md, "Metrics"; who may read it: docs/SECURITY.md).

No session: Prometheus has none. With CC_METRICS_TOKEN set, the request must carry
`Authorization: Bearer <token>`; without it, only a client on this host (loopback) is
answered, and a request that came through a proxy we were not told to trust is not one.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from typing import Any

from flask import Flask, Response, g, request

from callbacks.errors import error
from dashboard.config import Settings
from dashboard.ops.metrics import CONTENT_TYPE, RequestRecorder, collect, render
from dashboard.store import Store

PATH = "/metrics"
FORWARDED = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def refusal(settings: Settings) -> tuple[Response, int] | None:
    """Why this request may not read the figures, as the API's JSON error; None: it may."""
    token = settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode()):
            return None
        response, status = error(401, "unauthenticated",
                                 "send Authorization: Bearer <CC_METRICS_TOKEN>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response, status
    # A proxy on this host makes every client look local: with no trusted proxy (ProxyFix
    # off), a forwarding header means the request came through one.
    proxied = not settings.trusted_proxies and any(h in request.headers for h in FORWARDED)
    if loopback(request.remote_addr) and not proxied:
        return None
    return error(403, "forbidden",
                 "metrics are served to this host only; set CC_METRICS_TOKEN to scrape "
                 "from elsewhere")


def install_metrics(server: Flask, store: Store, settings: Settings) -> None:
    """Time every request of `server` into the shared histogram, and serve `/metrics`."""
    recorder = RequestRecorder(store)

    def started() -> None:
        g.cc_started = time.perf_counter()

    def finished(response: Response) -> Response:
        t0 = g.pop("cc_started", None)
        if t0 is None:
            return response
        seconds = time.perf_counter() - t0
        # Flask's rule, not the path: ids in paths would make a series per event
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method, status = request.method, response.status_code
        # written once the response is out: the client never waits for the figures
        response.call_on_close(lambda: recorder.record(method, rule, status, seconds))
        return response

    # First before-request hook and last after-request hook (Flask runs those in reverse):
    # the time covers the guards, the route and every header the other hooks add.
    server.before_request_funcs.setdefault(None, []).insert(0, started)
    server.after_request_funcs.setdefault(None, []).insert(0, finished)

    @server.get(PATH)
    def metrics() -> Any:
        refused = refusal(settings)
        if refused is not None:
            return refused
        body = render(collect(store))
        return Response(body, status=200, headers={"Content-Type": CONTENT_TYPE,
                                                   "Cache-Control": "no-store"})
