local P = ARGV[1]
redis.call('SET', P .. 'handover:' .. ARGV[2], ARGV[3])
redis.call('HSET', P .. 'handover:list', ARGV[2], ARGV[4])
redis.call('ZADD', P .. 'handover:index', ARGV[5], ARGV[2])
local extra = redis.call('ZCARD', P .. 'handover:index') - tonumber(ARGV[6])
if extra <= 0 then return {} end
local old = redis.call('ZRANGE', P .. 'handover:index', 0, extra - 1)
for _, id in ipairs(old) do
  redis.call('DEL', P .. 'handover:' .. id)
  redis.call('HDEL', P .. 'handover:list', id)
end
redis.call('ZREMRANGEBYRANK', P .. 'handover:index', 0, extra - 1)
return old
