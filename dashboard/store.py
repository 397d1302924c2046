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

from dashboard.scope import sees

RECENT_EVENTS_MS: Final = 24 * 3600 * 1000
SNAPSHOT_EVENTS_MAX: Final = 2000

APPLY_LUA: Final = r"""#!lua
-- The shebang makes the server refuse the whole script when it is out of memory, before any
-- write, instead of failing at a write in the middle (scripts are not rolled back).
local P, maxlen, n, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local replay, mark = ARGV[5] == '1', ARGV[6]
local out, frames = {}, {}
-- Each change is 8 arguments, events 12 (severity, category, source, day). A layout that
-- does not add up is a caller's bug: refuse the batch before any write (ingest then applies
-- it in halves to find the change at fault).
local base, ids = {}, {}
local b = 6
for i = 1, n do
  base[i] = b
  local kind = ARGV[b+1]
  if kind == 'event' then b = b + 12 else b = b + 8 end
end
if b ~= #ARGV then
  return redis.error_reply('ERR apply: ' .. #ARGV .. ' arguments for ' .. n .. ' changes')
end
-- Every check that can fail runs before the first write, so a refused change leaves no
-- trace: no log entry, no counter, no set member, and seq stays the log's last id.
local KINDS = {event = true, worker = true, resource = true, camera = true, feedback = true}
local typecache = {}
local function wrong_type(key, want)
  local t = typecache[key]
  if not t then
    t = redis.call('TYPE', key)['ok']
    typecache[key] = t
  end
  if t ~= 'none' and t ~= want then return key .. ' holds a ' .. t .. ', not a ' .. want end
  return nil
end
-- the keys every change of a kind touches, checked once per kind
local kindbad = {}
local function kind_keys(kind)
  if kindbad[kind] == nil then
    local bad = wrong_type(P .. 'log', 'stream')
    if kind == 'feedback' then
      bad = bad or wrong_type(P .. 'feedback:seen', 'zset')
    else
      bad = bad or wrong_type(P .. 'state:' .. kind, 'hash')
        or wrong_type(P .. 'meta:' .. kind, 'hash') or wrong_type(P .. 'count:' .. kind, 'hash')
        or wrong_type(P .. 'geo:' .. kind, 'zset')
    end
    kindbad[kind] = bad or false
  end
  return kindbad[kind] or nil
end
local function check(i)
  local b = base[i]
  local kind, id, ts, rev = ARGV[b+1], ARGV[b+2], tonumber(ARGV[b+3]), tonumber(ARGV[b+4])
  local rec, status = ARGV[b+5], ARGV[b+6]
  if not KINDS[kind] then return 'unknown kind ' .. kind end
  if id == '' then return 'empty id' end
  if not ts or ts ~= math.floor(ts) then return 'ts is not an integer' end
  if not rev then return 'revision is not a number' end
  if string.byte(rec, 1) ~= 123 or string.byte(rec, -1) ~= 125 then
    return 'record is not a JSON object'
  end
  if string.find(status, '|', 1, true) then return 'status holds a |' end
  local bad = kind_keys(kind)
  if kind == 'feedback' then return bad end
  local lon, lat = tonumber(ARGV[b+7]), tonumber(ARGV[b+8])
  if not lon or not lat or lon ~= lon or lat ~= lat or math.abs(lon) > 180
      or math.abs(lat) > 90 then
    return 'lon/lat out of range: ' .. ARGV[b+7] .. ', ' .. ARGV[b+8]
  end
  if kind == 'event' then
    if ARGV[b+9] == '' or not string.match(ARGV[b+12], '^%d%d%d%d%-%d%d%-%d%d$') then
      return 'event without severity or day'
    end
    bad = bad or wrong_type(P .. 'events:open', 'set') or wrong_type(P .. 'events:ts', 'zset')
      or wrong_type(P .. 'stat:' .. ARGV[b+12], 'hash')
      or wrong_type(P .. 'timeline:' .. id, 'list')
  end
  return bad
end
local refused = {}
for i = 1, n do
  local why = check(i)
  if why then
    refused[i] = why
  else
    local kind = ARGV[base[i]+1]
    if kind ~= 'feedback' then
      if not ids[kind] then ids[kind] = {} end
      ids[kind][#ids[kind] + 1] = ARGV[base[i]+2]
    end
  end
end
-- seq is taken here and written back once: the script is atomic, so no one sees between.
-- A seq behind the log (an operator's reset) would make XADD refuse every entry: go on
-- from the log's last id instead.
local seq = tonumber(redis.call('GET', P .. 'seq') or '0') or 0
local top = redis.call('XREVRANGE', P .. 'log', '+', '-', 'COUNT', 1)[1]
if top then
  local top_seq = tonumber(string.match(top[1], '^(%d+)'))
  if top_seq > seq then seq = top_seq end
end
local seq0 = seq
local changed = false  -- the cockpit's figures moved: Pstats:ver is bumped once at the end
-- Counters are derived figures: one an operator overwrote with text must not refuse the
-- change after its first writes (pcall: the counter stays as it was, the change is stored).
local function bump(key, field, by)
  if field ~= '' then redis.pcall('HINCRBY', key, field, by) end
end
-- one command for many entries, in chunks that stay well inside unpack's limit
local function bulk(cmd, key, flat, width)
  local step = 300 * width
  for k = 1, #flat, step do
    redis.call(cmd, key, unpack(flat, k, math.min(k + step - 1, #flat)))
  end
end
-- Metas are read with one HMGET per kind; state, meta and (but for events) geo are written
-- once per kind at the end. The batch sees its own writes through these tables, so a second
-- change of the same id in the batch checks against the first.
local metas, states, geo, written = {}, {}, {}, {}
for kind, list in pairs(ids) do
  local m = {}
  for k = 1, #list, 500 do
    local chunk = {unpack(list, k, math.min(k + 499, #list))}
    local vals = redis.call('HMGET', P .. 'meta:' .. kind, unpack(chunk))
    for j = 1, #chunk do m[chunk[j]] = vals[j] end
  end
  metas[kind], states[kind], geo[kind], written[kind] = m, {}, {}, {}
end
local seen = {}  -- feedback (task|stage|ts) applied: a repeat is a duplicate
for i = 1, n do
  b = base[i]
  local kind, id, ts, rev = ARGV[b+1], ARGV[b+2], tonumber(ARGV[b+3]), ARGV[b+4]
  local rec, status = ARGV[b+5], ARGV[b+6]
  local result
  if refused[i] then
    result = {-2, refused[i]}
  elseif kind == 'feedback' then
    local key = id .. '|' .. status .. '|' .. ARGV[b+3]  -- task|actor|stage|ts
    if seen[key] or redis.call('ZSCORE', P .. 'feedback:seen', key) then
      result = {2, '0'}
    else
      seen[key] = true
      redis.call('ZADD', P .. 'feedback:seen', now, key)
      result = {1, '0'}
    end
  else
    -- meta is "rev|ts|status": one read gives the revision, the stored ts and status
    local meta = metas[kind][id]
    local cur_rev, cur_ts, cur_status = '0', nil, nil
    if meta then
      local a = string.find(meta, '|', 1, true)
      local c = string.find(meta, '|', a + 1, true)
      cur_rev = string.sub(meta, 1, a - 1)
      cur_ts = tonumber(string.sub(meta, a + 1, c - 1))
      cur_status = string.sub(meta, c + 1)
    end
    if cur_ts and (ts == cur_ts or (replay and ts < cur_ts)) then
      -- the stored (id, ts) again: a publisher's repeat, or a standby replaying what the
      -- active ingest had applied before it died
      result = {2, cur_rev}
    elseif cur_ts and ts < cur_ts then
      result = {0, cur_rev, tostring(cur_ts)}
    elseif cur_rev ~= rev then
      result = {-1, cur_rev,
        states[kind][id] or redis.call('HGET', P .. 'state:' .. kind, id) or ''}
    else
      local newrev = tostring(tonumber(cur_rev) + 1)
      local lon, lat = ARGV[b+7], ARGV[b+8]
      states[kind][id] = rec
      metas[kind][id] = newrev .. '|' .. ARGV[b+3] .. '|' .. status
      written[kind][id] = true
      if kind == 'event' or (kind == 'worker' and cur_status ~= status) then changed = true end
      if cur_status ~= status then
        if cur_status then bump(P .. 'count:' .. kind, cur_status, -1) end
        bump(P .. 'count:' .. kind, status, 1)
      end
      local op = 'upsert'
      if kind == 'event' then
        local day = P .. 'stat:' .. ARGV[b+12]
        if status ~= 'closed' and status ~= 'cancelled' then
          if math.abs(tonumber(lat)) <= 85.05112878 then  -- GEOADD's range, as below
            redis.call('GEOADD', P .. 'geo:event', lon, lat, id)
          end
          redis.call('SADD', P .. 'events:open', id)
        else
          redis.call('ZREM', P .. 'geo:event', id)
          redis.call('SREM', P .. 'events:open', id)
        end
        if not meta then
          redis.call('ZADD', P .. 'events:ts', 'NX', ts, id)
          bump(day, 'total', 1)
          bump(day, 'sev:' .. ARGV[b+9], 1)
          bump(day, 'cat:' .. ARGV[b+10], 1)
          bump(day, 'src:' .. ARGV[b+11], 1)
          -- day counters are kept 400 days; the archive (issue 5) keeps the history
          redis.call('EXPIRE', day, 34560000)
        end
        if cur_status ~= status then
          if status == 'closed' then bump(day, 'closed', 1) end
          local tl = P .. 'timeline:' .. id
          redis.call('RPUSH', tl, '{"ts":' .. ARGV[b+3] .. ',"status":"' .. status .. '"}')
          redis.call('LTRIM', tl, -200, -1)
          redis.call('EXPIRE', tl, 34560000)
        end
      else
        geo[kind][id] = b
        -- same status: a move (cameras too: 42,000 re-reporting are hundreds a second, and
        -- the relay coalesces moves; an online/offline change stays an upsert, sent at once)
        if meta and cur_status == status then op = 'move' end
      end
      result = {1, newrev, op}
    end
  end
  if result[1] == 1 then
    local op = result[3] or 'upsert'
    seq = seq + 1
    redis.call('XADD', P .. 'log', 'MAXLEN', '~', maxlen, seq .. '-0',
      'k', kind, 'o', op, 'd', rec)
    frames[#frames + 1] = '{"type":"delta","seq":' .. seq .. ',"kind":"' .. kind ..
      '","op":"' .. op .. '","data":' .. rec .. '}'
    result = {1, result[2], seq, op}
  end
  out[i] = result
end
if seq ~= seq0 then redis.call('SET', P .. 'seq', seq) end
if changed then redis.pcall('INCR', P .. 'stats:ver') end
if next(seen) then  -- repeats of feedback older than a day are not looked for
  redis.call('ZREMRANGEBYSCORE', P .. 'feedback:seen', '-inf', tonumber(now) - 86400000)
end
for kind, done in pairs(written) do
  local st, mt = {}, {}
  for id in pairs(done) do
    st[#st + 1] = id; st[#st + 1] = states[kind][id]
    mt[#mt + 1] = id; mt[#mt + 1] = metas[kind][id]
  end
  if #st > 0 then
    bulk('HSET', P .. 'state:' .. kind, st, 2)
    bulk('HSET', P .. 'meta:' .. kind, mt, 2)
  end
  local g = {}
  for id, at in pairs(geo[kind]) do  -- the last position of each id in the batch
    -- GEOADD refuses |lat| > 85.05 (valid WGS-84 all the same): such a point is stored but
    -- not indexed
    if math.abs(tonumber(ARGV[at+8])) <= 85.05112878 then
      g[#g + 1] = ARGV[at+7]; g[#g + 1] = ARGV[at+8]; g[#g + 1] = id
    end
  end
  if #g > 0 then bulk('GEOADD', P .. 'geo:' .. kind, g, 3) end
end
-- where the active ingest got to in its feed, for a standby taking over
if mark ~= '' then redis.call('SET', P .. 'ingest:mark', mark) end
if #frames > 0 then
  redis.call('PUBLISH', P .. 'ui', '[' .. table.concat(frames, ',') .. ']')
end
return out
"""

