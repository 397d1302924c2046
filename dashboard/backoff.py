"""Capped exponential backoff with jitter, for every reconnect loop."""

from __future__ import annotations

import random


class Backoff:
    """`next()` gives the next wait in seconds; `reset()` after a success."""

    def __init__(self, first: float = 0.1, cap: float = 5.0, factor: float = 2.0) -> None:
        self.first = first
        self.cap = cap
        self.factor = factor
        self.attempt = 0

    def next(self) -> float:
        base = min(self.cap, self.first * self.factor**self.attempt)
        self.attempt += 1
        # Full jitter in the upper half: spreads many clients without ever waiting ~0.
        return base * (0.5 + random.random() / 2)

    def reset(self) -> None:
        self.attempt = 0


# A process that lost Redis waits at most this long between attempts: a Sentinel failover ends
# at a moment no one knows in advance, and the stack must be back within 5 s of it (issue 15);
# a handful of processes reconnecting once a second costs a server nothing.
RECONNECT_CAP_S = 1.0


def reconnecting() -> Backoff:
    """The backoff of a loop that reconnects to Redis (ingest, relay, watch)."""
    return Backoff(0.1, RECONNECT_CAP_S)
