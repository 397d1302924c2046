local function add(from)
  local args = {KEYS[1]}
  if ARGV[2] ~= '' then
    table.insert(args, 'MINID'); table.insert(args, '~'); table.insert(args, ARGV[2])
  end
  table.insert(args, '*')
  for i = from, #ARGV do table.insert(args, ARGV[i]) end
  redis.call('XADD', unpack(args))
end
local function summary(bucket, to)
  local h = redis.call('HGETALL', bucket)
  local f = {}
  for j = 1, #h, 2 do f[h[j]] = h[j + 1] end
  if not f['s'] then return end
  local actions = {}
  for k, v in pairs(f) do
    if string.sub(k, 1, 2) == 'a:' then actions[string.sub(k, 3)] = tonumber(v) end
  end
  local ip = f['ip'] or '*'
  local limit = (ip == '*') and tonumber(ARGV[4]) or tonumber(ARGV[3])
  local detail = cjson.encode({count = tonumber(f['s']), actions = actions,
                               from = to - 60000, to = to, limit = limit,
                               per = (ip == '*') and 'all' or 'address'})
  local args = {KEYS[1]}
  if ARGV[2] ~= '' then
    table.insert(args, 'MINID'); table.insert(args, '~'); table.insert(args, ARGV[2])
  end
  for _, v in ipairs({'*', 'ts', ARGV[1], 'user', '-', 'role', '-', 'action', 'audit.suppressed',
                      'target', ip, 'ip', ip, 'outcome', 'suppressed', 'detail', detail}) do
    table.insert(args, v)
  end
  redis.call('XADD', unpack(args))
end
local function flush()
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
                         tonumber(ARGV[5]))
  for i = 1, #due, 2 do
    summary(due[i], tonumber(due[i + 1]))
    redis.call('DEL', due[i])
    redis.call('ZREM', KEYS[2], due[i])
  end
  return #due / 2
end