# Shared by every script that changes what walls see (dispatch, the watch service): each
# script is LUA_LIB + its body, called with ARGV[1] = prefix, ARGV[2] = log maxlen, and its
# own arguments from ARGV[3]. Records are built in Python (JSON stays Python's); scripts only
# check revisions and write, so a GPS fix that lands in between makes the caller retry.
LUA_LIB: Final = r"""
local P, MAXLEN = ARGV[1], tonumber(ARGV[2])
local REV_JUMP = 1000000
local FRAMES = {}
local function emit(kind, op, data)
  local seq = redis.call('INCR', P .. 'seq')
  redis.call('XADD', P .. 'log', 'MAXLEN', '~', MAXLEN, seq .. '-0', 'k', kind, 'o', op,
    'd', data)
  FRAMES[#FRAMES + 1] = '{"type":"delta","seq":' .. seq .. ',"kind":"' .. kind ..
    '","op":"' .. op .. '","data":' .. data .. '}'
  return seq
end
local function flush()
  if #FRAMES > 0 then
    redis.call('PUBLISH', P .. 'ui', '[' .. table.concat(FRAMES, ',') .. ']')
    FRAMES = {}
  end
end
local function meta_of(kind, id)
  local meta = redis.call('HGET', P .. 'meta:' .. kind, id)
  if not meta then return nil end
  local a = string.find(meta, '|', 1, true)
  local c = string.find(meta, '|', a + 1, true)
  return string.sub(meta, 1, a - 1), string.sub(meta, a + 1, c - 1), string.sub(meta, c + 1)
end
-- A new status for a stored record, keeping its stored ts (not a new observation).
-- expected_rev '' skips the check. Returns the new revision, or false.
local function restate(kind, id, rec, status, expected_rev, now, day)
  local rev, ts, cur = meta_of(kind, id)
  if not rev then return false end
  if expected_rev ~= '' and expected_rev ~= rev then return false end
  -- Ingest pipelines its changes and guesses their revisions (rev + 1 for each change of
  -- an id in flight); a jump no guess can reach keeps a change built before this write from
  -- passing the compare-and-set by chance.
  local newrev = tostring(tonumber(rev) + REV_JUMP)
  redis.call('HSET', P .. 'state:' .. kind, id, rec)
  redis.call('HSET', P .. 'meta:' .. kind, id, newrev .. '|' .. ts .. '|' .. status)
  if kind == 'event' or cur ~= status then redis.call('INCR', P .. 'stats:ver') end
  if cur ~= status then
    if cur ~= '' then redis.call('HINCRBY', P .. 'count:' .. kind, cur, -1) end
    redis.call('HINCRBY', P .. 'count:' .. kind, status, 1)
    if kind == 'event' then
      local tl = P .. 'timeline:' .. id
      redis.call('RPUSH', tl, '{"ts":' .. now .. ',"status":"' .. status .. '"}')
      redis.call('LTRIM', tl, -200, -1)
      redis.call('EXPIRE', tl, 34560000)
      if status == 'closed' or status == 'cancelled' then
        redis.call('ZREM', P .. 'geo:event', id)
        redis.call('SREM', P .. 'events:open', id)
        if status == 'closed' then redis.call('HINCRBY', P .. 'stat:' .. day, 'closed', 1) end
      end
    end
  end
  emit(kind, 'upsert', rec)
  return newrev
end
"""

