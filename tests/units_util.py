"""Writing workers, resources and events straight through the store's apply script (the same
Lua ingest uses), for tests that need a city of units without the pub/sub round trip."""

from __future__ import annotations

import json
import math
from typing import Any

from dashboard.store import Change, Store, day_of

TS = 1_795_312_800_000  # 2026-11-22 10:00 +08:00
# A point in Pingdu; offsets below are metres east of it.
LON0, LAT0 = 119.95, 36.78
DEFAULT_STATUS = {"worker": "on_duty", "resource": "available", "event": "reported"}


def east(metres: float, lon: float = LON0, lat: float = LAT0) -> tuple[float, float]:
    """The point `metres` east of (lon, lat) on the sphere Redis measures with."""
    return lon + math.degrees(metres / (6372797.560856 * math.cos(math.radians(lat)))), lat


def put(store: Store, entity_kind: str, entity_id: str, lon: float, lat: float, ts: int = TS,
        **fields: Any) -> dict[str, Any]:
    """Create or overwrite one record (revision-checked like ingest); returns it."""
    kind = entity_kind
    found = store.records(kind, [entity_id]).get(entity_id)
    rev = found[1] if found else "0"
    record = {"id": entity_id, "lon": round(lon, 6), "lat": round(lat, 6), "ts": ts,
              "received": ts, **fields}
    record.setdefault("status", DEFAULT_STATUS.get(kind, ""))
    extra: tuple[str, ...] = ()
    if kind == "event":
        record.setdefault("category", "accident")
        record.setdefault("first_ts", ts)
        extra = (str(record["severity"]), record["category"], "hotline", day_of(ts))
    outcome = store.apply([Change(kind, entity_id, ts, rev, json.dumps(record, ensure_ascii=False),
                                  record["status"], record["lon"], record["lat"], *extra)])
    assert outcome[0].code == 1, outcome
    return record


def worker(store: Store, entity_id: str, metres: float, **fields: Any) -> dict[str, Any]:
    lon, lat = east(metres)
    return put(store, "worker", entity_id, lon, lat, name=f"网格员{entity_id}", **fields)


def resource(store: Store, entity_id: str, kind: str, metres: float,
             **fields: Any) -> dict[str, Any]:
    lon, lat = east(metres)
    return put(store, "resource", entity_id, lon, lat, kind=kind, name=f"{kind}-{entity_id}",
               **fields)


def event(store: Store, entity_id: str, metres: float = 0.0, **fields: Any) -> dict[str, Any]:
    lon, lat = east(metres)
    fields.setdefault("type", "fire")
    fields.setdefault("severity", 2)
    fields.setdefault("title", "仓库起火")
    return put(store, "event", entity_id, lon, lat, **fields)
