local c = redis.call('HGET', KEYS[1], ARGV[1])
if c then return tonumber(c) end
local n = redis.call('HLEN', KEYS[1])
if n >= tonumber(ARGV[2]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], n)
redis.call('RPUSH', KEYS[2], ARGV[1])
return n
