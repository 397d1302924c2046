"""Page rotation over HTTP (docs/ROTATION.md): a spec or a saved rotation resolved for the
signed-in viewer, the saved rotations, and the gate of the `/rotate` pages.

Every read resolves the spec against the session's role and scope here, on the server
(dashboard/rotation/spec.py): a town's kiosk cannot be handed the city's cockpit by a
crafted address or by a rotation a city-wide commander saved. Saving and deleting need a
commander and leave one audit entry per attempt (`rotation.save`, `rotation.delete`).
"""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, Flask, Response, g, jsonify, request

from callbacks.access.auth import current_session, require
from callbacks.access.mutation import Done, mutation
from callbacks.errors import json_body
from dashboard.city import City
from dashboard.errors import Refused
from dashboard.i18n import normalise_lang
from dashboard.rotation import spec as rot
from dashboard.rotation.saved import Rotations, check_name
from layouts import plain
from layouts.chrome import request_lang

SAVERS: Final = ("commander",)
PAGE: Final = "/rotate"


def plan(entries: list[rot.Entry], city: City) -> dict[str, Any]:
    """The answer for one viewer: the normalised spec, the slides, one cycle's length."""
    session = g.session
    slides = rot.resolve(entries, city, session.role, session.scope)
    return {"spec": rot.normalise(entries), "slides": [s.to_dict() for s in slides],
            "cycle_s": sum(s.seconds for s in slides)}


def _spec_of(saved: dict[str, Any]) -> list[rot.Entry]:
    return rot.parse(saved["spec"])


def create_rotation_api(rotations: Rotations, city: City) -> Blueprint:
    """`GET /api/rotation?p=&s=`, `GET /api/rotations[/<name>]`, `PUT`/`DELETE
    /api/rotations/<name>`."""
    api = Blueprint("rotation", __name__)

    def saved(name: str) -> dict[str, Any]:
        found = rotations.get(check_name(name))
        if found is None:
            raise Refused("no_rotation", 404, f"no saved rotation {name[:64]!r}")
        return found

    @api.get("/api/rotation")
    @require()
    def resolve_spec() -> Any:
        entries = rot.parse(request.args.get("p"), rot.seconds_arg(request.args.get("s")))
        return jsonify(plan(entries, city))

    @api.get("/api/rotations")
    @require()
    def list_rotations() -> Any:
        return jsonify({"rotations": rotations.all(),
                        "pages": list(rot.PAGES), "min_s": rot.MIN_S, "max_s": rot.MAX_S})

    @api.get("/api/rotations/<path:name>")
    @require()
    def get_rotation(name: str) -> Any:
        found = saved(name)
        return jsonify({**found, **plan(_spec_of(found), city)})

    @api.put("/api/rotations/<path:name>")
    @mutation("rotation.save", *SAVERS, target="name")
    def save_rotation(name: str) -> Done:
        body = json_body()
        unknown = set(body) - {"spec", "s"}
        if unknown:
            raise Refused("bad_body", 400, f"unknown field(s): {', '.join(sorted(unknown))}")
        entries = rot.parse(body.get("spec"), rot.seconds_arg(body.get("s")))
        resolved = plan(entries, city)  # the saver may open every page of it themselves
        stored = rotations.save(name, resolved["spec"], g.session.user)
        return Done({**stored, **resolved}, detail={"spec": resolved["spec"][:200]})

    @api.delete("/api/rotations/<path:name>")
    @mutation("rotation.delete", *SAVERS, target="name")
    def delete_rotation(name: str) -> Done:
        return Done({"deleted": rotations.delete(name)})

    return api


def install_rotation_gate(server: Flask, rotations: Rotations, city: City) -> None:
    """`/rotate?p=…` and `/rotate/<name>` answer a plain error page with the right status
    (400, 403, 404) when the rotation cannot be shown to this viewer, instead of a player
    that would only fail in the browser. Call after `install_auth` (sign-in comes first)."""

    @server.before_request
    def rotation_gate() -> Any:
        path = request.path
        if path != PAGE and not path.startswith(PAGE + "/"):
            return None
        session = current_session()
        if session is None:
            return None  # the auth guard sends it to /login
        g.session = session
        name = path[len(PAGE) + 1:] if path.startswith(PAGE + "/") else ""
        try:
            if name:
                found = rotations.get(check_name(name))
                if found is None:
                    raise Refused("no_rotation", 404, "no such rotation")
                plan(_spec_of(found), city)
            elif request.args.get("p") is not None:
                plan(rot.parse(request.args.get("p"), rot.seconds_arg(request.args.get("s"))),
                     city)
        except Refused as exc:
            return error_page(exc)
        return None


def error_page(exc: Refused) -> tuple[Response, int]:
    """A plain dark page (no Dash, no script) saying what is wrong with the rotation."""
    lang = normalise_lang(request_lang())
    entry = exc.detail.get("entry")
    body = plain.render("rotate_error.html", lang=lang, status=exc.status, code=exc.code,
                        entry=entry if isinstance(entry, str) else "")
    return Response(body, mimetype="text/html"), exc.status
