"""The replay history's format: keys, keyframes, minute chunks, the entry clock, thinning.

Keys (prefix P; every one expires after `CC_REPLAY_DAYS`, docs/REDIS-KEYS.md):

- `Preplay:keys` zset keyframe time → time (ms): the index of keyframes;
- `Preplay:k:{t}` JSON `{"t", "seq", "blocks": {list name: [block hash, …]}, "base":
  {list name: [t, seq]}}`: a keyframe, the wall's snapshot (`Store.snapshot_parts`) at time
  t, as of log seq `seq`; a list named in `base` (the cameras, CAMERAS_EVERY_MS) is as of
  that earlier keyframe's t and seq instead;
- `Preplay:b:{hash}` zlib of a block's records (≤ BLOCK_RECORDS JSON lines, sorted by id):
  content-addressed, so a block that did not change (most cameras' between two keyframes)
  is stored once and shared; each keyframe that uses it refreshes its TTL;
- `Preplay:m:{minute}` (epoch minute): the log entries stamped in that minute, as segments
  `uint32 length + zlib(JSON lines [seq, t, kind, op, record])` (normally one a minute; a
  restarted watch may add a second);
- `Preplay:cursor` `seq|t`: the last log entry written to a chunk, and its stamp.

The entry clock: the log carries no time, so an entry is stamped with the newest time its
record states (`received` from ingest, `status_ts` from a restate, an alert's `ts` /
`acked_ts`, a task's last history step), never later than the watch's clock and never
earlier than the entry before (stamps rise with seq, so "the wall at T" is a prefix of the
log). A record stating no time gets the watch's clock.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from typing import Any, Final

import orjson

from dashboard.archive.tracks import distance_m
from dashboard.scope import PLACE_FIELDS

MINUTE_MS: Final = 60_000
DAY_MS: Final = 86_400_000
KEYFRAME_MS: Final = 10 * MINUTE_MS  # a keyframe every 10 minutes of history
# A city's cameras (42,000 in a Bao'an-sized one) hardly change, but an online/offline here
# and there touches every block in 10 minutes: a keyframe takes them anew once an hour and
# otherwise names the hour's blocks, read with the camera entries since (`base` in a head).
CAMERAS_EVERY_MS: Final = 60 * MINUTE_MS
BLOCK_RECORDS: Final = 500
# The kinds the wall draws; `video` (the video wall's own page) and `feedback` (folded into
# tasks) are not part of the picture.
KINDS: Final = frozenset({"event", "worker", "resource", "camera", "task", "alert"})
UNIT_KINDS: Final = frozenset({"worker", "resource", "camera"})
# A unit's move is kept when it moved ≥ MOVE_MIN_M and ≥ MOVE_MIN_MS passed since the unit's
# last kept entry (where it stopped is kept too, see Thinner). A minute: at ×60, a second.
MOVE_MIN_MS: Final = 60_000
MOVE_MIN_M: Final = 8.0
# What a re-report changes without changing what the wall shows (apart from the position).
VOLATILE: Final = frozenset({"ts", "received", "lat", "lon", "speed", "heading", "battery",
                             "status_ts", "loc_grid_id", "loc_community_id", "loc_town_id"})
SEGMENT: Final = struct.Struct("<I")
LISTS: Final = ("events", "workers", "resources", "cameras", "tasks", "alerts")


def keys_key(prefix: str) -> str:
    return prefix + "replay:keys"


def frame_key(prefix: str, t: int) -> str:
    return f"{prefix}replay:k:{t}"


def block_key(prefix: str, digest: str) -> str:
    return f"{prefix}replay:b:{digest}"


def minute_key(prefix: str, minute: int) -> str:
    return f"{prefix}replay:m:{minute}"


def cursor_key(prefix: str) -> str:
    return prefix + "replay:cursor"


def ttl_s(days: int) -> int:
    return days * 86_400


# -- the entry clock ---------------------------------------------------------------------


def stated_ms(kind: str, record: dict[str, Any]) -> int:
    """The newest time a record states about itself (0: none)."""
    best = 0
    for name in ("received", "status_ts", "acked_ts"):
        value = record.get(name)
        if type(value) is int and value > best:
            best = value
    if kind == "alert" and type(record.get("ts")) is int:
        best = max(best, record["ts"])
    if kind == "task":
        steps = record.get("history")
        if isinstance(steps, list) and steps and isinstance(steps[-1], dict):
            ts = steps[-1].get("ts")
            if type(ts) is int:
                best = max(best, ts)
    return best


def stamp(kind: str, record: dict[str, Any], now: int, previous: int) -> int:
    """An entry's time: what its record states, at most `now`, at least `previous`."""
    stated = stated_ms(kind, record)
    return max(previous, min(stated, now) if stated else now)


