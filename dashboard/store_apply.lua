#!lua
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
  -- sharded for a tagged prefix, as the prelude's flush (dashboard/prelude.lua)
  local tag = string.find(P, '{', 1, true)
  local sharded = tag and (string.find(P, '}', tag + 1, true) or 0) > tag + 1
  redis.call(sharded and 'SPUBLISH' or 'PUBLISH', P .. 'ui',
    '[' .. table.concat(frames, ',') .. ']')
end
return out
