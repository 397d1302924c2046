"""What every handler of the watch service shares: the connection's store and services,
the settings and clock, the counters, and how an alert is raised."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import redis

from dashboard.archive.events import Archive
from dashboard.archive.tracks import Tracks
from dashboard.command.alerts import Alerts, alert_texts, fill
from dashboard.command.dispatch import Desk
from dashboard.config import Settings
from dashboard.i18n import LANGS, t
from dashboard.store import Store

log = logging.getLogger("cc.watch")

CACHE_MAX: Final = 100_000  # remembered workers / events; far above a city's live entities
DAY_S: Final = 86_400
REDIS_DOWN: Final = (redis.ConnectionError, redis.TimeoutError, OSError)


@dataclass
class Context:
    """One connection's worth of the watch service's tools (made anew on each attach)."""

    settings: Settings
    clock: Callable[[], int]
    store: Store
    alerts: Alerts
    desk: Desk
    archive: Archive
    tracks: Tracks
    counters: dict[str, int]

    def raise_alert(self, kind: str, subject_id: str, event_id: str | None,
                    text: tuple[str, dict[str, str], dict[str, Any]], severity: int, ttl_s: int,
                    cause: str | None = None) -> bool:
        """Raise an alert once per cause; True when it was raised now. `text` is the table's
        key, the feed's values and the product's parts (`alert_texts`)."""
        key, feed, parts = text
        texts = alert_texts(key, feed, **parts)
        message = fill(texts[self.settings.lang if self.settings.lang in texts else LANGS[0]],
                       feed)
        alert = self.alerts.raise_once(kind, subject_id, event_id, message, severity, ttl_s,
                                       cause, texts=texts, feed=feed)
        if alert is not None:
            self.counters["alerts"] += 1
            log.info("alert %s %s: %s", kind, subject_id, message)
        return alert is not None

    def title(self, event: dict[str, Any], fallback: Any) -> tuple[dict[str, str],
                                                                   dict[str, Any]]:
        """An event's title for an alert as (feed, parts): its own (feed text), else its
        type's name in each language (the product's), else `fallback` (an id)."""
        if event.get("title"):
            return {"title": str(event["title"])}, {}
        if event.get("type"):
            return {}, {"title": {lang: t(f"type.{event['type']}", lang) for lang in LANGS}}
        return {"title": str(fallback or "")}, {}


class Handler:
    """One concern of the watch service. The follower calls `attach` on each (re)connection
    (caches start empty: Redis may have restarted), `entry` for each log entry (True when it
    changed something: the cursor is saved at once), `flush` after each block and `tick`
    every `watch_tick_s` (returns the alerts it raised)."""

    ctx: Context

    def attach(self, ctx: Context) -> None:
        self.ctx = ctx

    def entry(self, seq: int, kind: str, op: str, record: dict[str, Any]) -> bool:
        return False

    def flush(self) -> None:
        return None

    def tick(self, now: int) -> int:
        return 0


def remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    """Put `key` in a bounded LRU cache."""
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > CACHE_MAX:
        cache.popitem(last=False)
