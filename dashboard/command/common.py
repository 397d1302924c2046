"""What the command loop's modules share: the clock, the retry bound and small helpers for
arguments, JSON and a task's history. Their refusals are dashboard.errors.Refused,
and free-text arguments are checked by dashboard.errors.text_arg."""

from __future__ import annotations

import json
from typing import Any, Final

ATTEMPTS: Final = 6  # re-reads after a revision changed under us (a GPS fix, another desk)
HISTORY_MAX: Final = 200


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
