"""Archiving: closed events move into the archive (docs/COCKPIT.md) in bounded batches; a
full batch means more wait, so the next tick takes the next one at once."""

from __future__ import annotations

import logging
import time

from feeds.watch.context import REDIS_DOWN, Handler

log = logging.getLogger("cc.watch")


class Archiving(Handler):
    def __init__(self) -> None:
        self._last = float("-inf")
        self._backlog = False

    def tick(self, now: int) -> int:
        settings = self.ctx.settings
        if self._backlog or time.monotonic() - self._last >= settings.archive_every_s:
            self._last = time.monotonic()
            try:
                self.archive_once(now)
            except REDIS_DOWN:
                raise
            except Exception:  # the archive waits for the next round; the cards must not
                self.ctx.counters["errors"] += 1
                log.exception("watch: archiving failed")
        return 0

    def archive_once(self, now: int) -> int:
        """One bounded batch of closed events into the archive; returns how many moved."""
        settings, archive = self.ctx.settings, self.ctx.archive
        moved = archive.run(now, settings.archive_batch)
        self._backlog = moved >= settings.archive_batch
        for month in archive.expire(now, settings.archive_keep_months):
            log.info("archive month %s dropped (CC_ARCHIVE_KEEP_MONTHS)", month)
        if moved:
            log.info("archived %d closed events", moved)
        return moved
