"""Feed protocol v1 (docs/PROTOCOL.md): parse and validate one inbound message, free of I/O.

`parse(kind, raw)` returns an `Accepted` holding the normalised record, or a `Rejected`
holding a short machine code and a reason a person can read. Every record it accepts is
bounded: known fields by their own limits, lists by item count and size, and the unknown
fields a publisher adds by `EXTRAS_MAX_BYTES` together (over that they are dropped and the
record says so), so a stored record stays under `RECORD_MAX_BYTES`.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from dashboard import models
from dashboard.geo import to_wgs84

MAX_BYTES: Final = 64 * 1024
# Unknown fields are kept (the protocol says so) but only this many bytes of them, as JSON.
EXTRAS_MAX_BYTES: Final = 4 * 1024
LIST_MAX_BYTES: Final = 8 * 1024  # attachments, tags, photos: each list as JSON
# A merged record larger than this is refused (ingest dead-letters it as `too_large`).
RECORD_MAX_BYTES: Final = 64 * 1024
DEFAULT_MAX_FUTURE_MS: Final = 300_000
# What GEOADD accepts; a point beyond is stored but not indexed for "nearby" searches.
GEO_LAT_MAX: Final = 85.05112878
ID_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
URL_RE: Final = re.compile(r"https?://[^\s/$.?#][^\s]*\Z", re.IGNORECASE)
# Epoch milliseconds between 2000-01-01 and 2100-01-01: anything else is a unit mistake.
TS_MIN_MS: Final = 946_684_800_000
TS_MAX_MS: Final = 4_102_444_800_000

REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "event": ("id", "type", "severity", "lon", "lat", "ts"),
    "worker": ("id", "lon", "lat", "ts"),
    "resource": ("id", "kind", "lon", "lat", "ts"),
    "camera": ("id", "lon", "lat"),
    "feedback": ("task_id", "event_id", "actor_id", "stage", "ts"),
}


# Fields the protocol names, and those ingest adds; everything else is a publisher's extra.
KNOWN: Final[dict[str, frozenset[str]]] = {
    "event": frozenset({"id", "type", "severity", "lon", "lat", "ts", "title", "description",
                        "address", "source", "grid_id", "reporter", "status", "attachments",
                        "tags", "crs", "v"}),
    "worker": frozenset({"id", "lon", "lat", "ts", "name", "grid_id", "status", "phone",
                         "speed", "heading", "battery", "crs", "v"}),
    "resource": frozenset({"id", "kind", "lon", "lat", "ts", "name", "status", "unit",
                           "capacity", "crs", "v"}),
    "camera": frozenset({"id", "lon", "lat", "name", "stream_url", "stream_type", "online",
                         "ptz", "heading", "fov", "range_m", "ts", "crs", "v"}),
    "feedback": frozenset({"task_id", "event_id", "actor_id", "stage", "ts", "note", "photos",
                           "v"}),
}


@dataclass(frozen=True, slots=True)
class Accepted:
    kind: str
    id: str
    ts: int
    record: dict[str, Any]
    extras_dropped: bool = False  # unknown fields over EXTRAS_MAX_BYTES were left out


@dataclass(frozen=True, slots=True)
class Rejected:
    code: str
    reason: str


class _Invalid(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _str(msg: dict[str, Any], field: str, max_len: int = 2000) -> None:
    value = msg.get(field)
    if value is None:
        return
    if not isinstance(value, str):
        raise _Invalid("wrong_type", f"{field} must be a string")
    if len(value) > max_len:
        raise _Invalid("too_long", f"{field} is longer than {max_len} characters")


def _ident(msg: dict[str, Any], field: str, required: bool = False) -> None:
    value = msg.get(field)
    if value is None and not required:
        return
    if not isinstance(value, str) or not ID_RE.match(value):
        raise _Invalid("bad_id", f"{field} must be 1-64 characters of A-Z a-z 0-9 _ . : -")


def _number(
    msg: dict[str, Any], field: str, lo: float | None = None, hi: float | None = None
) -> None:
    value = msg.get(field)
    if value is None:
        return
    kind = type(value)  # the common case first: a plain float or int (bool is neither)
    if kind is not float and kind is not int and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise _Invalid("wrong_type", f"{field} must be a number")
    if kind is not int and not math.isfinite(value):
        raise _Invalid("out_of_range", f"{field} must be finite")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _Invalid("out_of_range", f"{field} must be between {lo} and {hi}")


def _choice(msg: dict[str, Any], field: str, allowed: tuple[str, ...]) -> None:
    value = msg.get(field)
    if value is None:
        return
    if value not in allowed:
        raise _Invalid("bad_value", f"{field} must be one of {', '.join(allowed)}")


def _bool(msg: dict[str, Any], field: str) -> None:
    value = msg.get(field)
    if value is not None and not isinstance(value, bool):
        raise _Invalid("wrong_type", f"{field} must be true or false")


def _list(msg: dict[str, Any], field: str, max_items: int = 100) -> None:
    value = msg.get(field)
    if value is None:
        return
    if not isinstance(value, list):
        raise _Invalid("wrong_type", f"{field} must be a list")
    if len(value) > max_items:
        raise _Invalid("too_long", f"{field} has more than {max_items} items")
    if value and len(orjson.dumps(value)) > LIST_MAX_BYTES:
        raise _Invalid("too_long", f"{field} is larger than {LIST_MAX_BYTES} bytes as JSON")


def parse_ts(value: Any, field: str = "ts") -> int:
    """ISO-8601 with an offset, or epoch milliseconds, → epoch milliseconds."""
    if isinstance(value, bool):
        raise _Invalid("wrong_type", f"{field} must be ISO-8601 text or epoch milliseconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _Invalid("bad_ts", f"{field} must be finite")
        ms = int(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _Invalid("bad_ts", f"{field} is not ISO-8601: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise _Invalid("bad_ts", f"{field} needs a UTC offset (e.g. +08:00)")
        ms = int(parsed.timestamp() * 1000)
    else:
        raise _Invalid("wrong_type", f"{field} must be ISO-8601 text or epoch milliseconds")
    if not TS_MIN_MS <= ms < TS_MAX_MS:
        hint = " (epoch seconds? send milliseconds)" if 946_684_800 <= ms < 4_102_444_800 else ""
        raise _Invalid("bad_ts", f"{field} is outside 2000-2100{hint}")
    return ms


def _coordinates(msg: dict[str, Any]) -> tuple[float, float]:
    """WGS-84 lon/lat, converted from the message's datum and checked again after it."""
    for field, hi in (("lon", 180.0), ("lat", 90.0)):
        value = msg[field]
        if type(value) is not float and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise _Invalid("wrong_type", f"{field} must be a number")
        if not math.isfinite(value) or not -hi <= value <= hi:
            raise _Invalid("bad_coordinates", f"{field} must be a finite number in ±{hi:g}")
    crs = msg.get("crs", "wgs84")
    if crs is None:
        crs = "wgs84"
    if not isinstance(crs, str) or crs.lower() not in models.CRS_CODES:
        raise _Invalid("bad_value", "crs must be wgs84, gcj02 or bd09")
    crs = crs.lower()
    lon, lat = float(msg["lon"]), float(msg["lat"])
    if crs != "wgs84":
        lon, lat = to_wgs84(lon, lat, crs)
        # BD-09's offset is applied everywhere: bd09 lon -180 becomes -180.0065
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
                and -90 <= lat <= 90):
            raise _Invalid("bad_coordinates",
                           f"lon/lat fall outside ±180/±90 once converted from {crs}")
        msg["src_crs"] = crs
    return round(lon, 6), round(lat, 6)


