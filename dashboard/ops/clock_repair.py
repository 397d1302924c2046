"""The way out of a far-future `ts`: records a bad clock stamped ahead of now.

Newer wins, so a record stored with a `ts` a year ahead refuses every true update as stale.
Ingest refuses such messages now (code `future`), but records stored before that, or through
a clock that was only slightly wrong for a long time, stay frozen until their `ts` is brought
back: `python app.py repair-clock` finds every record whose stored `ts` is more than
`CC_MAX_FUTURE_S` ahead and sets it to when ingest received it (or now), under the same
compare-and-set as every other writer, so nothing written meanwhile is overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from dashboard import lua
from dashboard.models import STATEFUL_KINDS
from dashboard.store import Store

_REPAIR: Final = lua.source(__file__, "clock_repair.lua")


@dataclass(frozen=True)
class Frozen:
    """A record whose stored ts is ahead of now."""

    kind: str
    id: str
    ts: int  # stored
    repaired_ts: int  # what it is (or would be) set to


def repair_future(store: Store, now_ms: int, max_future_ms: int,
                  dry_run: bool = False) -> list[Frozen]:
    """Bring back every stored ts more than `max_future_ms` ahead of `now_ms`."""
    script = store.r.register_script(_REPAIR)
    found: list[Frozen] = []
    for kind in STATEFUL_KINDS:
        meta_key, state_key = store.key(f"meta:{kind}"), store.key(f"state:{kind}")
        for raw_id, raw_meta in store.r.hscan_iter(meta_key, count=1000):
            entity_id, meta = _text(raw_id), _text(raw_meta)
            rev, ts, status = meta.split("|", 2)
            if int(ts) <= now_ms + max_future_ms:
                continue
            state = store.r.hget(state_key, entity_id)
            record = json.loads(state) if state else {}
            received = record.get("received")
            fixed = received if isinstance(received, int) and received <= now_ms else now_ms
            found.append(Frozen(kind, entity_id, int(ts), fixed))
            if dry_run or not state:
                continue
            record["ts"] = fixed
            script(keys=[meta_key, state_key],
                   args=[entity_id, meta, f"{rev}|{fixed}|{status}",
                         json.dumps(record, ensure_ascii=False)])
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