SNAPSHOT_LUA: Final = r"""
local P, since, maxevents = ARGV[1], ARGV[2], tonumber(ARGV[3])
local seq = redis.call('GET', P .. 'seq') or '0'
local function states(ids)
  local out = {}
  for k = 1, #ids, 500 do
    local chunk = {}
    for m = k, math.min(k + 499, #ids) do chunk[#chunk + 1] = ids[m] end
    for _, v in ipairs(redis.call('HMGET', P .. 'state:event', unpack(chunk))) do
      if v then out[#out + 1] = v end
    end
  end
  return out
end
local open = redis.call('SMEMBERS', P .. 'events:open')
local seen = {}
for _, id in ipairs(open) do seen[id] = true end
local events = states(open)
if #events > maxevents then
  -- More open events than a wall is sent: the gravest first, then the newest.
  local keyed = {}
  for j, v in ipairs(events) do
    keyed[j] = {tonumber(string.match(v, '"severity":%s*(%d+)')) or 9,
                tonumber(string.match(v, '"ts":%s*(%d+)')) or 0, v}
  end
  table.sort(keyed, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] > b[2]
  end)
  events = {}
  for j = 1, maxevents do events[j] = keyed[j][3] end
end
local recent = redis.call('ZRANGEBYSCORE', P .. 'events:ts', '(' .. since, '+inf')
local closed = {}
for j = #recent, 1, -1 do
  if #events + #closed >= maxevents then break end
  local id = recent[j]
  if not seen[id] then closed[#closed + 1] = id; seen[id] = true end
end
for _, v in ipairs(states(closed)) do events[#events + 1] = v end
local function values(hash, list)
  if #list == 0 then return {} end
  local out = {}
  for _, v in ipairs(redis.call('HMGET', hash, unpack(list))) do
    if v then out[#out + 1] = v end
  end
  return out
end
local tasks = values(P .. 'state:task', redis.call('SRANDMEMBER', P .. 'tasks:open', 5000))
local alerts = values(P .. 'state:alert', redis.call('ZRANGE', P .. 'alerts:open', 0, 499, 'REV'))
return {seq, events,
  redis.call('HVALS', P .. 'state:worker'),
  redis.call('HVALS', P .. 'state:resource'),
  redis.call('HVALS', P .. 'state:camera'), tasks, alerts}
"""


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def _day_of_hour(hour: int, tz: str) -> str:
    return datetime.fromtimestamp(hour * 3600, _zone(tz)).strftime("%Y-%m-%d")


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


