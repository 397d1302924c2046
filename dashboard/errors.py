"""The one refusal: a request the system will not carry out, for a reason the caller can act on.

Raised by the core (a unit already engaged, a stale revision, a bad argument) and turned into
the API's one JSON error shape by callbacks/errors.py:
`{"error": <for people>, "code": <for programs>, "status": <HTTP status>, …detail}`.
"""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """`code` for programs, `status` the HTTP status, `message` for people, `detail` extra
    fields of the answer (the unit that was lost, the plans recommended …)."""

    def __init__(self, code: str, status: int, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, "status": self.status, **self.detail}


def text_arg(value: Any, name: str, limit: int) -> str:
    """A free-text argument (a note, a reason): None reads as empty; refused if not text or
    longer than `limit`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused("bad_body", 400, f"{name} must be text")
    if len(value) > limit:
        raise Refused("bad_body", 400, f"{name} is longer than {limit} characters")
    return value