def _drop_extras(kind: str, record: dict[str, Any]) -> bool:
    """Leave out unknown fields when together they exceed EXTRAS_MAX_BYTES; True if so."""
    known = KNOWN[kind]
    extras = [key for key in record if key not in known]
    if not extras or len(orjson.dumps({k: record[k] for k in extras})) <= EXTRAS_MAX_BYTES:
        return False
    for key in extras:
        del record[key]
    return True


def _check_event(msg: dict[str, Any]) -> None:
    t = msg["type"]
    if not isinstance(t, str) or not 1 <= len(t) <= 64:
        raise _Invalid("wrong_type", "type must be a code of 1-64 characters")
    sev = msg["severity"]
    if isinstance(sev, bool) or not isinstance(sev, int) or sev not in models.SEVERITIES:
        raise _Invalid("bad_value", "severity must be an integer 1-4 (I-IV)")
    for field, limit in (("title", 200), ("description", 4000), ("address", 300)):
        _str(msg, field, limit)
    _str(msg, "reporter", 100)
    _choice(msg, "source", models.SOURCES)
    _choice(msg, "status", models.EVENT_STATUSES)
    _ident(msg, "grid_id")
    _list(msg, "attachments")
    _list(msg, "tags")


def _check_worker(msg: dict[str, Any]) -> None:
    _str(msg, "name", 100)
    _ident(msg, "grid_id")
    _choice(msg, "status", models.WORKER_STATUSES)
    _str(msg, "phone", 40)
    _number(msg, "speed", 0, 1000)
    _number(msg, "heading", 0, 360)
    _number(msg, "battery", 0, 100)


