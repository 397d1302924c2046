local key = P .. 'state:alert'
local cur = redis.call('HGET', key, ARGV[3])
if not cur then return 0 end
if cur ~= ARGV[4] then return -1 end
redis.call('HSET', key, ARGV[3], ARGV[5])
if ARGV[6] ~= '' then
  redis.call('ZREM', P .. 'alerts:open', ARGV[3])
  redis.call('ZADD', P .. 'alerts:acked', ARGV[6], ARGV[3])
end
emit('alert', 'upsert', ARGV[5])
flush()
return 1
