"""Tracks: where a worker or a vehicle went, stored compactly per unit and local day.

Keys (prefix P): `Ptrack:{kind}:{id}:{YYYY-MM-DD}` a binary string grown with APPEND, one
12-byte little-endian record per kept fix: uint32 ms since that local day's midnight (in
CC_TZ; a 25-hour day still fits), int32 lat×1e6, int32 lon×1e6 (≈ 0.1 m). Each write sets
the key's TTL to `track_keep_days` (CC_TRACK_KEEP_DAYS, default 30), so a day is dropped
that long after its last fix and nothing grows with uptime.

Thinning (`Thinner`, before anything is stored): a fix is kept when it is the unit's first,
or moved ≥ MIN_MOVE_M (8 m) from the last kept one (and came ≥ 1 s after it), or came
≥ STILL_KEEP_MS (5 min) after it (a standing unit leaves one point per 5 minutes: the replay
can tell "stood here" from "no report"). When a unit moves on after standing ≥ PAUSE_MS
(30 s), the last fix it skipped is written first, so the replay shows it standing until it
left rather than creeping along the whole pause. A worker reporting every 5 s while standing
costs 288 points (3.4 KB) a day instead of 17,280.

Reading (`Tracks.read`) decodes only the days of the span (≤ MAX_SPAN_MS), sorts by time,
drops duplicates (a watch restarting mid-block may append a block twice) and, past
MAX_POINTS, keeps an even sample (first and last included) and says so (`thinned`).

Compaction (`Tracks.compact_step`, run by the watch's tick in small steps once a day for
yesterday's keys): a finished day is rewritten once, compressed (`pack`): the records sorted
by time, as deltas (time, lat, lon), byte planes apart, zlib — a few bytes a fix instead of
12, and no spare room left by APPEND's greedy growth. The rewrite is a compare-and-set on
the string's length (a key appended at that very moment stays raw: nothing is lost). A
compressed segment is `TZ` + its uint32 length + zlib data, padded so its length is 1
modulo 12: raw records are 12 bytes, so a late fix APPENDed after the compaction still
decodes (segment, then raw records) and a raw string is never taken for a compressed one.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import redis
from redis.client import NEVER_DECODE

from dashboard import lua
from dashboard.connect import home_node
from dashboard.errors import Refused
from dashboard.store import day_of

TRACK_KINDS: Final = ("worker", "resource")
RECORD: Final = np.dtype([("t", "<u4"), ("lat", "<i4"), ("lon", "<i4")])
RECORD_SIZE: Final = RECORD.itemsize  # 12 bytes
SCALE: Final = 1_000_000  # degrees → int32 micro-degrees
# A standing phone's fixes scatter by a few metres (σ ≈ 1.5 m a axis in the open: two fixes
# lie ≥ 8 m apart once in ~1,000); a walker at 1.3 m/s every 5 s then leaves a point every
# 10 s (13 m), which a straight line between them replays faithfully.
MIN_MOVE_M: Final = 8.0
MIN_GAP_MS: Final = 1_000  # two moves in the same second: the first is enough
STILL_KEEP_MS: Final = 300_000
# A fix stamped this far after ingest received it has a wrong clock: kept, it would hold back
# every true fix after it (tracks only go forward).
AHEAD_MAX_MS: Final = 600_000
PAUSE_MS: Final = 30_000  # stood this long: the pause's last fix is kept when it moves on
MAX_SPAN_MS: Final = 7 * 86_400_000
MAX_POINTS: Final = 20_000
DEFAULT_SPAN_MS: Final = 2 * 3_600_000
COMPACT_SCAN: Final = 1000  # keys looked at per compaction step
# Rewrites a key as one exact-size string: APPEND leaves up to as much again spare (Redis
# grows a string greedily), and a finished day is never appended to again.
# ARGV[1] the length the compactor read, ARGV[2] the compressed string.
COMPACT_LUA: Final = lua.source(__file__, "tracks_compact.lua")
PACK_MAGIC: Final = b"TZ"
PACK_HEAD: Final = struct.Struct("<2sI")  # magic, the segment's whole length
THINNER_MAX: Final = 100_000  # units remembered; far above a city's live units
EARTH_M: Final = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Fix:
    ts: int  # epoch ms
    lat: float
    lon: float


def track_key(prefix: str, kind: str, unit_id: str, day: str) -> str:
    return f"{prefix}track:{kind}:{unit_id}:{day}"


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def midnight_ms(day: str, tz: str) -> int:
    """Epoch ms of local midnight starting `day` (YYYY-MM-DD) in zone `tz`."""
    d = date.fromisoformat(day)
    return int(datetime(d.year, d.month, d.day, tzinfo=_zone(tz)).timestamp() * 1000)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); exact enough for metres within a city."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(a)))


def encode(fixes: Iterable[Fix], day: str, tz: str) -> bytes:
    """The records of `fixes` (all of local day `day`) as stored."""
    base = midnight_ms(day, tz)
    rows = [(f.ts - base, round(f.lat * SCALE), round(f.lon * SCALE)) for f in fixes]
    return np.array(rows, dtype=RECORD).tobytes()


def packed_length(blob: bytes) -> int:
    """The length of the compressed segment `blob` starts with, 0 when it has none."""
    if len(blob) % RECORD_SIZE != 1 or len(blob) < PACK_HEAD.size or \
            blob[:2] != PACK_MAGIC:
        return 0
    length = PACK_HEAD.unpack_from(blob)[1]
    return length if length <= len(blob) and length % RECORD_SIZE == 1 else 0


def records(blob: bytes) -> np.ndarray:
    """The RECORD array of a stored day: its compressed segment (if any), then raw records;
    a torn tail (never written by APPEND, but cheap to guard) is ignored."""
    head = packed_length(blob)
    parts: list[np.ndarray] = []
    if head:
        parts.append(unpack(blob[:head]))
    raw = memoryview(blob)[head:]
    usable = len(raw) - len(raw) % RECORD_SIZE
    parts.append(np.frombuffer(raw, dtype=RECORD, count=usable // RECORD_SIZE))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def pack(rec: np.ndarray) -> bytes:
    """A compressed segment of `rec`: sorted by time, repeated times once, deltas, byte
    planes (the high bytes of small deltas are alike), zlib."""
    t, first = np.unique(rec["t"].astype(np.int64), return_index=True)
    cols = [t, rec["lat"].astype(np.int64)[first], rec["lon"].astype(np.int64)[first]]
    planes = [np.diff(c, prepend=0).astype("<i4").view(np.uint8).reshape(-1, 4).T.tobytes()
              for c in cols]
    body = zlib.compress(b"".join(planes), 9)
    length = PACK_HEAD.size + len(body)
    length += (1 - length) % RECORD_SIZE  # pad: ≡ 1 modulo 12
    return (PACK_HEAD.pack(PACK_MAGIC, length) + body).ljust(length, b"\0")


def unpack(segment: bytes) -> np.ndarray:
    """The RECORD array of a compressed segment (`pack`)."""
    body = zlib.decompressobj().decompress(segment[PACK_HEAD.size:])  # padding left over
    n = len(body) // RECORD_SIZE
    cols = [np.frombuffer(body[i * 4 * n:(i + 1) * 4 * n], dtype=np.uint8).reshape(4, n).T
            .copy().view("<i4").ravel().astype(np.int64).cumsum() for i in range(3)]
    out = np.empty(n, dtype=RECORD)
    out["t"], out["lat"], out["lon"] = cols
    return out


def decode(blob: bytes, day: str, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epoch ms int64, lat float, lon float) arrays of a stored day (raw or compacted)."""
    rec = records(blob)
    ts = rec["t"].astype(np.int64) + midnight_ms(day, tz)
    return ts, rec["lat"] / SCALE, rec["lon"] / SCALE


