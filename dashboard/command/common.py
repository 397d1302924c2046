"""What the duty desk's modules share: the refusal they raise, the clock, the retry bound and
small helpers for arguments, JSON and a task's history."""

from __future__ import annotations

import json
import time
from typing import Any, Final

ATTEMPTS: Final = 6  # re-reads after a revision changed under us (a GPS fix, another desk)
HISTORY_MAX: Final = 200


def now_ms() -> int:
    return int(time.time() * 1000)


class DispatchError(Exception):
    """A refused desk action: `code` for machines, `status` the HTTP status, `detail` extra."""

    def __init__(self, code: str, status: int, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, **self.detail}


def text_arg(value: Any, name: str, limit: int) -> str:
    """A free-text argument (a note, a reason): None reads as empty; refused if not text or
    longer than `limit`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DispatchError("bad_body", 400, f"{name} must be text")
    if len(value) > limit:
        raise DispatchError("bad_body", 400, f"{name} is longer than {limit} characters")
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def as_str(value: Any) -> str:
    """A Redis reply as text (the client may hand back bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def history(task: dict[str, Any], now: int, stage: str, by: str, note: str,
            **extra: Any) -> list[dict[str, Any]]:
    """The task's history with one entry more, bounded to the last HISTORY_MAX."""
    entry = {"ts": now, "stage": stage, "by": by, "note": note}
    entry.update({k: v for k, v in extra.items() if v is not None})
    return [*task.get("history", []), entry][-HISTORY_MAX:]
