"""Redis state: atomic batched upserts, snapshot, change log, dead letters and counters.

Key layout: docs/REDIS-KEYS.md. Every accepted change is applied by one Lua script that
checks staleness and the record revision (compare-and-set, so several ingest processes can
run at once), writes state, geo and counters, takes the next sequence number, appends to
the capped log stream under id `{seq}-0` and publishes the frames for the relay.
"""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

import redis

from dashboard import lua
from dashboard.connect import check_prefix, dedicated_connection, home_node
from dashboard.scope import sees

RECENT_EVENTS_MS: Final = 24 * 3600 * 1000
SNAPSHOT_EVENTS_MAX: Final = 2000
# Relays: each writes its own field of `Prelay:hb` (no relay overwrites another's); a field
# this much older than now is read as gone, and one older than RELAY_FORGET_MS is deleted by
# the next relay to beat (a SIGKILLed relay cannot clean up after itself).
RELAY_FRESH_MS: Final = 10_000
RELAY_FORGET_MS: Final = 60_000
HEARTBEAT_TTL_S: Final = 15

APPLY_LUA: Final = lua.source(__file__, "store_apply.lua")


SNAPSHOT_LUA: Final = lua.source(__file__, "store_snapshot.lua")


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def _day_of_hour(hour: int, tz: str) -> str:
    return datetime.fromtimestamp(hour * 3600, _zone(tz)).strftime("%Y-%m-%d")


def now_ms() -> int:
    """Wall-clock epoch milliseconds: the default clock (tests pass their own)."""
    return int(time.time() * 1000)


