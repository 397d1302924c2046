local idem_key, idem_ttl, eid, ev_rev, ev_json = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local now, day, ymd, tail, msg_tail = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local old_tid, old_expected, old_json = ARGV[13], ARGV[14], ARGV[15]
local n = tonumber(ARGV[16])
local idem = P .. 'idem:' .. idem_key
local done = redis.call('GET', idem)
if done then return {'dup', done} end
local active = redis.call('GET', P .. 'task:event:' .. eid)
if active and active ~= old_tid then return {'has_task', active} end
if old_tid ~= '' then
  -- superseding a rejected task: it must be exactly what the caller read
  if active ~= old_tid or redis.call('HGET', P .. 'state:task', old_tid) ~= old_expected then
    return {'stale', 'task:' .. old_tid}
  end
end
for i = 0, n - 1 do
  local b = 17 + i * 5
  if redis.call('EXISTS', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1]) == 1 then
    return {'unit_busy', ARGV[b] .. ':' .. ARGV[b+1],
      redis.call('GET', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1])}
  end
end
if not meta_of('event', eid) then return {'no_event', eid} end
if not rev_ok('event', eid, ev_rev) then return {'stale', 'event:' .. eid} end
for i = 0, n - 1 do
  local b = 17 + i * 5
  if not rev_ok(ARGV[b], ARGV[b+1], ARGV[b+2]) then
    return {'stale', ARGV[b] .. ':' .. ARGV[b+1]}
  end
end
-- every check held: write
local seqkey = P .. 'task:n:' .. ymd
local num = redis.call('INCR', seqkey)
redis.call('EXPIRE', seqkey, 172800)
local tid = 'T' .. ymd .. '-' .. string.format('%04d', num)
if old_tid ~= '' then
  redis.call('HSET', P .. 'state:task', old_tid, old_json)
  redis.call('SREM', P .. 'tasks:open', old_tid)
  emit('task', 'upsert', old_json)
end
restate('event', eid, ev_json .. '"' .. tid .. '"}', 'dispatched', ev_rev, now, day)
for i = 0, n - 1 do
  local b = 17 + i * 5
  restate(ARGV[b], ARGV[b+1], ARGV[b+3], ARGV[b+4], ARGV[b+2], now, day)
  redis.call('SET', P .. 'task:unit:' .. ARGV[b] .. ':' .. ARGV[b+1], tid)
end
local task = task_tail(tid, tail)
redis.call('HSET', P .. 'state:task', tid, task)
redis.call('SADD', P .. 'tasks:open', tid)
redis.call('SET', P .. 'task:event:' .. eid, tid)
redis.call('SET', idem, tid, 'EX', idem_ttl)
emit('task', 'upsert', task)
flush()
redis.call('PUBLISH', P .. 'dispatch', '{"task_id": "' .. tid .. '"' .. msg_tail)
return {'ok', tid}
