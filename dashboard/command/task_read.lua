-- What one lifecycle step of task ARGV[3] checks, in one round trip (it was five): the
-- task's JSON, its event's state and meta, and for each assignee its kind, id, state, meta
-- and the task it is engaged in ('' where there is none). Nothing is written.
local raw = redis.call('HGET', P .. 'state:task', ARGV[3])
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
