"""The demo's past shifts (docs/DEMO.md): every shift of the last HANDOVER_DAYS handed over
as the duty officer does it (docs/DUTY.md), through the duty desk's own `Handovers` on the
history's clock, interleaved with the events' steps (feeds/sim/history.py), so each report
is drafted from the state the store holds at the end of its shift: the outgoing officer
drafts it 20 minutes before the end and signs it 10 minutes before; the incoming officer
accepts it 5 minutes into their shift. A shift still running has no report yet; one whose
end is only minutes ago may still wait to be signed or accepted, as it would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from dashboard.duty.handover import Handovers
from dashboard.duty.roster import Duty, Roster

HANDOVER_DAYS: Final = 14
DRAFT_BEFORE_MS: Final = 20 * 60_000
SIGN_BEFORE_MS: Final = 10 * 60_000
ACCEPT_AFTER_MS: Final = 5 * 60_000


def past_shifts(roster: Roster, start: int, now: int, tz: ZoneInfo,
                days: int = HANDOVER_DAYS) -> list[Duty]:
    """The shifts of the last `days` days (not before `start`, the history's first moment)
    whose report was drafted before `now`, oldest first."""
    since = max(start, now - days * 86_400_000)
    first = datetime.fromtimestamp(since / 1000, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(now / 1000, tz).date()
    out = []
    day = first
    while day <= last:
        for duty in roster.on_date(day):
            if since <= duty.start_ms and duty.end_ms - DRAFT_BEFORE_MS <= now:
                out.append(duty)
        day += timedelta(days=1)
    return sorted(out, key=lambda d: d.start_ms)


def hand_over(books: Handovers, roster: Roster, duty: Duty, now: int,
              catch_up: Callable[[], None], done: Callable[[str], None]) -> Iterator[int]:
    """One shift's handover as steps for the history's player: yields the moment of each
    next step (draft, sign, accept); resumed at that moment, it does it. `catch_up` lets the
    watch read the log first (the report lists the alarms it raised); `done(state)` counts
    the report as it ends."""
    author = next(iter((*duty.officers, duty.leader)), None)
    if author is None:
        return
    incoming = roster.at(duty.end_ms)
    taker = next((u for u in (*incoming.officers, incoming.leader) if u and u != author),
                 None)
    yield duty.end_ms - DRAFT_BEFORE_MS
    catch_up()
    report = books.create(by=author, from_ms=duty.start_ms, to_ms=duty.end_ms)
    if duty.end_ms - SIGN_BEFORE_MS > now:
        done("draft")
        return
    yield duty.end_ms - SIGN_BEFORE_MS
    books.sign(report["id"], by=author)
    if taker is None or duty.end_ms + ACCEPT_AFTER_MS > now:
        done("signed")
        return
    yield duty.end_ms + ACCEPT_AFTER_MS
    books.accept(report["id"], by=taker)
    done("accepted")
