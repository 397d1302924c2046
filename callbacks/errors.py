"""The API's one error shape and its one body reader.

Every refusal answers `{"error": <for people>, "code": <for programs>, "status": <HTTP
status>, …detail}`. A route may raise dashboard.errors.Refused anywhere (the handler
installed here answers it) or return `error(...)` itself; it never builds the JSON by hand.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from dashboard.errors import Refused


def error(status: int, code: str, message: str, **detail: Any) -> tuple[Response, int]:
    """The JSON answer of a refusal."""
    return jsonify({"error": message, "code": code, "status": status, **detail}), status


def refusal(exc: Refused) -> tuple[Response, int]:
    return jsonify(exc.to_dict()), exc.status


def json_body(optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; anything else is refused (400 `bad_json`). With `optional`,
    no body at all reads as an empty object."""
    if optional and not request.get_data():
        return {}
    found = request.get_json(silent=True)
    if not isinstance(found, dict):
        raise Refused("bad_json", 400, "send a JSON object (Content-Type: application/json)")
    return found


def install_refusals(server: Flask) -> None:
    """Answer a Refused raised by any route with the one shape."""
    server.register_error_handler(Refused, refusal)