# -- thinning ------------------------------------------------------------------------------


def signature(record: dict[str, Any]) -> int:
    """What of a unit's record the wall shows apart from its position, as a number: a change
    of it (a name, a status, a camera's stream) is always kept."""
    rest = {k: v for k, v in record.items() if k not in VOLATILE}
    return hash(orjson.dumps(rest, option=orjson.OPT_SORT_KEYS))


def slim(record: dict[str, Any]) -> dict[str, Any]:
    """A kept move as the history stores it: id, position, time and place (for scope)."""
    out = {"id": record.get("id"), "lon": record.get("lon"), "lat": record.get("lat"),
           "ts": record.get("ts")}
    for name in PLACE_FIELDS:
        if record.get(name):
            out[name] = record[name]
    return out


class Thinner:
    """Which unit entries the history keeps. A unit's first entry, and any change of what
    the wall shows besides the position (a status, a name, a camera's stream), are kept
    whole; a move is kept (slim) when the unit moved ≥ MOVE_MIN_M and ≥ MOVE_MIN_MS passed
    since its last kept entry. The moves in between are held (the latest per unit); at a
    minute's end a held move is kept when the unit has had no kept entry for MOVE_MIN_MS, so a
    unit that stops is shown where it stopped within a minute. Cameras keep only real moves
    (their re-reports change nothing the wall shows). A keyframe seeds what the units were
    (`seed`), so their first re-reports after it are thinned too."""

    def __init__(self) -> None:
        # (kind, id) → (t, lat, lon, signature) of the last kept entry
        self.kept: dict[tuple[str, str], tuple[int, float, float, int]] = {}
        # (kind, id) → the held move: (seq, t, lat, lon, slim record)
        self.held: dict[tuple[str, str], tuple[int, int, float, float, dict[str, Any]]] = {}
        # the last keyframe's units: raw JSON → (key, lat, lon, signature), so a unit that
        # did not change since (most of them) is not parsed and signed again
        self.seeded: dict[str, dict[str | bytes, tuple[tuple[str, str], float, float, int]]] = {}

    def clear(self) -> None:
        self.kept.clear()
        self.held.clear()
        self.seeded.clear()

    def seed(self, kind: str, record: dict[str, Any], t: int) -> None:
        """A unit as a keyframe holds it, at `t`."""
        lat, lon = _position(record)
        self.kept[(kind, str(record.get("id")))] = (t, lat, lon, signature(record))

    def seed_all(self, kind: str, raws: list[str | bytes], t: int) -> None:
        """Every unit of `kind` as a keyframe holds them (raw JSON), at `t`."""
        before = self.seeded.get(kind, {})
        now: dict[str | bytes, tuple[tuple[str, str], float, float, int]] = {}
        for raw in raws:
            known = before.get(raw)
            if known is None:
                try:
                    record = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(record, dict):
                    continue
                lat, lon = _position(record)
                known = ((kind, str(record.get("id"))), lat, lon, signature(record))
            now[raw] = known
            key, lat, lon, sig = known
            self.kept[key] = (t, lat, lon, sig)
        self.seeded[kind] = now

    def offer(self, seq: int, t: int, kind: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """The record to store for this entry (the whole one, or slim for a move), or None
        when it is thinned out (perhaps held: `release` may keep it at the minute's end)."""
        key = (kind, str(record.get("id")))
        lat, lon = _position(record)
        sig = signature(record)
        last = self.kept.get(key)
        self.held.pop(key, None)
        if last is None or last[3] != sig:
            self.kept[key] = (t, lat, lon, sig)
            return record
        if distance_m(last[1], last[2], lat, lon) < MOVE_MIN_M:
            return None
        if kind != "camera" and t - last[0] < MOVE_MIN_MS:
            self.held[key] = (seq, t, lat, lon, slim(record))
            return None
        self.kept[key] = (t, lat, lon, sig)
        return slim(record)

    def release(self, end: int) -> Iterator[tuple[int, int, str, dict[str, Any]]]:
        """At a minute's `end`: the held moves (seq, t, kind, slim record) of units with no
        kept entry for MOVE_MIN_MS; they count as kept. The others stay held."""
        for key, (seq, t, lat, lon, record) in list(self.held.items()):
            last = self.kept.get(key)
            if last is not None and end - last[0] < MOVE_MIN_MS:
                continue
            del self.held[key]
            if last is not None:
                self.kept[key] = (t, lat, lon, last[3])
            yield seq, t, key[0], record


def _position(record: dict[str, Any]) -> tuple[float, float]:
    lat, lon = record.get("lat"), record.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return float(lat), float(lon)
    return 0.0, 0.0


# -- chunks and blocks ---------------------------------------------------------------------


def line(seq: int, t: int, kind: str, op: str, data: bytes) -> bytes:
    """One chunk line; `data` is the record's JSON as the log holds it (not re-encoded)."""
    return b"[%d,%d,\"%s\",\"%s\",%s]" % (seq, t, kind.encode(), op.encode(), data)


def segment(lines: list[bytes]) -> bytes:
    """Lines compressed together. Callers order them by entity (kind, id, then seq): a
    unit's lines side by side share most of their bytes, which zlib's 32 KB window then
    finds (in seq order a unit's lines of one minute lie hundreds of KB apart); readers
    sort by seq again (`entries`)."""
    body = zlib.compress(b"\n".join(lines), 9)
    return SEGMENT.pack(len(body)) + body


def lines(chunk: bytes | None) -> Iterator[bytes]:
    """A chunk's lines (one entry each, JSON), segment after segment."""
    if not chunk:
        return
    at = 0
    while at + SEGMENT.size <= len(chunk):
        (size,) = SEGMENT.unpack_from(chunk, at)
        body = zlib.decompress(chunk[at + SEGMENT.size: at + SEGMENT.size + size])
        at += SEGMENT.size + size
        for text in body.split(b"\n"):
            if text:
                yield text


def entries(chunk: bytes | None) -> list[list[Any]]:
    """A chunk's entries [seq, t, kind, op, record], in seq order."""
    out = [orjson.loads(text) for text in lines(chunk)]
    out.sort(key=lambda entry: entry[0])
    return out


def blocks(raw: list[str | bytes]) -> list[tuple[str, bytes]]:
    """A keyframe list's records (raw JSON) as (hash, uncompressed body) blocks, sorted by
    id so a block whose records did not change hashes the same as last time; the body is
    compressed (`pack`) only when no keyframe stored it yet (most blocks: compressing
    them all was a third of a keyframe's time)."""
    keyed = []
    for item in raw:
        text = item.encode() if isinstance(item, str) else item
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # a record broken in Redis is no part of any picture
        if isinstance(record, dict):
            keyed.append((str(record.get("id")), text))
    keyed.sort()
    out = []
    for start in range(0, len(keyed), BLOCK_RECORDS):
        body = b"\n".join(text for _, text in keyed[start:start + BLOCK_RECORDS])
        out.append((hashlib.blake2b(body, digest_size=12).hexdigest(), body))
    return out


def pack(body: bytes) -> bytes:
    """A block's stored bytes (`block_records` reads them)."""
    return zlib.compress(body, 6)


def block_records(data: bytes | None) -> list[dict[str, Any]]:
    if not data:
        return []
    return [orjson.loads(text) for text in zlib.decompress(data).split(b"\n") if text]