def days_between(from_ms: int, to_ms: int, tz: str) -> list[str]:
    """Every local day touched by [from_ms, to_ms], oldest first."""
    first, last = date.fromisoformat(day_of(from_ms, tz)), date.fromisoformat(day_of(to_ms, tz))
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


class Thinner:
    """Which fixes of each unit are worth storing (module doc); bounded memory per unit."""

    def __init__(self, cap: int = THINNER_MAX) -> None:
        self.cap = cap
        # (kind, id) → (last kept fix, last skipped fix since then or None)
        self._last: OrderedDict[tuple[str, str], tuple[Fix, Fix | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def clear(self) -> None:
        self._last.clear()

    def offer(self, kind: str, unit_id: str, fix: Fix) -> list[Fix]:
        """The fixes to store for this new one: none, it, or the pause's end and it."""
        key = (kind, unit_id)
        found = self._last.get(key)
        out: list[Fix] = []
        if found is not None:
            kept, skipped = found
            dt = fix.ts - kept.ts
            if dt <= 0:
                return []  # older than or as old as what is stored: the track goes forward
            moved = distance_m(kept.lat, kept.lon, fix.lat, fix.lon)
            if dt < STILL_KEEP_MS and (moved < MIN_MOVE_M or dt < MIN_GAP_MS):
                self._last[key] = (kept, fix)
                self._last.move_to_end(key)
                return []
            if skipped is not None and moved >= MIN_MOVE_M and \
                    skipped.ts - kept.ts >= PAUSE_MS and \
                    distance_m(kept.lat, kept.lon, skipped.lat, skipped.lon) < MIN_MOVE_M:
                out.append(skipped)  # it stood there until then: say so
        out.append(fix)
        self._last[key] = (fix, None)
        self._last.move_to_end(key)
        if len(self._last) > self.cap:
            self._last.popitem(last=False)
        return out


class Tracks:
    """Read and write `Ptrack:*` on `client` (either decoding mode: binary reads never
    decode)."""

    def __init__(self, client: redis.Redis, prefix: str = "cc:", tz: str = "Asia/Shanghai",
                 keep_days: int = 30) -> None:
        self.r = client
        self.prefix = prefix
        self.tz = tz
        self.keep_s = max(1, keep_days) * 86_400
        self._compact = client.register_script(COMPACT_LUA)

    def key(self, kind: str, unit_id: str, day: str) -> str:
        return track_key(self.prefix, kind, unit_id, day)

    def group(self, kind: str, unit_id: str, fixes: Iterable[Fix]) -> dict[str, list[Fix]]:
        """`fixes` by the key of their local day."""
        out: dict[str, list[Fix]] = {}
        for fix in fixes:
            out.setdefault(self.key(kind, unit_id, day_of(fix.ts, self.tz)), []).append(fix)
        return out

    def append(self, pipe: Any, key: str, fixes: list[Fix]) -> None:
        """Queue on `pipe` the APPEND of `fixes` (all of the key's day) and the TTL."""
        day = key.rsplit(":", 1)[1]
        pipe.append(key, encode(fixes, day, self.tz))
        pipe.expire(key, self.keep_s)

    def write(self, kind: str, unit_id: str, fixes: Iterable[Fix]) -> int:
        """Store `fixes` as they are (already thinned); one round trip. Returns how many."""
        groups = self.group(kind, unit_id, fixes)
        if not groups:
            return 0
        pipe = self.r.pipeline(transaction=False)
        for key, day_fixes in groups.items():
            self.append(pipe, key, day_fixes)
        pipe.execute()
        return sum(len(v) for v in groups.values())

    def compact_step(self, day: str, cursor: int = 0) -> tuple[int, int]:
        """One bounded step of compacting the finished `day`'s tracks: (next cursor, 0 when
        done; keys rewritten)."""
        r = home_node(self.r, self.prefix)  # on a cluster, the node of the prefix's slot
        cursor, keys = r.scan(cursor, match=f"{self.prefix}track:*:{day}", count=COMPACT_SCAN)
        done = 0
        if keys:
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.execute_command("GET", key, **{NEVER_DECODE: True})
            blobs = pipe.execute()
            pipe = r.pipeline(transaction=False)
            for key, blob in zip(keys, blobs, strict=True):
                if blob and packed_length(blob) != len(blob):  # not already just compressed
                    self._compact(keys=[key], args=[len(blob), pack(records(blob))],
                                  client=pipe)
            done = sum(int(x) for x in pipe.execute())
        return int(cursor), done

    def read(self, kind: str, unit_id: str, from_ms: int, to_ms: int,
             max_points: int = MAX_POINTS) -> dict[str, Any]:
        """The track in [from_ms, to_ms]: `{points: [[ts, lat, lon], …], thinned, total}`,
        time order; raises Refused for a bad kind or span."""
        check_span(kind, from_ms, to_ms)
        days = days_between(from_ms, to_ms, self.tz)
        pipe = self.r.pipeline(transaction=False)
        for day in days:
            pipe.execute_command("GET", self.key(kind, unit_id, day), **{NEVER_DECODE: True})
        parts = [decode(blob, day, self.tz) for day, blob in zip(days, pipe.execute(),
                                                                strict=True) if blob]
        if not parts:
            return {"points": [], "thinned": False, "total": 0}
        ts = np.concatenate([p[0] for p in parts])
        lat = np.concatenate([p[1] for p in parts])
        lon = np.concatenate([p[2] for p in parts])
        inside = (ts >= from_ms) & (ts <= to_ms)
        ts, lat, lon = ts[inside], lat[inside], lon[inside]
        ts, first = np.unique(ts, return_index=True)  # sorted; a repeated time kept once
        lat, lon = lat[first], lon[first]
        total = len(ts)
        thinned = total > max_points
        if thinned:
            pick = np.unique(np.linspace(0, total - 1, max_points).round().astype(np.int64))
            ts, lat, lon = ts[pick], lat[pick], lon[pick]
        # whole arrays to Python at once: ~10× faster than a conversion per value
        points = list(map(list, zip(ts.tolist(), np.round(lat, 6).tolist(),
                                    np.round(lon, 6).tolist(), strict=True)))
        return {"points": points, "thinned": thinned, "total": total}


def check_span(kind: str, from_ms: int, to_ms: int) -> None:
    """Raise Refused unless `kind` is tracked and the span is forward and ≤ 7 days."""
    if kind not in TRACK_KINDS:
        raise Refused("bad_kind", 400, f"kind: one of {', '.join(TRACK_KINDS)}")
    if to_ms <= from_ms:
        raise Refused("bad_span", 400, "to must be after from")
    if to_ms - from_ms > MAX_SPAN_MS:
        raise Refused("span_too_long", 400,
                      f"a track spans at most {MAX_SPAN_MS // 86_400_000} days")
