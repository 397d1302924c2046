"""What the command loop's modules share: the clock, the retry bound and small helpers for
arguments, JSON and a task's history. Their refusals are dashboard.errors.Refused."""

from __future__ import annotations

import json
from typing import Any, Final

from dashboard.errors import Refused

ATTEMPTS: Final = 6  # re-reads after a revision changed under us (a GPS fix, another desk)
HISTORY_MAX: Final = 200


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