def _check_resource(msg: dict[str, Any]) -> None:
    _choice(msg, "kind", models.RESOURCE_KINDS)
    _str(msg, "name", 100)
    _choice(msg, "status", models.RESOURCE_STATUSES)
    _str(msg, "unit", 100)
    _number(msg, "capacity", 0)


def _check_camera(msg: dict[str, Any]) -> None:
    _str(msg, "name", 200)
    url = msg.get("stream_url")
    if url not in (None, "") and (
        not isinstance(url, str) or len(url) > 2000 or not URL_RE.match(url)
    ):
        raise _Invalid("bad_url", "stream_url must be an http(s) URL")
    _choice(msg, "stream_type", models.STREAM_TYPES)
    _bool(msg, "online")
    _bool(msg, "ptz")
    _number(msg, "heading", 0, 360)
    _number(msg, "fov", 0, 360)
    _number(msg, "range_m", 0, 100_000)


def _check_feedback(msg: dict[str, Any]) -> None:
    for field in ("task_id", "event_id", "actor_id"):
        _ident(msg, field, required=True)
    _choice(msg, "stage", models.FEEDBACK_STAGES)
    _str(msg, "note", 4000)
    _list(msg, "photos")


_CHECKS: Final = {
    "event": _check_event,
    "worker": _check_worker,
    "resource": _check_resource,
    "camera": _check_camera,
    "feedback": _check_feedback,
}


def _version(msg: dict[str, Any]) -> None:
    v = msg.get("v")
    if v is None:
        return
    major: object = v
    if isinstance(v, str):
        major = v.split(".", 1)[0]
        major = int(major) if major.isdigit() else major
    elif isinstance(v, float) and v.is_integer():
        major = int(v)
    if isinstance(major, bool) or major != 1:
        raise _Invalid("bad_version", f"unsupported protocol version {v!r}; this is v1")


def _validate(kind: str, raw: bytes | str, now_ms: int, max_future_ms: int) -> Accepted:
    if kind not in _CHECKS:
        raise _Invalid("bad_channel", f"unknown channel kind {kind!r}")
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise _Invalid("too_large", f"message is {size} bytes; the limit is {MAX_BYTES}")
    try:
        # orjson refuses NaN and Infinity, which are not JSON numbers.
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "utf-8" in str(exc).lower() or "surrogate" in str(exc).lower():
            raise _Invalid("not_utf8", "message is not valid UTF-8") from None
        raise _Invalid("not_json", f"not JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(msg, dict):
        raise _Invalid("not_object", f"message must be a JSON object, not {type(msg).__name__}")
    _version(msg)
    required = REQUIRED[kind]
    if None in map(msg.get, required):
        missing = [f for f in required if msg.get(f) is None]
        raise _Invalid("missing_field", f"missing required field(s): {', '.join(missing)}")
    _CHECKS[kind](msg)

    ts = parse_ts(msg["ts"]) if msg.get("ts") is not None else now_ms
    if ts > now_ms + max_future_ms:
        raise _Invalid("future", f"ts is {(ts - now_ms) / 1000:.0f} s ahead of receipt; "
                                 f"at most {max_future_ms // 1000} s is allowed (clock?)")
    record = msg
    dropped = _drop_extras(kind, record)
    record.pop("v", None)
    if kind == "feedback":
        entity_id = f"{msg['task_id']}"
    else:
        _ident(msg, "id", required=True)
        entity_id = msg["id"]
        record["lon"], record["lat"] = _coordinates(msg)
        record.pop("crs", None)
    record["ts"] = ts
    record["received"] = now_ms
    if kind == "event":
        # status is left absent when not sent: an update must not reset it (ingest merges).
        record["category"] = models.category_of(msg["type"])
    return Accepted(kind, entity_id, ts, record, dropped)


def parse(kind: str, raw: bytes | str, now_ms: int | None = None,
          max_future_ms: int = DEFAULT_MAX_FUTURE_MS) -> Accepted | Rejected:
    """Validate one message from channel `kind`; never raises on bad input.

    A `ts` more than `max_future_ms` after `now_ms` (the time it was received) is refused
    as `future`: stored, it would make every true update after it look stale."""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    try:
        return _validate(kind, raw, now_ms, max_future_ms)
    except _Invalid as exc:
        return Rejected(exc.code, exc.reason)
    except TypeError as exc:  # orjson reads 1,024 levels of nesting but writes only 254
        return Rejected("too_deep", f"cannot be stored as JSON: {exc}")
