"""The worst-case memory of a city's data in Redis, from the settings: the embedded Valkey's
`maxmemory` (CC_REDIS_MAXMEMORY overrides it), so it refuses writes before the host swaps.

Every stream, list and history is capped by a setting; what is not (the city's own size) is
taken from its grid count with the ratios of the cities we know: Pingdu has 2,078 grids, 2,140
grid workers, 347 resources and 3,000 cameras; a Bao'an-sized city 4,866 grids and 42,000
cameras (8.6 a grid). Per-item byte figures are measured (bench/RESULTS.md) or rounded up from
the record sizes the protocol allows in practice; each term says where it comes from.
"""

from __future__ import annotations

from typing import Final

from dashboard.config import Settings

MB: Final = 1024 * 1024

UNITS_PER_GRID: Final = 1.25  # workers and vehicles: Pingdu (2,140 + 347) / 2,078 = 1.2
CAMERAS_PER_GRID: Final = 10.0  # Bao'an: 42,000 / 4,866 = 8.6, rounded up
EVENTS_PER_GRID_MONTH: Final = 50.0  # a busy city: Pingdu ~100,000 a month
LIVE_EVENT_DAYS: Final = 3  # open ones plus those closed in the last day, before archiving

# Per-item bytes: MEMORY USAGE of the simulator's Pingdu through the real ingest (a helper's
# measurement, branch ready-memory), with room for longer names and addresses.
UNIT_BYTES: Final = 600  # a worker's state + meta + geo member: measured 440-457 B
CAMERA_BYTES: Final = 700  # measured 524 B
EVENT_BYTES: Final = 2_500  # state, meta, timeline, index members: 1,071 B before a task
LOG_ENTRY_BYTES: Final = 600  # a change-log entry: measured 381 B, ~455 B in the soak
DEAD_LETTER_OVERHEAD: Final = 700  # reason, channel, code and JSON around the raw bytes
TRACK_DAY_BYTES: Final = 20_000  # a compacted unit-day: 7 KB ordinary, 19-22 KB moving all day
TRACK_TODAY_BYTES: Final = 110_000  # today's day, uncompressed until compaction (104-106 KB)
ARCHIVE_EVENT_BYTES: Final = 170  # 162 MB per million archived events, measured
# The replay's history a day (CC_REPLAY_DAYS, bench.replay): Pingdu's 2,487 units made 89 MB a
# day (chunks ~26 KB and keyframes ~8 KB a unit-day), its cameras next to nothing but their
# hourly blocks; rounded up.
REPLAY_UNIT_DAY_BYTES: Final = 40_000
REPLAY_CAMERA_DAY_BYTES: Final = 2_000
SUBSCRIBER_BACKLOG: Final = 3 * 128 * MB  # ingest ×2 and the relay, up to the pub/sub soft limit
FIXED_BYTES: Final = 300 * MB  # sessions, alerts, tasks, plans, caches
# The audit trail is kept by time (CC_AUDIT_RETENTION_DAYS), not capped by count: its size
# follows the work done. An event handled on the dashboard leaves ~3 entries (dispatch,
# verify, evaluate; the demo's autopilot does the same), plus acknowledgements and sign-ins:
# ~5 a grid a day at EVENTS_PER_GRID_MONTH. Bytes per entry: MEMORY USAGE of 50,000 typical
# entries (dispatch/verify/ack with a task id) measured 114 B; 250 leaves room for longer details.
AUDIT_PER_GRID_DAY: Final = 5.0
AUDIT_ENTRY_BYTES: Final = 250
AUDIT_FOREVER_DAYS: Final = 3650  # "keep for ever" is sized as ten years


def worst_case(settings: Settings, grids: int) -> dict[str, int]:
    """Bytes per part of the data for a city of `grids` grids under `settings`."""
    units = grids * UNITS_PER_GRID
    events_month = grids * EVENTS_PER_GRID_MONTH
    months = settings.archive_keep_months or 120  # "for ever": ten years
    return {
        "units": int(units * UNIT_BYTES),
        "cameras": int(grids * CAMERAS_PER_GRID * CAMERA_BYTES),
        "live_events": int(events_month / 30 * LIVE_EVENT_DAYS * EVENT_BYTES),
        "change_log": settings.log_maxlen * LOG_ENTRY_BYTES,
        "dead_letters": settings.deadletter_max * (settings.deadletter_raw_bytes
                                                   + DEAD_LETTER_OVERHEAD),
        "tracks": int(units * (settings.track_keep_days * TRACK_DAY_BYTES
                               + TRACK_TODAY_BYTES)),
        "archive": int(events_month * months * ARCHIVE_EVENT_BYTES),
        "replay": int(settings.replay_days * (units * REPLAY_UNIT_DAY_BYTES + grids
                                              * CAMERAS_PER_GRID * REPLAY_CAMERA_DAY_BYTES)),
        "audit": int(grids * AUDIT_PER_GRID_DAY * (settings.audit_retention_days
                                                   or AUDIT_FOREVER_DAYS) * AUDIT_ENTRY_BYTES),
        "subscribers": SUBSCRIBER_BACKLOG,
        "fixed": FIXED_BYTES,
    }


def maxmemory_bytes(settings: Settings, grids: int) -> int:
    """CC_REDIS_MAXMEMORY when set (0: no limit), else the worst case with a quarter's room
    for Redis's own overhead (fragmentation, buffers, the AOF rewrite)."""
    if settings.redis_maxmemory is not None:
        return settings.redis_maxmemory
    return int(sum(worst_case(settings, grids).values()) * 1.25)

