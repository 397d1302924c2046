"""The JSON HTTP API (docs/HTTP.md) and the city's GeoJSON, as a Flask blueprint.

Every answer is JSON; a wrong request gets `{"error": …}` with its status, never a trace.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from flask import Blueprint, Flask, Response, g, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from callbacks.errors import error, install_refusals
from dashboard import __version__
from dashboard.city import City
from dashboard.command.dispatch import Desk
from dashboard.command.nearby import nearest
from dashboard.command.plans import PlanLibrary
from dashboard.errors import Refused
from dashboard.models import EVENT_STATUSES, SEVERITIES
from dashboard.ops.health import Health, alive
from dashboard.scope import only, sees
from dashboard.store import Store
from dashboard.video.cameras import for_spot

log = logging.getLogger("cc.api")

GEO_LEVELS = ("boundary", "town", "community", "grid", "microgrid")
NEARBY_RADIUS_M = 3000


def create_api(store: Store, city: City, plans: PlanLibrary | None = None,
               desk: Desk | None = None, memory_warn_ratio: float = 0.85) -> Blueprint:
    """Routes under /api and /geo, reading through `store` (and the plan library and the
    desk for an event's plans, free units nearby and task)."""
    api = Blueprint("api", __name__)

    health_rule = Health(memory_warn_ratio)

    @api.get("/api/health")
    def health() -> tuple[Response, int]:
        now = int(time.time() * 1000)
        body: dict[str, Any] = {"status": "ok", "version": __version__, "time": now}
        try:
            t0 = time.perf_counter()
            state = store.health()
            memory = store.memory()
            body["redis"] = {"ok": True, "latency_ms": round((time.perf_counter() - t0) * 1000, 2),
                             **memory}
        except (redis.RedisError, OSError) as exc:
            body.update(status="degraded", reasons=["redis_down"],
                        redis={"ok": False, "error": str(exc)[:200]})
            return jsonify(body), 503
        hb, relay, standby = state["ingest"], state["relay"], state["standby"]
        last_ts = int(hb.get("last_ts") or 0)
        body["ingest"] = {
            "alive": alive(hb, now),
            "instance": hb.get("instance") or None,
            "rate": float(hb.get("rate") or 0),
            "accepted": int(hb.get("accepted") or 0),
            "rejected": int(hb.get("rejected") or 0),
            "duplicates": int(hb.get("duplicates") or 0),
            "store_errors": int(hb.get("store_errors") or 0),
            "last_message_ts": last_ts or None,
            "last_message_age_s": round((now - last_ts) / 1000, 1) if last_ts else None,
            "reconnects": int(hb.get("reconnects") or 0),
            "last_outage": json.loads(hb["last_outage"]) if hb.get("last_outage") else None,
            "recently_degraded": bool(hb.get("degraded")),
            "failovers": int(hb.get("failovers") or 0),
            "last_failover": json.loads(hb["last_failover"]) if hb.get("last_failover")
            else None,
            "takeovers": int(hb.get("takeovers") or 0),
            "last_takeover": json.loads(hb["last_takeover"]) if hb.get("last_takeover")
            else None,
        }
        body["standby"] = {"alive": alive(standby, now), "ring": int(standby.get("ring") or 0)}
        # every relay together: clients summed, `relays` counted (each beats its own field)
        body["relay"] = {"alive": alive(relay, now), "relays": int(relay.get("relays") or 0),
                         "clients": int(relay.get("clients") or 0)}
        watch = state["watch"]
        body["watch"] = {
            "alive": alive(watch, now),
            "cursor": int(watch.get("cursor") or 0),
            "lag": int(watch.get("lag") or 0),
            "alerts": int(watch.get("alerts") or 0),
            "errors": int(watch.get("errors") or 0),
            "reconnects": int(watch.get("reconnects") or 0),
        }
        body["deadletters"] = state["deadletters"]
        body["seq"] = state["seq"]
        # Without the watch nobody turns feedback into task stages or raises alerts.
        verdict = health_rule.judge(state, now, memory)
        body["status"], body["reasons"] = verdict.status, verdict.reasons
        return jsonify(body), verdict.http_status

    @api.get("/api/events")
    def events() -> Response:
        status = request.args.get("status") or None
        if status is not None and status not in EVENT_STATUSES:
            raise Refused("bad_status", 400, f"status must be one of {', '.join(EVENT_STATUSES)}")
        severity = _int_arg("severity", None, 1, len(SEVERITIES))
        limit = _int_arg("limit", 100, 1, 1000)
        return jsonify({"events": store.events(status=status, severity=severity, limit=limit,
                                               scope=_scope())})

    @api.get("/api/events/<event_id>")
    def event(event_id: str) -> Response:
        found = store.event(event_id)
        scope = _scope()
        # outside the scope answers as unknown: ids of other areas do not leak
        if found is None or not sees(scope, found):
            raise Refused("no_event", 404, f"no event {event_id!r}")
        grid = found.get("grid_id")
        unit = city.unit(grid) if grid else None
        area = [{"code": u.code, "name": u.name, "name_en": u.label("en"), "level": u.level}
                for u in ([*city.parents(grid), unit] if unit else [])]
        nearby: dict[str, list[dict[str, Any]]] = {}
        lon, lat = found["lon"], found["lat"]
        kinds = ("worker", "resource") if desk is None else ()
        for kind in kinds:
            hits = store.nearby(kind, lon, lat, NEARBY_RADIUS_M, 10)
            records = store.records(kind, [h[0] for h in hits])
            nearby[kind + "s"] = [
                {**records[i][0], "distance_m": round(d)} for i, d in hits if i in records
            ]
        # cameras whose view covers the spot first, then the others around, nearest first
        nearby["cameras"] = for_spot(store, lon, lat)
        if desk is not None:
            # free units only, as Unit JSON (ETA, 1-3-5): what the commander can send now
            for kind in ("worker", "resource"):
                nearby[kind + "s"] = nearest(store, desk.settings, lon, lat, kind=kind,
                                             count=10, scope=scope)
        if scope:
            nearby = {name: only(scope, units) for name, units in nearby.items()}
        return jsonify({
            "event": found,
            "area": area,
            "timeline": store.timeline(event_id),
            "plans": [m.to_dict() for m in plans.match(found)] if plans is not None else [],
            "nearby": nearby,
            "task": desk.task_of_event(event_id) if desk is not None else None,
        })

    @api.get("/geo/<level>.geojson")
    def geojson(level: str) -> Response:
        if level not in GEO_LEVELS:
            raise Refused("no_level", 404, f"no geography level {level!r}")
        response = send_file(city.geojson_path(level), mimetype="application/geo+json",
                             max_age=86400, conditional=True)
        return response

    @api.get("/api/<path:rest>")
    def unknown(rest: str) -> Response:
        # Dash answers every other path with the page; an API client wants a JSON 404.
        raise Refused("no_endpoint", 404, f"no API endpoint /api/{rest}")

    return api


def install_error_handlers(server: Flask) -> None:
    """JSON errors for /api and /geo; the pages keep Flask's own."""

    install_refusals(server)

    @server.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if request.path.startswith(("/api/", "/geo/")):
            return error(exc.code or 500, exc.name.lower().replace(" ", "_"),
                         exc.description or exc.name)
        return exc

    @server.errorhandler(Exception)
    def crash(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error on %s", request.path)
        return error(500, "internal", "internal error; see the server log")


def _scope() -> str | None:
    """The signed-in user's scope (None: the whole city); the guard looked the session up."""
    found = g.get("session")
    return found.scope if found is not None else None


def _int_arg(name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Refused("bad_query", 400, f"{name} must be a whole number") from None
    if not lo <= value <= hi:
        raise Refused("bad_query", 400, f"{name} must be between {lo} and {hi}")
    return value
