"""Where the demo history's time goes: each phase's seconds, calls and round trips.

    python -m bench.history --phases [--days 90]

Wraps the desk's, ingest's, the watch's and the alerts' entry points for one run of
`seed_history` (the outermost one counts: a dispatch's own reads are the dispatch's) and
counts the client's round trips (a command or a pipeline each) inside each.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.connection import AbstractConnection

from dashboard.command.alerts import Alerts
from dashboard.command.dispatch import Desk
from feeds.sim import history
from feeds.watch import Watch

# (owner, attribute, phase): what a first start spends its time in
PHASES: tuple[tuple[Any, str, str], ...] = (
    (Desk, "dispatch", "desk: dispatch"), (Desk, "proposal", "desk: proposal (no unit in time)"),
    (Desk, "on_feedbacks", "desk: feedback (a team's stage)"), (Desk, "verify", "desk: verify"),
    (Desk, "evaluate", "desk: evaluate"),
    (history._Player, "_send", "ingest: a report or cancel"),
    (history, "_publish", "ingest: units at their posts, patrols"),
    (Watch, "tick", "watch: tick"), (Watch, "process", "watch: follow the log"),
    (Watch, "archive_once", "watch: archive (daily)"),
    (history._Player, "_acknowledge", "duty officer: hourly look"),
    (Alerts, "open", "duty officer: a closed event's alerts"),
    (history, "build_world", "the simulator's world"), (history, "plan", "the plan"),
)


@contextmanager
def phases() -> Iterator[dict[str, dict[str, float]]]:
    """Counts while inside; yields {phase: {s, calls, round_trips}} filled on exit."""
    seconds: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    trips: Counter[str] = Counter()
    total = [0]
    inside: list[str] = []
    send = AbstractConnection.send_packed_command

    def counted_send(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        total[0] += 1
        return send(self, *args, **kwargs)

    def wrap(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if inside:
                return fn(*args, **kwargs)
            inside.append(phase)
            started, before = time.perf_counter(), total[0]
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[phase] += time.perf_counter() - started
                calls[phase] += 1
                trips[phase] += total[0] - before
                inside.pop()
        return timed

    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in PHASES]
    out: dict[str, dict[str, float]] = {}
    AbstractConnection.send_packed_command = counted_send  # type: ignore[method-assign]
    for owner, name, phase in PHASES:
        setattr(owner, name, wrap(getattr(owner, name), phase))
    try:
        yield out
    finally:
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        for owner, name, fn in saved:
            setattr(owner, name, fn)
        for phase, s in seconds.most_common():
            out[phase] = {"s": round(s, 2), "calls": calls[phase],
                          "round_trips": trips[phase]}
        out["(all round trips)"] = {"s": 0.0, "calls": 0, "round_trips": total[0]}
