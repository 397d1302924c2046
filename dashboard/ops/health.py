"""Is the stack ready, and is it well: one rule for `/api/health` and for `app.py`'s start-up.

Ready means an ingest process is subscribed (it writes its heartbeat only after subscribing)
and the relay listens (it writes its heartbeat once its socket is open): only then is a
message published not lost for want of a reader, and only then does `make run` print the URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

HEARTBEAT_STALE_MS: Final = 10_000


def alive(heartbeat: dict[str, str], now_ms: int) -> bool:
    """A heartbeat hash written less than HEARTBEAT_STALE_MS ago."""
    return bool(heartbeat) and now_ms - int(heartbeat.get("ts") or 0) < HEARTBEAT_STALE_MS


def ready(state: dict[str, Any], now_ms: int) -> bool:
    """Ingest subscribed and the relay listening (`state` as `Store.health()` reads it)."""
    return alive(state["ingest"], now_ms) and alive(state["relay"], now_ms)


def missing(state: dict[str, Any], now_ms: int) -> list[str]:
    """What start-up still waits for, in words for the log."""
    return [name for name in ("ingest", "relay") if not alive(state[name], now_ms)]


@dataclass
class Verdict:
    status: str  # ok, degraded or starting
    reasons: list[str] = field(default_factory=list)

    @property
    def http_status(self) -> int:
        return 503 if self.status == "starting" else 200


class Health:
    """The verdict over time: `starting` until this process has seen the stack ready once;
    after that a part that is down makes it `degraded` (still serving what it can)."""

    def __init__(self, memory_warn_ratio: float = 0.85) -> None:
        self.memory_warn_ratio = memory_warn_ratio
        self.seen_ready = False

    def judge(self, state: dict[str, Any], now_ms: int,
              memory: dict[str, int] | None = None) -> Verdict:
        if ready(state, now_ms):
            self.seen_ready = True
        elif not self.seen_ready:
            return Verdict("starting", [f"{name}_starting" for name in missing(state, now_ms)])
        reasons = [f"{name}_down" for name in ("ingest", "relay", "watch")
                   if not alive(state[name], now_ms)]
        if state["ingest"].get("degraded"):
            reasons.append("ingest_recently_degraded")
        if memory and memory.get("maxmemory") and (
                memory["used_memory"] >= self.memory_warn_ratio * memory["maxmemory"]):
            reasons.append("redis_memory")
        return Verdict("degraded" if reasons else "ok", reasons)
