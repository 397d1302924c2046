-- What one lifecycle step of task ARGV[3] checks, in one round trip (it was five): the
-- task's JSON, its event's state and meta, and for each assignee its kind, id, state, meta
-- and the task it is engaged in ('' where there is none). Nothing is written.
-- ARGV[3] '' with event ARGV[4]: the event's active task, else the last one it had (its
-- record's task_id); {'no_event'} when there is no such event, {} when it has no task.
local tid = ARGV[3]
if tid == '' then
  local event = redis.call('HGET', P .. 'state:event', ARGV[4])
  if not event then return {'no_event'} end
  tid = redis.call('GET', P .. 'task:event:' .. ARGV[4])
  if not tid then
    tid = cjson.decode(event)['task_id']
    if type(tid) ~= 'string' or tid == '' then return {} end
  end
end
local raw = redis.call('HGET', P .. 'state:task', tid)
if not raw then return {} end
local task = cjson.decode(raw)
local eid = tostring(task['event_id'])
local out = {raw, redis.call('HGET', P .. 'state:event', eid) or '',
  redis.call('HGET', P .. 'meta:event', eid) or ''}
for _, a in ipairs(task['assignees'] or {}) do
  local kind, id = tostring(a['kind']), tostring(a['id'])
  out[#out + 1] = kind
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', P .. 'state:' .. kind, id) or ''
  out[#out + 1] = redis.call('HGET', P .. 'meta:' .. kind, id) or ''
  out[#out + 1] = redis.call('GET', P .. 'task:unit:' .. kind .. ':' .. id) or ''
end
return out
