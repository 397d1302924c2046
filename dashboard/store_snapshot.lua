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
