"""The cockpit's time range (issue 16): which events the window figures, the charts, the
rankings and the export count, and the span before it they are compared with.

`range=today|7d|30d|year` are relative to now (they end now); `from`/`to` are a custom span
(local days, both included, or epoch ms with `to` excluded). No range is the last 30 days,
as before ranges existed. Definitions: docs/COCKPIT.md, "The time range".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

RANGES: Final = ("today", "7d", "30d", "year")
DEFAULT_RANGE: Final = "30d"
RELATIVE_DAYS: Final = {"today": 1, "7d": 7, "30d": 30}
# A custom span is read whole from the archive and charted one bar per day: three years is
# the archive's default keep and ~1,100 bars, about what a trend chart can still show.
MAX_DAYS: Final = 1100


class SpanError(ValueError):
    """The range asked for is not one (unknown name, `to` before `from`, too long)."""


@dataclass(frozen=True)
class Span:
    """A time range: events reported in [from_s, end_s) and not after now count.

    `name` is one of RANGES or "custom"; `to_ms` is what the figures JSON says (`now` for a
    relative range, the exclusive end, at most now, for a custom one)."""

    name: str
    from_s: int
    end_s: int  # exclusive
    to_ms: int
    first_day: date
    last_day: date

    @property
    def from_ms(self) -> int:
        return self.from_s * 1000

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def key(self) -> str:
        """The cache key's suffix: "" for the default (the key before ranges existed)."""
        if self.name == DEFAULT_RANGE:
            return ""
        if self.name in RANGES:
            return f":{self.name}"
        return f":{self.from_s}-{self.end_s}"


def day_start(day: date, tz: ZoneInfo) -> int:
    """Epoch seconds of local midnight starting `day`."""
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def local_day(seconds: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(seconds, tz).date()


def span_of(name: str | None, from_ms: int | None, to_ms: int | None, now_ms: int,
            tz: ZoneInfo) -> Span:
    """The span asked for: a range name, or `from_ms` (and optionally `to_ms`, exclusive;
    default now); neither = the last 30 days. SpanError when it is not one."""
    now_s = now_ms // 1000
    today = local_day(now_s, tz)
    if from_ms is None and to_ms is None:
        name = name or DEFAULT_RANGE
        if name not in RANGES:
            raise SpanError(f"range: one of {', '.join(RANGES)}")
        first = (today.replace(month=1, day=1) if name == "year"
                 else today - timedelta(days=RELATIVE_DAYS[name] - 1))
        return Span(name, day_start(first, tz), now_s + 1, now_ms, first, today)
    if name:
        raise SpanError("range or from/to, not both")
    if from_ms is None:
        raise SpanError("to needs a from")
    end_ms = now_ms + 1 if to_ms is None else to_ms
    if end_ms <= from_ms:
        raise SpanError("to must be after from")
    from_s = -(-from_ms // 1000)
    end_s = -(-end_ms // 1000)
    first = local_day(from_s, tz)
    last = local_day(max(from_s, min(end_s - 1, now_s)), tz)
    if (last - first).days + 1 > MAX_DAYS:
        raise SpanError(f"a range spans at most {MAX_DAYS} days")
    return Span("custom", from_s, end_s, min(end_ms, now_ms), first, last)


def span_days(span: Span, tz: ZoneInfo) -> list[tuple[str, int]]:
    """The span's local days (oldest first) with their midnight, epoch s: the trend's bars."""
    days = [span.first_day + timedelta(days=k) for k in range(span.days)]
    return [(d.isoformat(), day_start(d, tz)) for d in days]


def prev_span(span: Span, now_ms: int, tz: ZoneInfo) -> tuple[int, int]:
    """[prev_from, prev_to) in epoch s: the same span just before, up to the same offset.

    A year is compared with the year before (as `periods.year`); any other range with the
    same number of local days before it, cut at the same offset from its start, so a range
    that ends now (today, 7 d, 30 d) is compared with as much time as has passed."""
    if span.name == "year":
        start = span.first_day.replace(year=span.first_day.year - 1)
    else:
        start = span.first_day - timedelta(days=span.days)
    prev_from = day_start(start, tz)
    end = min(span.end_s, now_ms // 1000)  # as `periods`: up to now's second, excluded
    return prev_from, min(prev_from + (end - span.from_s), span.from_s)
