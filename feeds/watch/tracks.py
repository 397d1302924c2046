"""Tracks: where workers and vehicles went (dashboard/archive/tracks.py). Positions are
thinned, buffered and appended once per block; yesterday's tracks are compacted a step per
tick."""

from __future__ import annotations

from typing import Any

from dashboard.archive.tracks import AHEAD_MAX_MS, Fix, Thinner
from dashboard.store import day_of
from feeds.watch.context import DAY_S, Context, Handler


class TrackWriter(Handler):
    def __init__(self) -> None:
        self._thinner = Thinner()  # the last kept fix per unit (bounded)
        self._new: dict[tuple[str, str], list[Fix]] = {}  # (kind, id) → fixes to append
        self.compacted = ""  # the last finished day whose tracks were compacted
        self._cursor = 0  # where that compaction's SCAN is

    def attach(self, ctx: Context) -> None:
        super().attach(ctx)
        self._thinner.clear()  # entries after the saved cursor come again: write them again
        self._new.clear()

    def entry(self, seq: int, kind: str, op: str, record: dict[str, Any]) -> bool:
        """A worker's or vehicle's position, thinned, buffered for `flush`. An off-duty
        worker's positions are not kept: the centre follows people at work."""
        if kind not in ("worker", "resource"):
            return False
        if kind == "worker" and record.get("status") == "off_duty":
            return False
        ts, lat, lon = record.get("ts"), record.get("lat"), record.get("lon")
        if not isinstance(ts, int) or not isinstance(lat, int | float) or \
                not isinstance(lon, int | float) or isinstance(lat, bool) or \
                isinstance(lon, bool):
            return False
        received = record.get("received")
        if isinstance(received, int) and ts > received + AHEAD_MAX_MS:
            return False  # a clock running ahead: never let it hold back the true fixes
        unit_id = str(record.get("id"))
        kept = self._thinner.offer(kind, unit_id, Fix(ts, float(lat), float(lon)))
        if kept:
            self._new.setdefault((kind, unit_id), []).extend(kept)
        return False

    def flush(self) -> None:
        """The block's kept fixes in one round trip: an APPEND and an EXPIRE per unit-day."""
        if not self._new:
            return
        tracks = self.ctx.tracks
        pipe = tracks.r.pipeline(transaction=False)
        for (kind, unit_id), fixes in self._new.items():
            for key, day_fixes in tracks.group(kind, unit_id, fixes).items():
                tracks.append(pipe, key, day_fixes)
        self._new.clear()  # before execute: a failed block is not appended twice
        pipe.execute()

    def tick(self, now: int) -> int:
        """Yesterday's tracks rewritten at their exact size, one SCAN step per tick."""
        day = day_of(now - DAY_S * 1000, self.ctx.settings.timezone)
        if day != self.compacted:
            self._cursor, _ = self.ctx.tracks.compact_step(day, self._cursor)
            if self._cursor == 0:
                self.compacted = day
        return 0
