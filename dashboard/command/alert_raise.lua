local once = P .. 'alert:once:' .. ARGV[3]
if not redis.call('SET', once, ARGV[5], 'NX', 'EX', tonumber(ARGV[4])) then return false end
redis.call('HSET', P .. 'state:alert', ARGV[5], ARGV[6])
redis.call('ZADD', P .. 'alerts:open', ARGV[7], ARGV[5])
if string.sub(ARGV[3], 1, 4) == 'sla_' then
  redis.call('INCR', P .. 'stats:ver')  -- a yellow/red card moves the cockpit's figures
end
emit('alert', 'upsert', ARGV[6])
flush()
redis.call('PUBLISH', P .. 'alert', ARGV[8])
return 1