def day_of(ts_ms: int, tz: str = "Asia/Shanghai") -> str:
    """The local calendar day of an epoch-ms time (cached per hour: zones shift by whole hours
    or half hours, and no zone we serve shifts by a fraction of an hour at a day boundary)."""
    return _day_of_hour(ts_ms // 3_600_000, tz)


@dataclass(frozen=True, slots=True)
class Change:
    """One accepted, merged record ready to be applied."""

    kind: str
    id: str
    ts: int
    rev: str
    json: str | bytes  # UTF-8 JSON text; bytes as orjson gives it are sent without a copy
    status: str
    lon: float
    lat: float
    severity: str = ""
    category: str = ""
    source: str = ""
    day: str = ""

    def args(self) -> tuple[str | int | float, ...]:
        """APPLY_LUA's arguments: 8, and for events 4 more (fewer to pack for moves)."""
        if self.kind == "event":
            return (self.kind, self.id, self.ts, self.rev, self.json, self.status, self.lon,
                    self.lat, self.severity, self.category, self.source, self.day)
        return (self.kind, self.id, self.ts, self.rev, self.json, self.status, self.lon,
                self.lat)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the script did with one change."""

    code: int  # APPLIED, STALE, CONFLICT, DUPLICATE or REFUSED
    rev: str
    seq: int = 0
    op: str = ""
    stored_ts: int = 0
    stored: str = ""
    reason: str = ""  # why a change was refused


APPLIED: Final = 1
STALE: Final = 0  # older than the stored ts
CONFLICT: Final = -1  # another writer moved the revision: merge again
DUPLICATE: Final = 2  # the stored (id, ts) again: nothing written
REFUSED: Final = -2  # cannot be stored (out of range, a key of the wrong type…): no trace


def out_of_memory(exc: redis.ResponseError) -> bool:
    """The server refused a write for want of memory: a state of the store, not of a change."""
    return isinstance(exc, redis.exceptions.OutOfMemoryError) or str(exc).startswith("OOM")


def redirected(exc: redis.ResponseError) -> bool:
    """A cluster node said the prefix's slot is (being) served elsewhere: the slot moved, or
    its master failed over. A state of the store, not of a change."""
    return isinstance(exc, (redis.exceptions.AskError, redis.exceptions.TryAgainError,
                            redis.exceptions.ClusterDownError)) or str(exc).startswith(
        ("MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN"))


class Store:
    """Typed access to the command wall's Redis state."""

    def __init__(self, client: redis.Redis, prefix: str = "cc:", log_maxlen: int = 200_000,
                 deadletter_max: int = 10_000, deadletter_raw_bytes: int = 4096) -> None:
        check_prefix(client, prefix)  # an untagged prefix on a cluster: refuse at start-up
        self.r = client
        self.prefix = prefix
        # Scripts build their keys from the prefix (ARGV[1]); this key of the prefix goes in
        # KEYS so a cluster routes each script to the prefix's slot (docs/REDIS-KEYS.md).
        self.anchor = prefix + "seq"
        self.log_maxlen = log_maxlen
        self.deadletter_max = deadletter_max
        self.deadletter_raw_bytes = deadletter_raw_bytes
        self._snapshot = client.register_script(SNAPSHOT_LUA)
        self._apply_conn: Any = None
        self._emit: Callable[..., Any] | None = None
        self._restate: Callable[..., Any] | None = None

    def key(self, name: str) -> str:
        return self.prefix + name

    # -- writes -----------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], *, replay: bool = False,
              mark: str = "") -> list[Outcome]:
        """Apply changes atomically, in order; one round trip."""
        if not changes:
            return []
        self.send_apply(changes, replay=replay, mark=mark)
        return self.read_apply()

    def apply_isolating(self, changes: Sequence[Change], *, replay: bool = False,
                        mark: str = "", refused: redis.ResponseError | None = None,
                        ) -> list[Outcome]:
        """`apply`, and when the server refuses the batch, apply it in halves until each
        change that fails alone is found: that one is REFUSED with the server's words, the
        rest are applied. The script fails before its first write, so a refused batch left
        nothing behind. `refused`: the server already refused these (start with halves).
        Out of memory is not the change's fault and is raised; a moved slot is raised as a
        lost connection."""
        exc = refused
        if exc is None:
            try:
                return self.apply(changes, replay=replay, mark=mark)
            except redis.ResponseError as error:
                exc = error
        if out_of_memory(exc):
            raise exc
        if redirected(exc):
            # The apply connection is pinned to the slot's old master: what follows a lost
            # connection (a new client that asks where the slot is now; the standby replays
            # its ring) follows a moved slot too, instead of refusing every change of it.
            raise redis.ConnectionError(f"the prefix's slot moved: {exc}") from exc
        if len(changes) == 1:
            return [Outcome(REFUSED, "", reason=str(exc)[:300])]
        mid = len(changes) // 2
        return (self.apply_isolating(changes[:mid], replay=replay, mark=mark)
                + self.apply_isolating(changes[mid:], replay=replay, mark=mark))

    def send_apply(self, changes: Sequence[Change], *, replay: bool = False,
                   mark: str = "") -> None:
        """Send a batch without waiting for the answer; `read_apply` reads answers in order.

        One dedicated connection keeps batches in order. EVAL (not EVALSHA) so a restarted,
        empty server never answers NOSCRIPT; the server caches the compiled script anyway.
        `replay`: the changes may have been applied already (a standby taking over), so one
        older than the stored ts is a duplicate, not stale. `mark`: where the feed got to.
        """
        argv: list[str | int | float] = [self.prefix, self.log_maxlen, len(changes),
                                         int(time.time() * 1000), "1" if replay else "",
                                         mark]
        for change in changes:
            argv.extend(change.args())
        if self._apply_conn is None:
            self._apply_conn = dedicated_connection(self.r, self.anchor)
        try:
            self._apply_conn.send_command("EVAL", APPLY_LUA, 1, self.anchor, *argv)
        except (redis.ConnectionError, OSError):
            self.close_apply()
            raise

    def read_apply(self) -> list[Outcome]:
        """The next batch's outcomes; raises `redis.ResponseError` when the server refused
        the whole batch (the connection stays usable for the batches behind it)."""
        try:
            raw = self._apply_conn.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self.close_apply()
            raise
        outcomes: list[Outcome] = []
        for item in raw:
            code, rev = item[0], item[1]
            if type(rev) is bytes:  # str when the client decodes responses
                rev = rev.decode()
            if code == APPLIED:
                op = item[3]
                outcomes.append(Outcome(1, rev, item[2], op.decode() if type(op) is bytes else op))
            elif code == DUPLICATE:
                outcomes.append(Outcome(DUPLICATE, rev))
            elif code == STALE:
                outcomes.append(Outcome(STALE, rev, stored_ts=int(_text(item[2]))))
            elif code == REFUSED:
                outcomes.append(Outcome(REFUSED, "", reason=rev))
            else:
                outcomes.append(Outcome(CONFLICT, rev, stored=_text(item[2])))
        return outcomes

    def close_apply(self) -> None:
        if self._apply_conn is not None:
            self._apply_conn.disconnect()
            self._apply_conn = None

    def dead_letter(self, channel: str, raw: bytes | str, code: str, reason: str,
                    pipe: Any | None = None) -> None:
        """Keep a rejected message with its reason; the list is capped, the counter is not.

        Each letter keeps at most `deadletter_raw_bytes` of the raw message (its full size is
        noted), so the list's worst case is count × that, whatever publishers send."""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
        cap = self.deadletter_raw_bytes
        # Invalid bytes read as U+FFFD and a character cut in half is left out; U+FFFD is
        # 3 bytes for 1, so the text is cut to the cap once more.
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(data[:cap])
        text = text.encode()[:cap].decode("utf-8", "ignore")
        entry = {
            "ts": int(time.time() * 1000), "channel": channel, "code": code,
            "reason": reason[:500], "size": len(data), "raw": text,
            "truncated": len(data) > cap,
        }
        target = pipe if pipe is not None else self.r.pipeline(transaction=False)
        target.lpush(self.key("deadletter"), json.dumps(entry, ensure_ascii=False))
        target.ltrim(self.key("deadletter"), 0, self.deadletter_max - 1)
        target.incr(self.key("deadletter:count"))
        target.hincrby(self.key("deadletter:reasons"), code, 1)
        if pipe is None:
            target.execute()

    def script(self, body: str) -> Callable[..., Any]:
        """A Lua script built on the prelude (dashboard/prelude.lua); call it with its own
        arguments (ARGV[3]…)."""
        registered = self.r.register_script(lua.PRELUDE + body)

        def call(*args: str | int | float) -> Any:
            return registered(keys=[self.anchor], args=[self.prefix, self.log_maxlen, *args])

        return call

    def emit(self, kind: str, op: str, data: dict[str, Any] | str) -> int:
        """Append one frame of any kind to the change log and the walls; returns its seq."""
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        if self._emit is None:
            self._emit = self.script(lua.source(__file__, "store_emit.lua"))
        return int(self._emit(kind, op, text))

    def restate(self, kind: str, record: dict[str, Any], status: str, rev: str,
                now_ms: int | None = None) -> str | None:
        """Write `record` with a new `status` if its revision is still `rev` ('' = any).

        The stored `ts` is kept and `status_ts` set, so the next fix from the field is not
        refused as stale. Returns the new revision, or None when someone wrote first."""
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        record = {**record, "status": status, "status_ts": now_ms}
        if self._restate is None:
            self._restate = self.script(lua.source(__file__, "store_restate.lua"))
        out = self._restate(kind, record["id"], json.dumps(record, ensure_ascii=False),
                            status, rev, now_ms, day_of(now_ms))
        return _text(out) if out else None


    # -- reads ------------------------------------------------------------------------

    def records(self, kind: str, ids: Iterable[str]) -> dict[str, tuple[dict[str, Any], str]]:
        """Stored records with their revision, for the ids that exist."""
        ids = list(ids)
        if not ids:
            return {}
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(self.key(f"state:{kind}"), ids)
        pipe.hmget(self.key(f"meta:{kind}"), ids)
        states, metas = pipe.execute()
        found: dict[str, tuple[dict[str, Any], str]] = {}
        for entity_id, state, meta in zip(ids, states, metas, strict=True):
            if state is not None and meta is not None:
                found[entity_id] = (json.loads(state), _text(meta).split("|", 1)[0])
        return found

    def snapshot_parts(self, now_ms: int | None = None) -> dict[str, Any]:
        """Sequence number and raw JSON records, read atomically."""
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        seq, events, workers, resources, cameras, tasks, alerts = self._snapshot(
            keys=[self.anchor],
            args=[self.prefix, now_ms - RECENT_EVENTS_MS, SNAPSHOT_EVENTS_MAX]
        )
        return {
            "seq": int(_text(seq)),
            "events": [_text(e) for e in events],
            "workers": [_text(w) for w in workers],
            "resources": [_text(x) for x in resources],
            "cameras": [_text(c) for c in cameras],
            "tasks": [_text(t) for t in tasks],
            "alerts": [_text(a) for a in alerts],
        }

    def seq(self) -> int:
        return int(self.r.get(self.key("seq")) or 0)

    def log_since(self, since: int, count: int) -> list[tuple[int, str, str, str]]:
        """Log entries after `since`: (seq, kind, op, json), oldest first."""
        entries = self.r.xrange(self.key("log"), min=f"({since}-0", max="+", count=count)
        out = []
        for entry_id, fields in entries:
            seq = int(_text(entry_id).split("-", 1)[0])
            f = {_text(k): _text(v) for k, v in fields.items()}
            out.append((seq, f["k"], f["o"], f["d"]))
        return out

    def mark_fork(self, seq: int) -> None:
        """The log may differ from what walls were sent up to `seq` (a promoted replica lacked
        the last writes): a wall resuming at or below it gets a snapshot. Only ever raised."""
        self.r.zadd(self.key("log:fork"), {"seq": seq}, gt=True)

    def fork(self) -> int:
        """The highest seq the walls may have been sent from another history (0: none)."""
        return int(self.r.zscore(self.key("log:fork"), "seq") or 0)

    def log_first_seq(self) -> int | None:
        first = self.r.xrange(self.key("log"), count=1)
        return int(_text(first[0][0]).split("-", 1)[0]) if first else None

    def event(self, event_id: str) -> dict[str, Any] | None:
        raw = self.r.hget(self.key("state:event"), event_id)
        return json.loads(raw) if raw else None

    def timeline(self, event_id: str) -> list[dict[str, Any]]:
        """The event's status changes, oldest first."""
        return [json.loads(x) for x in self.r.lrange(self.key(f"timeline:{event_id}"), 0, -1)]

    def events(self, *, status: str | None = None, severity: int | None = None,
               limit: int = 100, scan: int = 5000,
               scope: str | None = None) -> list[dict[str, Any]]:
        """Newest first, filtered (by a user's scope too); looks at the newest `scan` events
        at most."""
        ids = self.r.zrevrange(self.key("events:ts"), 0, scan - 1)
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for raw in self.r.hmget(self.key("state:event"), chunk):
                if raw is None:
                    continue
                event = json.loads(raw)
                if status is not None and event.get("status") != status:
                    continue
                if severity is not None and event.get("severity") != severity:
                    continue
                if scope and not sees(scope, event):
                    continue
                out.append(event)
                if len(out) >= limit:
                    return out
        return out

    def nearby(self, kind: str, lon: float, lat: float, radius_m: float,
               count: int = 10) -> list[tuple[str, float]]:
        """Ids of `kind` within `radius_m`, nearest first, with distance in metres."""
        rows = self.r.geosearch(
            self.key(f"geo:{kind}"), longitude=lon, latitude=lat, radius=radius_m, unit="m",
            sort="ASC", count=count, withdist=True,
        )
        return [(_text(row[0]), float(row[1])) for row in rows]

    def health(self) -> dict[str, Any]:
        """Heartbeats of ingest (active and standby), relay and watch (decoded; empty when
        expired), rejects, seq."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.key("ingest:hb"))
        pipe.hgetall(self.key("relay:hb"))
        pipe.get(self.key("deadletter:count"))
        pipe.get(self.key("seq"))
        pipe.hgetall(self.key("watch:hb"))
        pipe.hgetall(self.key("ingest:standby"))
        ingest, relay, dead, seq, watch, standby = pipe.execute()
        return {"ingest": _decoded(ingest), "relay": relays(relay, int(time.time() * 1000)),
                "watch": _decoded(watch), "standby": _decoded(standby),
                "deadletters": int(dead or 0), "seq": int(seq or 0)}

    def relay_beat(self, instance: str, clients: int) -> None:
        """One relay's heartbeat: its own field of `Prelay:hb`, so relays side by side never
        overwrite each other; fields of relays long gone are deleted on the way."""
        key = self.key("relay:hb")
        now = int(time.time() * 1000)
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(key, instance, json.dumps({"ts": now, "clients": clients}))
        pipe.expire(key, HEARTBEAT_TTL_S)
        pipe.hgetall(key)
        beats = pipe.execute()[-1]
        gone = [field for field, value in beats.items()
                if now - int(_beat(value).get("ts") or 0) > RELAY_FORGET_MS]
        if gone:
            self.r.hdel(key, *gone)

    def memory(self) -> dict[str, int]:
        """The server's used memory and its maxmemory (0: no limit), in bytes."""
        # on a cluster, the master that holds this prefix's slot (INFO goes to any node)
        info = home_node(self.r, self.prefix).info("memory")
        return {"used_memory": int(info.get("used_memory", 0)),
                "maxmemory": int(info.get("maxmemory", 0))}

    def stats(self, day: str) -> dict[str, Any]:
        """Today's counters for the wall's KPI tiles."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.key(f"stat:{day}"))
        pipe.scard(self.key("events:open"))
        pipe.hgetall(self.key("count:event"))
        pipe.hgetall(self.key("count:worker"))
        pipe.get(self.key("deadletter:count"))
        pipe.hgetall(self.key("ingest:hb"))
        day_stats, open_count, by_status, workers, dead, hb = pipe.execute()
        day_stats = {_text(k): int(v) for k, v in day_stats.items()}
        by_status = {_text(k): int(v) for k, v in by_status.items()}
        workers = {_text(k): int(v) for k, v in workers.items()}
        hb = _decoded(hb)

        def group(prefix: str) -> dict[str, int]:
            return {k[len(prefix):]: v for k, v in day_stats.items() if k.startswith(prefix) and v}

        return {
            "day": day,
            "today": day_stats.get("total", 0),
            "open": int(open_count),
            "in_progress": by_status.get("dispatched", 0) + by_status.get("in_progress", 0),
            "closed_today": day_stats.get("closed", 0),
            "by_severity": group("sev:"),
            "by_category": group("cat:"),
            "by_source": group("src:"),
            "workers_online": sum(v for k, v in workers.items() if k != "off_duty"),
            "workers_sos": workers.get("sos", 0),
            "last_ts": int(hb.get("last_ts") or 0),
            "ingest_rate": float(hb.get("rate") or 0.0),
            "deadletters": int(dead or 0),
            "degraded": bool(hb.get("degraded")),
        }


def relays(beats: dict[Any, Any], now_ms: int) -> dict[str, str]:
    """Every relay's field of `Prelay:hb` read as one heartbeat, as health judges it: `ts` of
    the freshest, `clients` summed and `relays` counted over those beating in the last
    RELAY_FRESH_MS; empty when none ever beat."""
    parsed = [_beat(value) for value in beats.values()]
    stamps = [int(b.get("ts") or 0) for b in parsed]
    if not any(stamps):
        return {}
    fresh = [b for b, ts in zip(parsed, stamps, strict=True) if now_ms - ts < RELAY_FRESH_MS]
    return {"ts": str(max(stamps)), "relays": str(len(fresh)),
            "clients": str(sum(int(b.get("clients") or 0) for b in fresh))}


def _beat(value: Any) -> dict[str, Any]:
    """One relay's field; anything else in the hash (a relay of an older release wrote `ts`
    and `clients` as fields of their own) counts as no beat."""
    try:
        beat = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return beat if isinstance(beat, dict) else {}


def _decoded(mapping: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in mapping.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
