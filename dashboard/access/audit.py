"""The audit trail: one entry per mutation and per log-in attempt, in the `Paudit` stream.

Entries carry `ts`, `user`, `role`, `action`, `target`, `ip`, `outcome` and `detail`
(JSON). They are kept by time, never by count: every XADD trims with `MINID ~` at now minus
`retention_days` (approximate: whole stream nodes older than that go, so an entry lives at
least that long), so a flood of entries cannot push older ones out. What bounds a flood is
the rate limit on requests before sign-in (`write_anonymous`): at most `anon_per_min`
entries a minute per address (and twenty times that from all addresses together); past
that, the minute's entries are counted and one `audit.suppressed` entry says how many and of
which actions, written with the next audit entry once the minute is over.

Keys (prefix P): `Paudit` (stream), `Paudit:anon:{minute}:{sha256(ip)}` / `…:*` (a minute's
count; kept until summarised), `Paudit:anon:due` (zset: buckets to summarise, by minute end).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, Final

import redis

from dashboard import lua
from dashboard.store import now_ms

FIELD_MAX: Final = 256  # a client-sent string (a user name on a failed log-in) stays short
DETAIL_MAX: Final = 4096
LIMIT_MAX: Final = 1000
DAY_MS: Final = 86_400_000
MINUTE_MS: Final = 60_000
ANON_ALL_FACTOR: Final = 20  # all addresses together may write this many times one's limit
BUCKET_TTL_S: Final = 120  # a minute's count with nothing suppressed: gone soon after
SUPPRESSED_TTL_S: Final = 7 * 86400  # one to summarise: kept until summarised (or a week)
FLUSH_BATCH: Final = 100
SCAN_BATCH: Final = 1000
SCAN_MAX: Final = 100_000  # entries one filtered read looks at; `next` continues from there
SUPPRESSED: Final = "audit.suppressed"
ACTION_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")

# Every script: KEYS[1] the stream, KEYS[2] the due zset; ARGV[1] now (ms), [2] MINID
# ('' = keep for ever), [3] per-address limit, [4] all-addresses limit, [5] flush batch.
# `flush()` writes one `audit.suppressed` entry per finished minute bucket that suppressed
# something; `add(from)` appends an entry of the field/value pairs ARGV[from..].
_FLUSH: Final = lua.source(__file__, "audit_lib.lua", "audit_flush.lua")
# ARGV[6..]: the entry's field/value pairs.
_WRITE: Final = lua.source(__file__, "audit_lib.lua", "audit_write.lua")
# KEYS[3] the address's bucket of this minute, KEYS[4] all addresses'; ARGV[6] the minute's
# end (ms), [7] action, [8] address, [9] bucket TTL, [10] suppressed TTL, [11..] the entry.
# Returns 1 when the entry was written, 0 when counted for the minute's summary.
_ANON: Final = lua.source(__file__, "audit_lib.lua", "audit_anon.lua")


class Audit:
    """Writes and reads the audit stream."""

    def __init__(self, client: redis.Redis, prefix: str, retention_days: int = 180,
                 anon_per_min: int = 10, clock: Callable[[], int] = now_ms) -> None:
        self.r = client
        self.prefix = prefix
        self.key = f"{prefix}audit"
        self.retention_days = retention_days
        self.anon_per_min = anon_per_min
        self.clock = clock
        self._write = client.register_script(_WRITE)
        self._anon = client.register_script(_ANON)
        self._flush = client.register_script(_FLUSH)

    @classmethod
    def of(cls, client: redis.Redis, settings: Any) -> Audit:
        """The audit trail with the settings' retention and rate limit: every writer must
        use these, since each write trims by its own retention."""
        return cls(client, settings.prefix, settings.audit_retention_days,
                   settings.audit_anon_per_min)

    def _minid(self, now: int) -> str:
        return str(now - self.retention_days * DAY_MS) if self.retention_days > 0 else ""

    def _entry(self, now: int, user: str, role: str, action: str, target: str, ip: str,
               outcome: str, detail: dict | None) -> dict[str, str]:
        detail_json = json.dumps(detail or {}, ensure_ascii=False, default=str)
        if len(detail_json) > DETAIL_MAX:
            detail_json = json.dumps({"truncated": detail_json[:DETAIL_MAX]}, ensure_ascii=False)
        fields = {"ts": str(now), "user": user, "role": role, "action": action,
                  "target": target, "ip": ip, "outcome": outcome}
        entry: dict[str, str] = {k: str(v or "")[:FIELD_MAX] for k, v in fields.items()}
        entry["detail"] = detail_json
        return entry

    def _head(self, now: int) -> list[Any]:
        """ARGV[1..5], the same for every script."""
        return [now, self._minid(now), self.anon_per_min,
                self.anon_per_min * ANON_ALL_FACTOR, FLUSH_BATCH]

    def _keys(self) -> list[str]:
        return [self.key, f"{self.key}:anon:due"]

    def write(self, *, user: str, role: str, action: str, target: str, ip: str, outcome: str,
              detail: dict | None = None) -> None:
        """Append one entry, trimming what is older than the retention (approximately: O(1))
        and summarising finished minutes of suppressed entries first; one round trip."""
        now = int(self.clock())
        entry = self._entry(now, user, role, action, target, ip, outcome, detail)
        self._write(keys=self._keys(), args=[*self._head(now), *_pairs(entry)])

    def write_anonymous(self, *, action: str, target: str, ip: str, outcome: str,
                        detail: dict | None = None) -> bool:
        """An entry for a request before sign-in (a failed log-in, a bad display token):
        written while its address is under `anon_per_min` this minute (and all addresses
        under twenty times that), else counted for the minute's summary. True if written."""
        now = int(self.clock())
        minute = now // MINUTE_MS
        entry = self._entry(now, "-", "-", action, target, ip, outcome, detail)
        address = hashlib.sha256(ip.encode()).hexdigest()[:32]
        keys = [*self._keys(), f"{self.key}:anon:{minute}:{address}",
                f"{self.key}:anon:{minute}:*"]
        args = [*self._head(now), (minute + 1) * MINUTE_MS, action[:FIELD_MAX], ip[:FIELD_MAX],
                BUCKET_TTL_S, SUPPRESSED_TTL_S, *_pairs(entry)]
        return bool(self._anon(keys=keys, args=args))

    def flush(self) -> int:
        """Write the summaries of finished minutes now; how many buckets were handled."""
        return int(self._flush(keys=self._keys(), args=self._head(int(self.clock()))))

    def entries(self, limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        """The newest `limit` entries (matching `filters`, see `query`), newest first."""
        return self.query(limit, **filters)[0]

    def query(self, limit: int = 100, *, user: str | None = None, action: str | None = None,
              from_ms: int | None = None, to_ms: int | None = None, before: str | None = None,
              scan_max: int = SCAN_MAX) -> tuple[list[dict[str, Any]], str | None]:
        """Entries newest first, each with its stream `id`: by `user` (exact), `action`
        (exact, or a prefix ending in `*`), reported in [from_ms, to_ms] (epoch ms,
        inclusive) and older than the entry id `before` (paging). Looks at most `scan_max`
        entries; returns (entries, next): `next` is the id to pass as `before` for more,
        None when there is none."""
        limit = max(1, min(int(limit), LIMIT_MAX))
        self.flush()
        prefix = action[:-1] if action and action.endswith("*") else None
        hi = f"({before}" if before else (str(to_ms) if to_ms is not None else "+")
        lo = str(from_ms) if from_ms is not None else "-"
        out: list[dict[str, Any]] = []
        scanned, last = 0, None
        while scanned < scan_max:
            want = min(SCAN_BATCH, scan_max - scanned)
            batch = self.r.xrevrange(self.key, max=hi, min=lo, count=want)
            for entry_id, fields in batch:
                scanned += 1
                last = _s(entry_id)
                row = _row(last, fields)
                if (user is None or row["user"] == user) and (
                        action is None or row["action"] == action
                        or (prefix is not None and row["action"].startswith(prefix))):
                    out.append(row)
                    if len(out) == limit:
                        return out, last
            if len(batch) < want or last is None:
                return out, None
            hi = f"({last}"
        return out, last


def _pairs(entry: dict[str, str]) -> list[str]:
    return [x for kv in entry.items() for x in kv]


def _row(entry_id: str, fields: dict[Any, Any]) -> dict[str, Any]:
    row = {_s(k): _s(v) for k, v in fields.items()}
    try:
        detail = json.loads(row.get("detail") or "{}")
    except ValueError:
        detail = {"raw": row.get("detail")}
    return {"id": entry_id, "ts": int(row.get("ts") or 0), "user": row.get("user", ""),
            "role": row.get("role", ""), "action": row.get("action", ""),
            "target": row.get("target", ""), "ip": row.get("ip", ""),
            "outcome": row.get("outcome", ""), "detail": detail}


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
