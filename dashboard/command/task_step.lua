local tid, expected, new, keep_open, clear = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local eid, ev_json, ev_status, ev_rev = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local now, day, n = ARGV[12], ARGV[13], tonumber(ARGV[14])
if redis.call('HGET', P .. 'state:task', tid) ~= expected then return 'stale' end
if ev_json ~= '' and not rev_ok('event', eid, ev_rev) then return 'stale' end
for i = 0, n - 1 do
  local b = 15 + i * 6
  if ARGV[b+2] ~= '' and not rev_ok(ARGV[b], ARGV[b+1], ARGV[b+4]) then return 'stale' end
  if ARGV[b+5] == '1' and redis.call('GET', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1])
      ~= tid then
    return 'stale'
  end
end
-- strict (a remembered read): the event's and every unit's revision and engagement too
local s = 15 + n * 6
if ARGV[s] == '1' then
  if not rev_ok('event', eid, ARGV[s + 1]) then return 'stale' end
  for i = 0, tonumber(ARGV[s + 2]) - 1 do
    local b = s + 3 + i * 4
    if ARGV[b+2] ~= '' and not rev_ok(ARGV[b], ARGV[b+1], ARGV[b+2]) then return 'stale' end
    if (redis.call('GET', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1]) or '')
        ~= ARGV[b+3] then
      return 'stale'
    end
  end
end
redis.call('HSET', P .. 'state:task', tid, new)
redis.call('INCR', P .. 'stats:ver')  -- an arrival moves the cockpit's times, status or not
if keep_open == '1' then
  redis.call('SADD', P .. 'tasks:open', tid)
else
  redis.call('SREM', P .. 'tasks:open', tid)
end
if clear == '1' and redis.call('GET', P .. 'task:event:' .. eid) == tid then
  redis.call('DEL', P .. 'task:event:' .. eid)
end
if ev_json ~= '' then restate('event', eid, ev_json, ev_status, ev_rev, now, day) end
for i = 0, n - 1 do
  local b = 15 + i * 6
  if ARGV[b+2] ~= '' then restate(ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3], ARGV[b+4], now, day) end
  if ARGV[b+5] == '1' then redis.call('DEL', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1]) end
end
emit('task', 'upsert', new)
flush()
return 'ok'