class Store:
    """Typed access to the command wall's Redis state."""

    def __init__(self, client: redis.Redis, prefix: str = "cc:", log_maxlen: int = 200_000,
                 deadletter_max: int = 10_000, deadletter_raw_bytes: int = 4096) -> None:
        self.r = client
        self.prefix = prefix
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
        Out of memory is not the change's fault and is raised."""
        exc = refused
        if exc is None:
            try:
                return self.apply(changes, replay=replay, mark=mark)
            except redis.ResponseError as error:
                exc = error
        if out_of_memory(exc):
            raise exc
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
            self._apply_conn = self.r.connection_pool.make_connection()
        try:
            self._apply_conn.send_command("EVAL", APPLY_LUA, 0, *argv)
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
        """A Lua script built on `LUA_LIB`; call it with its own arguments (ARGV[3]…)."""
        registered = self.r.register_script(LUA_LIB + body)

        def call(*args: str | int | float) -> Any:
            return registered(keys=[], args=[self.prefix, self.log_maxlen, *args])

        return call

    def emit(self, kind: str, op: str, data: dict[str, Any] | str) -> int:
        """Append one frame of any kind to the change log and the walls; returns its seq."""
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        if self._emit is None:
            self._emit = self.script("local seq = emit(ARGV[3], ARGV[4], ARGV[5])\n"
                                     "flush()\nreturn seq\n")
        return int(self._emit(kind, op, text))

    def restate(self, kind: str, record: dict[str, Any], status: str, rev: str,
                now_ms: int | None = None) -> str | None:
        """Write `record` with a new `status` if its revision is still `rev` ('' = any).

        The stored `ts` is kept and `status_ts` set, so the next fix from the field is not
        refused as stale. Returns the new revision, or None when someone wrote first."""
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        record = {**record, "status": status, "status_ts": now_ms}
        if self._restate is None:
            self._restate = self.script(
                "local r = restate(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],"
                " ARGV[9])\nflush()\nreturn r\n")
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
            keys=[], args=[self.prefix, now_ms - RECENT_EVENTS_MS, SNAPSHOT_EVENTS_MAX]
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
        return {"ingest": _decoded(ingest), "relay": _decoded(relay), "watch": _decoded(watch),
                "standby": _decoded(standby), "deadletters": int(dead or 0),
                "seq": int(seq or 0)}

    def memory(self) -> dict[str, int]:
        """The server's used memory and its maxmemory (0: no limit), in bytes."""
        info = self.r.info("memory")
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


def _decoded(mapping: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in mapping.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
