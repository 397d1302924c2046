"""The audit log: one entry per mutation and per log-in attempt, in the `Paudit` stream.

Capped (MAXLEN ~) so it never grows with uptime; entries carry `ts`, `user`, `role`,
`action`, `target`, `ip`, `outcome` and `detail` (JSON).
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

import redis

FIELD_MAX: Final = 256  # a client-sent string (a user name on a failed log-in) stays short
DETAIL_MAX: Final = 4096
LIMIT_MAX: Final = 1000


class Audit:
    """Writes and reads the audit stream."""

    def __init__(self, client: redis.Redis, prefix: str, maxlen: int = 100_000) -> None:
        self.r = client
        self.key = f"{prefix}audit"
        self.maxlen = maxlen

    def write(self, *, user: str, role: str, action: str, target: str, ip: str, outcome: str,
              detail: dict | None = None) -> None:
        """Append one entry (approximate trimming keeps XADD O(1))."""
        detail_json = json.dumps(detail or {}, ensure_ascii=False, default=str)
        if len(detail_json) > DETAIL_MAX:
            detail_json = json.dumps({"truncated": detail_json[:DETAIL_MAX]}, ensure_ascii=False)
        fields = {"ts": str(int(time.time() * 1000)), "user": user, "role": role,
                  "action": action, "target": target, "ip": ip, "outcome": outcome}
        entry: dict[str, str] = {k: str(v or "")[:FIELD_MAX] for k, v in fields.items()}
        entry["detail"] = detail_json
        self.r.xadd(self.key, entry, maxlen=self.maxlen, approximate=True)

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` entries, newest first, each with its stream `id`."""
        limit = max(1, min(int(limit), LIMIT_MAX))
        out: list[dict[str, Any]] = []
        for entry_id, fields in self.r.xrevrange(self.key, count=limit):
            row = {_s(k): _s(v) for k, v in fields.items()}
            try:
                detail = json.loads(row.get("detail") or "{}")
            except ValueError:
                detail = {"raw": row.get("detail")}
            out.append({"id": _s(entry_id), "ts": int(row.get("ts") or 0),
                        "user": row.get("user", ""), "role": row.get("role", ""),
                        "action": row.get("action", ""), "target": row.get("target", ""),
                        "ip": row.get("ip", ""), "outcome": row.get("outcome", ""),
                        "detail": detail})
        return out


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
