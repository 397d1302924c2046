flush()
local function over(bucket, ip, limit)
  local n = redis.call('HINCRBY', bucket, 'n', 1)
  if n == 1 then
    redis.call('HSET', bucket, 'ip', ip)
    redis.call('EXPIRE', bucket, ARGV[9])
  end
  return n > tonumber(limit)
end
local full = nil
if over(KEYS[3], ARGV[8], ARGV[3]) then full = KEYS[3]
elseif over(KEYS[4], '*', ARGV[4]) then full = KEYS[4] end
if full then
  redis.call('HINCRBY', full, 's', 1)
  redis.call('HINCRBY', full, 'a:' .. ARGV[7], 1)
  redis.call('EXPIRE', full, ARGV[10])
  redis.call('ZADD', KEYS[2], 'NX', ARGV[6], full)
  return 0
end
add(11)
return 1
