-- The prelude: shared by every script that changes what walls see (dispatch, the watch
-- service, alerts, the video wall). Each such script is this file + its body, called with
-- ARGV[1] = prefix, ARGV[2] = log maxlen, and its own arguments from ARGV[3]
-- (Store.script in dashboard/store.py). Records are built in Python (JSON stays Python's);
-- scripts only check revisions and write, so a GPS fix that lands in between makes the
-- caller retry.
local P, MAXLEN = ARGV[1], tonumber(ARGV[2])
-- A prefix with a hash tag (a city on a cluster) publishes its frames sharded: SPUBLISH
-- stays on the slot's master instead of crossing every node (dashboard/connect.py `sharded`).
-- KEYS[1] is a key of the prefix, so a cluster runs the script where the prefix lives.
local TAG = string.find(P, '{', 1, true)
local UI_PUBLISH = TAG and (string.find(P, '}', TAG + 1, true) or 0) > TAG + 1
  and 'SPUBLISH' or 'PUBLISH'
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
    redis.call(UI_PUBLISH, P .. 'ui', '[' .. table.concat(FRAMES, ',') .. ']')
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

-- A task's stored JSON from its id and the rest; a revision check (the desk's scripts).
local function task_tail(tid, tail) return '{"id": "' .. tid .. '"' .. tail end
local function rev_ok(kind, id, want)
  local rev = meta_of(kind, id)
  return rev ~= nil and rev == want
end
